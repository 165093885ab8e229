/**
 * Decompression with limits: gzip, zstd and zlib through Node's zlib, each call stopped at a
 * number of bytes, zstd read frame by frame, and zlib's output chunk sized from what the payload
 * declares. `index.ts` decides what the limits are and what a record that passes them becomes.
 */

import { MAX_DEFLATE_RATIO } from '@shardwise/core'

export type Compression = 'gzip' | 'zstd' | 'zlib'

/** Said when this Node has no zstd. */
export const ZSTD_NEEDS = `needs Node 22.15 or later (this is ${process.version})`

// Loaded at the first compressed record, not at import: a function whose records are plain
// does not pay for node:zlib in its cold start.
let zlibModule: typeof import('node:zlib') | undefined
export function zlib(): typeof import('node:zlib') {
  zlibModule ??= process.getBuiltinModule('node:zlib')
  return zlibModule
}

/** What decompression may still produce in this invocation (`maxBatchDecompressedBytes`). */
export interface Budget {
  left: number
  /** `left` when the current Kinesis record began: all of it when no earlier one spent any. */
  leftAtKinesisRecord: number
  /**
   * What the current Kinesis record's decompressions that failed were charged: the most they
   * could have produced, as zlib does not say what they did.
   */
  failedAtKinesisRecord: number
}

/**
 * zlib's output, or an `Error` whose message says why there is none: the thrown error itself
 * when the output passed `maxOutputLength` (code `ERR_BUFFER_TOO_LARGE`), one with code
 * `BUDGET_SPENT` when the frames of a zstd payload spent the budget, otherwise one that has the
 * zlib error as its `cause`.
 */
export function decompressed(
  bytes: Uint8Array,
  format: Compression,
  maxOutputLength: number,
  budget: Budget,
): Buffer | Error {
  const z = zlib()
  if (format === 'zstd') {
    if (typeof z.zstdDecompressSync !== 'function') {
      return new Error(`data is zstd, which ${ZSTD_NEEDS}`)
    }
    // Nearly every payload is one zstd frame, which zlib decodes whole in one call, as gzip.
    if (zstdFrameEnd(bytes, 0) !== bytes.length || bytes[0] !== ZSTD_MAGIC_FIRST_BYTE) {
      return zstdFrames(bytes, maxOutputLength, budget)
    }
  }
  try {
    const chunkSize = chunkSizeOf(bytes, format, maxOutputLength)
    const options = { maxOutputLength, chunkSize }
    if (format === 'gzip') return compact(z.gunzipSync(bytes, options), chunkSize)
    if (format === 'zlib') return compact(z.inflateSync(bytes, options), chunkSize)
    return compact(z.zstdDecompressSync(bytes, options), chunkSize)
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') return error as Error
    return new Error(`data is not valid ${format}: ${(error as Error).message}`, { cause: error })
  }
}

/**
 * A zstd payload of several frames (RFC 8878, section 3.1: zstd frames and skippable frames,
 * back to back), or of one frame that is not whole. zlib decodes the first frame of its input
 * and drops the rest; it can tell where it stopped (`info: true`, `engine.bytesWritten`), but
 * it hands back what a frame cut short holds without an error, so the frame and block headers,
 * not zlib, say where each frame ends and whether it is whole. Each frame is decompressed alone,
 * within what is left of `maxOutputLength` after the frames before it, and the outputs joined.
 * Each frame after the first also costs the budget `FRAME_COST`, taken here; its output is
 * charged by the caller, as for any payload. Errors carry the code and words libzstd gives for
 * the same fault (its one-shot `ZSTD_decompress` reads every frame), with where it is.
 */
function zstdFrames(bytes: Uint8Array, maxOutputLength: number, budget: Budget): Buffer | Error {
  if (bytes.length === 0) {
    // As gunzip and the zstd command line: a payload with no frame is not zstd.
    return zstdError('unexpected end of file', 'Src size is incorrect', 'ZSTD_error_srcSize_wrong')
  }
  const z = zlib()
  const outputs: Buffer[] = []
  let produced = 0
  let frame = 0
  let chunkSize: number | undefined
  let zstdFrameCount = 0
  for (let at = 0, end = 0; at < bytes.length; at = end) {
    frame++
    end = zstdFrameEnd(bytes, at)
    if (end === NOT_A_FRAME) {
      const after = frame > 1 ? `, after frame ${frame - 1}` : ''
      const where = `Unknown frame descriptor at byte ${at}${after}`
      return zstdError(where, 'Unknown frame descriptor', 'ZSTD_error_prefix_unknown')
    }
    if (end < 0) {
      const where = `frame ${frame}, at byte ${at}, has a block of the reserved type at byte ${~end}`
      return zstdError(where, 'Data corruption detected', 'ZSTD_error_corruption_detected')
    }
    if (end > bytes.length) {
      const where = `frame ${frame}, at byte ${at}, is cut short at byte ${bytes.length}`
      return zstdError(where, 'Src size is incorrect', 'ZSTD_error_srcSize_wrong')
    }
    if (bytes[at] !== ZSTD_MAGIC_FIRST_BYTE) continue // a skippable frame
    if (zstdFrameCount++ > 0) budget.left -= FRAME_COST
    // Once frames have been paid for, what is left of the budget may bind before the limit.
    const budgetBinds = budget.left < maxOutputLength
    const cap = budgetBinds ? budget.left : maxOutputLength
    if (produced > cap) return spent(frame, at, budget)
    // zlib takes no limit below 1; a frame that decompresses to nothing fits what is left.
    const left = Math.max(cap - produced, 1)
    const input = bytes.subarray(at, end)
    chunkSize = chunkSizeOf(input, 'zstd', left)
    let output: Buffer
    try {
      output = z.zstdDecompressSync(input, { maxOutputLength: left, chunkSize })
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        return budgetBinds ? spent(frame, at, budget, error) : tooLarge(frame, at, cap, error)
      }
      return new Error(
        `data is not valid zstd: frame ${frame}, at byte ${at}: ${(error as Error).message}`,
        { cause: error },
      )
    }
    produced += output.byteLength
    if (produced > cap) return budgetBinds ? spent(frame, at, budget) : tooLarge(frame, at, cap)
    outputs.push(output)
  }
  if (outputs.length === 1) return compact(outputs[0] as Buffer, chunkSize)
  return Buffer.concat(outputs, produced)
}

function zstdError(where: string, message: string, code: string): Error {
  return new Error(`data is not valid zstd: ${where}`, {
    cause: Object.assign(new Error(message), { code }),
  })
}

/** What zlib throws when a payload passes `maxOutputLength`, for frames that do together. */
function tooLarge(frame: number, at: number, limit: number, cause?: unknown): Error {
  const message = `zstd frame ${frame}, at byte ${at}, takes the output past ${limit} bytes`
  return Object.assign(new RangeError(message, { cause }), { code: 'ERR_BUFFER_TOO_LARGE' })
}

/**
 * zlib sets up each zstd frame anew, in about 12 µs: the time zstd takes to decompress some
 * 16-30 KB. So a frame after the first costs the batch budget 16 KiB besides its output, and
 * the budget bounds the time a payload of many tiny frames takes (an empty frame is 9 bytes: a
 * 6 MB invocation holds 500,000, some 6 s of setup) as it bounds that of a bomb. The first
 * frame costs nothing more: one zlib call per record is the price of any compressed record.
 */
const FRAME_COST = 16 * 1024

export const BUDGET_SPENT = 'BUDGET_SPENT'

function spent(frame: number, at: number, budget: Budget, cause?: unknown): Error {
  const message = `zstd frame ${frame}, at byte ${at}: its frames, and ${FRAME_COST} bytes of setup for each after the first, pass the budget left`
  budget.left = 0
  return Object.assign(new RangeError(message, { cause }), { code: BUDGET_SPENT })
}

/** zlib's own chunk size, which it uses when given none. */
const DEFAULT_CHUNK = 16 * 1024

/**
 * Deflate's highest ratio (core's `MAX_DEFLATE_RATIO`). zstd can go higher (128 KiB from a
 * 4-byte RLE block), but a payload that compresses better than this is nearly all repetition:
 * it only takes more chunks.
 */
const MAX_RATIO = MAX_DEFLATE_RATIO

/**
 * zstd's highest ratio: a block decompresses to at most 128 KiB (Block_Maximum_Size, RFC 8878
 * 3.1.1.2.4) and takes at least 4 bytes (a 3-byte header and the byte an RLE block repeats).
 */
const ZSTD_MAX_RATIO = (128 * 1024) / 4

/**
 * The most `bytes` can decompress to, however they are made: what a decompression that failed,
 * whose output zlib does not hand back, is charged to the budget at most.
 */
export function mostOutputOf(bytes: Uint8Array, format: Compression): number {
  return bytes.length * (format === 'zstd' ? ZSTD_MAX_RATIO : MAX_RATIO)
}

/**
 * zlib writes into chunks of `chunkSize` bytes and joins them at the end; an output that fits
 * in its first chunk, with a byte to spare (else zlib allocates a second one to learn that the
 * stream has ended), is handed back as that chunk, neither joined nor copied, and a chunk under
 * half of `Buffer.poolSize` (4 KiB on Node 22, 32 KiB on Node 24) comes from Node's shared buffer
 * pool instead of an allocation of its own. So the chunk is sized to what the payload declares:
 * gzip's trailer (ISIZE, the last member's size) or zstd's Frame_Content_Size. A header that lies, or a multi-member payload, costs speed only:
 * - the chunk is at least 2 KiB, and 4 bytes per compressed byte up to zlib's default, so a
 *   claim that is too small yields at most 1032 / 4 = 258 chunks, none under 2 KiB (or as many
 *   16 KiB chunks as before). JSON logs compress 4 to 10 to 1, so a CloudWatch Logs payload of
 *   2 to 4 KB gets a chunk of its own size from the pool;
 * - it is never larger than the input can decompress to at deflate's highest ratio, so a tiny
 *   record that claims 4 GiB allocates no more than an honest payload of its size may need;
 * - zlib checks `maxOutputLength` after each chunk: the chunk is `limit + 1` bytes split evenly,
 *   so a payload over the limit is stopped within a few bytes of it (a chunk of just under the
 *   limit would let it produce twice the limit before the check). A limit under the smallest
 *   chunk keeps zlib's default, as before.
 */
function chunkSizeOf(bytes: Uint8Array, format: Compression, limit: number): number | undefined {
  if (format === 'zlib') return undefined
  const declared = format === 'gzip' ? gzipSize(bytes) : zstdSize(bytes)
  const least = Math.min(DEFAULT_CHUNK, Math.max(2048, bytes.length * 4))
  const size = Math.max(least, Math.min(declared, limit, bytes.length * MAX_RATIO) + 1)
  if (size > limit + 1) return undefined
  return Math.ceil((limit + 1) / Math.floor((limit + 1) / size))
}

/** ISIZE, gzip's last 4 bytes: the last member's size mod 2^32. */
function gzipSize(bytes: Uint8Array): number {
  return bytes.length < 18 ? 0 : uint32(bytes, bytes.length - 4)
}

/**
 * The first frame's Frame_Content_Size (RFC 8878, 3.1.1.1), or 0 when its header leaves it
 * out or gives it in one byte (less than a chunk anyway).
 */
function zstdSize(bytes: Uint8Array): number {
  const descriptor = bytes[4] ?? 0
  const field = descriptor >>> 6 // 1, 2, 3: a 2-, 4- or 8-byte field
  // Before it: the window descriptor, unless Single_Segment_flag, and the dictionary id.
  const at = 5 + (((descriptor >>> 5) & 1) ^ 1) + ((1 << (descriptor & 3)) >> 1)
  if (field === 0 || bytes.length < at + (1 << field)) return 0
  if (field === 1) return (bytes[at] as number) + (bytes[at + 1] as number) * 0x100 + 256
  return uint32(bytes, at) + (field === 3 ? uint32(bytes, at + 4) * 2 ** 32 : 0)
}

/** `28 B5 2F FD`, read little-endian. */
const ZSTD_MAGIC = 0xfd2fb528
const ZSTD_MAGIC_FIRST_BYTE = ZSTD_MAGIC & 0xff
/** Skippable frames have the magic numbers 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC_HIGH = 0x184d2a5
const NOT_A_FRAME = -1
const ZSTD_MAGIC_BYTES = [0x28, 0xb5, 0x2f, 0xfd]
const SKIPPABLE_MAGIC_BYTES = [0x50, 0x2a, 0x4d, 0x18]

/**
 * Where the frame that starts at `at` ends, read from its header and block headers alone
 * (RFC 8878, 3.1.1 and 3.1.2); past `bytes.length` when the bytes end inside it.
 * `NOT_A_FRAME` (-1) when there is no frame magic at `at`; `~p` (less than -1) when the block
 * at `p` has the reserved type 3, whose size cannot be known.
 */
function zstdFrameEnd(bytes: Uint8Array, at: number): number {
  const length = bytes.length
  if (length - at < 4) return startsAMagic(bytes, at) ? length + 1 : NOT_A_FRAME
  const magic = uint32(bytes, at)
  if (magic >>> 4 === SKIPPABLE_MAGIC_HIGH) {
    return length - at < 8 ? length + 1 : at + 8 + uint32(bytes, at + 4)
  }
  if (magic !== ZSTD_MAGIC) return NOT_A_FRAME
  if (length - at < 5) return length + 1
  const descriptor = bytes[at + 4] as number
  const single = (descriptor >>> 5) & 1
  const sizeFlag = descriptor >>> 6
  // The window descriptor (unless Single_Segment_flag), the dictionary id (0, 1, 2 or 4
  // bytes) and Frame_Content_Size (1 byte for a single segment without the flag; 2, 4, 8).
  let p =
    at +
    5 +
    (single ^ 1) +
    ((1 << (descriptor & 3)) >> 1) +
    (sizeFlag === 0 ? single : 1 << sizeFlag)
  let last = 0
  while (last === 0) {
    if (length - p < 3) return length + 1
    const header =
      (bytes[p] as number) | ((bytes[p + 1] as number) << 8) | ((bytes[p + 2] as number) << 16)
    const type = (header >>> 1) & 3
    if (type === 3) return ~p
    last = header & 1
    // An RLE block (type 1) holds the one byte it repeats Block_Size times.
    p += 3 + (type === 1 ? 1 : header >>> 3)
  }
  return p + (descriptor & 4) // Content_Checksum_flag: a 4-byte checksum
}

/** The 1 to 3 bytes left at `at` could be the start of a frame cut short. */
function startsAMagic(bytes: Uint8Array, at: number): boolean {
  let isZstd = true
  let isSkippable = true
  for (let i = 0; at + i < bytes.length; i++) {
    const byte = bytes[at + i] as number
    isZstd &&= byte === ZSTD_MAGIC_BYTES[i]
    isSkippable &&= i === 0 ? byte >>> 4 === 5 : byte === SKIPPABLE_MAGIC_BYTES[i]
  }
  return isZstd || isSkippable
}

function uint32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0
  )
}

/**
 * zlib hands back a view of its output chunk when the output fits in one (several are joined
 * into a buffer of the output's size): 16 KiB for a small payload of unknown size, more for one
 * whose header claimed more than it holds. A batch keeps every record until it ends, so a
 * payload much smaller than its chunk is copied out rather than keep the whole chunk alive.
 */
function compact(output: Buffer, chunkSize = DEFAULT_CHUNK): Buffer {
  return output.byteLength * 2 < chunkSize ? Buffer.from(output) : output
}

/** zlib is never guessed: its only marker is a first byte of `x`, common in plain text too. */
export function compressionOf(bytes: Uint8Array): Compression | false {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip'
  // The first byte alone turns nearly every plain record away.
  if (bytes[0] === ZSTD_MAGIC_FIRST_BYTE && bytes.length >= 4 && uint32(bytes, 0) === ZSTD_MAGIC) {
    return 'zstd'
  }
  return false
}
