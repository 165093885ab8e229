/**
 * A zstd payload is a sequence of frames (RFC 8878, section 3.1): zstd frames and skippable
 * frames, back to back. Node's `zstdDecompressSync` decodes the first frame and drops the rest,
 * and hands back what a frame cut short holds without an error; these tests check that every
 * frame is decoded, that nothing after or inside a frame is lost silently, and that the limits
 * hold over the whole payload.
 */
import zlib from 'node:zlib'
import { DecodeError } from '@shardwise/core'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { decodeEvent, type KinesisDecodeOptions } from './index.js'
import { kinesisEvent, lambdaRecord, logText, peerAggregates, text } from './kpl.fixture.js'

const zstd = (data: string | Buffer) => zlib.zstdCompressSync(data)
const withChecksum = (data: Buffer) =>
  zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } })

/** A skippable frame: magic 0x184D2A50 to 0x184D2A5F, a 4-byte little-endian size, that many bytes. */
function skippable(content: Uint8Array, variant = 0): Buffer {
  const header = Buffer.alloc(8)
  header.writeUInt32LE(0x184d2a50 + variant)
  header.writeUInt32LE(content.length, 4)
  return Buffer.concat([header, content])
}

/** Bytes that do not compress (zstd stores them in raw blocks), the same for the same seed. */
function noise(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size)
  let state = seed * 2654435761 + 1
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    bytes[i] = state >>> 24
  }
  return bytes
}

/** What a streaming compressor sends when it ends a frame at each flush. */
async function framePerFlush(parts: Buffer[]): Promise<Buffer> {
  const compressor = zlib.createZstdCompress()
  const chunks: Buffer[] = []
  compressor.on('data', (chunk: Buffer) => chunks.push(chunk))
  for (const part of parts) {
    compressor.write(part)
    await new Promise<void>((resolve) => compressor.flush(zlib.constants.ZSTD_e_end, resolve))
  }
  compressor.end()
  await new Promise((resolve) => compressor.on('end', resolve))
  return Buffer.concat(chunks)
}

function decodeOne(bytes: Uint8Array, options?: KinesisDecodeOptions) {
  const batch = decodeEvent(kinesisEvent(lambdaRecord(bytes), lambdaRecord('next')), options)
  expect(text(batch.records[1]?.data as Uint8Array)).toBe('next')
  return { data: batch.records[0]?.data as Uint8Array, error: batch.errors.get(0) }
}

/** Frames of every kind: compressed, raw and RLE blocks, with or without a checksum, skippable. */
const framePart = fc.record({
  kind: fc.constantFrom('text', 'random', 'repeated', 'skippable'),
  size: fc.integer({ min: 0, max: 40_000 }),
  checksum: fc.boolean(),
})

/** Each part's frame, and what it holds (nothing, for a skippable frame). */
function framesOf(
  parts: Array<{ kind: string; size: number; checksum: boolean }>,
): Array<{ frame: Buffer; content: Buffer }> {
  return parts.map(({ kind, size, checksum }, i) => {
    if (kind === 'skippable') {
      return { frame: skippable(Buffer.alloc(size % 300, i), i % 16), content: Buffer.alloc(0) }
    }
    const content =
      kind === 'text'
        ? logText(size, i * 1000)
        : kind === 'random'
          ? noise(size, i)
          : Buffer.alloc(size, i)
    return { frame: checksum ? withChecksum(content) : zstd(content), content }
  })
}

describe('zstd payloads of several frames', () => {
  it('decodes concatenated frames to the concatenation of their contents', () => {
    const payload = Buffer.concat([zstd('hello '), zstd('world')])
    for (const decompress of ['auto', 'zstd'] as const) {
      const { data, error } = decodeOne(payload, { decompress })
      expect(error).toBeUndefined()
      expect(text(data)).toBe('hello world')
    }
  })

  it('decodes what a streaming compressor sends when it ends a frame at each flush', async () => {
    const parts = [logText(70_000), Buffer.from('short'), logText(200_000, 100_000)]
    const payload = await framePerFlush(parts)
    const { data, error } = decodeOne(payload)
    expect(error).toBeUndefined()
    expect(Buffer.from(data).equals(Buffer.concat(parts))).toBe(true)
  })

  it('reads every kind of block and header: raw, RLE and compressed blocks, several blocks a frame, checksums, empty frames', () => {
    const parts = [
      noise(150_000, 1), // raw blocks, two of them
      Buffer.alloc(300_000, 'a'), // RLE blocks
      Buffer.alloc(0),
      logText(400_000), // compressed blocks, four of them
      Buffer.from('x'),
    ]
    const frames = parts.flatMap((part) => [zstd(part), withChecksum(part)])
    const { data, error } = decodeOne(Buffer.concat(frames))
    expect(error).toBeUndefined()
    expect(Buffer.from(data).equals(Buffer.concat(parts.flatMap((part) => [part, part])))).toBe(
      true,
    )
  })

  it('skips skippable frames before, between and after the frames', () => {
    // A skippable frame's content is never read, even when it looks like a frame.
    const looksLikeAFrame = zstd('not me')
    const payload = Buffer.concat([
      skippable(Buffer.from('seek table'), 0),
      zstd('hello '),
      skippable(looksLikeAFrame, 0xf),
      skippable(new Uint8Array(0), 7),
      zstd('world'),
      skippable(Buffer.alloc(100_000), 3),
    ])
    // Only decompress: 'zstd' reads a payload that starts with a skippable frame: 'auto' goes by
    // the zstd magic.
    const { data, error } = decodeOne(payload, { decompress: 'zstd' })
    expect(error).toBeUndefined()
    expect(text(data)).toBe('hello world')
    const startsWithAFrame = decodeOne(payload.subarray(18))
    expect(startsWithAFrame.error).toBeUndefined()
    expect(text(startsWithAFrame.data)).toBe('hello world')
    expect(text(decodeOne(skippable(looksLikeAFrame), { decompress: 'zstd' }).data)).toBe('')
  })

  it('decodes the frames of each user record of an aggregate, and of a compressed aggregate', () => {
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: Buffer.concat([zstd('one, '), zstd('two')]) },
      { partitionKey: 'b', data: zstd('three') },
    ])
    const carriers = [aggregate as Buffer, inTwoFrames(aggregate as Buffer)]
    for (const carrier of carriers) {
      const batch = decodeEvent(kinesisEvent(lambdaRecord(carrier)))
      expect(batch.errors.size).toBe(0)
      expect(batch.records.map((record) => text(record.data))).toEqual(['one, two', 'three'])
    }
  })
})

/** `bytes` compressed in two frames, cut at its middle. */
function inTwoFrames(bytes: Buffer): Buffer {
  const middle = bytes.length >> 1
  return Buffer.concat([zstd(bytes.subarray(0, middle)), zstd(bytes.subarray(middle))])
}

describe('zstd payloads that are not whole', () => {
  const hello = zstd('hello ')
  const world = zstd('world')

  it.each([
    ['trailing garbage', Buffer.concat([hello, world, Buffer.from('garbage')]), 29],
    ['a trailing byte', Buffer.concat([hello, world, Buffer.of(0)]), 29],
    ['a frame of another format (LZ4)', Buffer.concat([hello, Buffer.of(4, 0x22, 0x4d, 0x18)]), 15],
  ])(
    'fails %s after the last frame, as zstd does ("Unknown frame descriptor"), naming where',
    (_, payload, at) => {
      const { data, error } = decodeOne(payload)
      expect(error).toBeInstanceOf(DecodeError)
      expect(error?.retryable).toBe(false)
      expect(error?.message).toMatch(
        new RegExp(
          `: data is not valid zstd: Unknown frame descriptor at byte ${at}, after frame \\d$`,
        ),
      )
      expect(error?.cause).toMatchObject({ code: 'ZSTD_error_prefix_unknown' })
      expect(Buffer.from(data).equals(payload)).toBe(true)
    },
  )

  it('fails a payload whose second frame is cut short, naming the frame', () => {
    const bigger = zstd(logText(50_000))
    for (const cut of [1, 4, bigger.length - 4, bigger.length - 1]) {
      const payload = Buffer.concat([hello, bigger.subarray(0, cut)])
      const { error } = decodeOne(payload)
      expect(error?.message).toMatch(
        `: data is not valid zstd: frame 2, at byte 15, is cut short at byte ${payload.length}`,
      )
      expect(error?.cause).toMatchObject({ code: 'ZSTD_error_srcSize_wrong' })
    }
  })

  it('fails a single frame cut short, which Node 22’s zlib hands back in part without an error', () => {
    // Node 22's zlib hands back what it decoded; Node 24's throws.
    let partial: string
    try {
      partial = text(zlib.zstdDecompressSync(hello.subarray(0, hello.length - 2)))
    } catch (error) {
      partial = (error as Error).message
    }
    expect(['hell', 'unexpected end of file']).toContain(partial)
    const checked = withChecksum(logText(50_000))
    for (const cut of [
      hello.subarray(0, 5),
      hello.subarray(0, hello.length - 2),
      checked.subarray(0, checked.length - 2),
    ]) {
      const { error } = decodeOne(cut)
      expect(error?.message).toMatch(
        `: data is not valid zstd: frame 1, at byte 0, is cut short at byte ${cut.length}`,
      )
    }
  })

  it('fails a skippable frame cut short, and an empty payload when zstd is expected', () => {
    const cut = Buffer.concat([hello, skippable(Buffer.alloc(10)).subarray(0, 12)])
    expect(decodeOne(cut).error?.message).toMatch(
      ': data is not valid zstd: frame 2, at byte 15, is cut short at byte 27',
    )
    // As gunzip and the zstd command line do: an empty payload holds no frame.
    expect(decodeOne(Buffer.alloc(0), { decompress: 'zstd' }).error?.message).toMatch(
      /: data is not valid zstd: unexpected end of file$/,
    )
  })

  it('fails a frame with a block of the reserved type, and a corrupt second frame with zstd’s error', () => {
    const reserved = Buffer.from(world)
    reserved[6] = (reserved[6] as number) | 0b110 // Block_Type 3
    expect(decodeOne(Buffer.concat([hello, reserved])).error?.message).toMatch(
      /: data is not valid zstd: frame 2, at byte 15, has a block of the reserved type at byte 21$/,
    )
    const corrupt = withChecksum(Buffer.from('world'))
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] as number) ^ 1
    const { error } = decodeOne(Buffer.concat([hello, corrupt]))
    expect(error?.message).toMatch(
      /: data is not valid zstd: frame 2, at byte 15: Restored data doesn't match checksum$/,
    )
    expect(error?.cause).toMatchObject({ code: 'ZSTD_error_checksum_wrong' })
  })

  it('fails a payload cut anywhere but between frames: no part of a frame is handed back (property)', {
    timeout: 30_000,
  }, () => {
    fc.assert(
      fc.property(
        fc.array(framePart, { minLength: 1, maxLength: 4 }),
        // Anywhere, or between two frames (which a cut anywhere would hardly ever hit).
        fc.oneof(
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.nat().map((n) => -1 - n),
        ),
        (parts, where) => {
          const frames = framesOf(parts)
          const payload = Buffer.concat(frames.map(({ frame }) => frame))
          const cut =
            where >= 0
              ? Math.floor(where * payload.length)
              : frames
                  .slice(0, (-1 - where) % (frames.length + 1))
                  .reduce((length, { frame }) => length + frame.length, 0)
          const { data, error } = decodeOne(payload.subarray(0, cut), { decompress: 'zstd' })
          let end = 0
          let whole = 0
          while (end < cut) end += (frames[whole++] as { frame: Buffer }).frame.length
          if (cut > 0 && end === cut) {
            expect(error).toBeUndefined()
            const before = frames.slice(0, whole).map(({ content }) => content)
            expect(Buffer.from(data).equals(Buffer.concat(before))).toBe(true)
          } else {
            expect(error?.message).toMatch(
              cut === 0
                ? /: data is not valid zstd: unexpected end of file$/
                : `: data is not valid zstd: frame ${whole}, at byte ${end - (frames[whole - 1]?.frame.length ?? 0)}, is cut short at byte ${cut}`,
            )
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('the limits over all the frames of a payload', () => {
  let spy: MockInstance
  beforeEach(() => {
    spy = vi.spyOn(zlib, 'zstdDecompressSync')
  })
  afterEach(() => spy.mockRestore())
  const calls = () =>
    spy.mock.calls.map(([bytes, options]) => ({
      length: (bytes as Uint8Array).length,
      ...(options as zlib.ZstdOptions),
    }))

  it('decompresses a single frame in one call, as before, and each frame of several alone', () => {
    const one = zstd(logText(20_000))
    expect(decodeOne(one).error).toBeUndefined()
    expect(calls()).toEqual([expect.objectContaining({ length: one.length })])
    spy.mockClear()
    const frames = [zstd('a'), zstd(logText(20_000))]
    expect(
      decodeOne(Buffer.concat([frames[0], skippable(Buffer.alloc(9)), frames[1]] as Buffer[]))
        .error,
    ).toBeUndefined()
    expect(calls().map((call) => call.length)).toEqual(frames.map((frame) => frame.length))
  })

  it('holds maxDecompressedBytes over the sum of the frames, sizing each chunk to what is left', () => {
    const limit = 100_000
    const exactly = decodeOne(
      Buffer.concat([zstd(logText(60_000)), zstd(logText(40_000, 60_000))]),
      {
        maxDecompressedBytes: limit,
      },
    )
    expect(exactly.error).toBeUndefined()
    expect(Buffer.from(exactly.data).equals(logText(100_000))).toBe(true)
    // The second frame gets what is left of the limit, plus a byte: zlib stops there.
    expect(calls().map((call) => [call.maxOutputLength, call.chunkSize])).toEqual([
      [limit, 100_001],
      [40_000, 40_001],
    ])

    spy.mockClear()
    const over = decodeOne(Buffer.concat([zstd(logText(60_000)), zstd(logText(40_001))]), {
      maxDecompressedBytes: limit,
    })
    expect(over.error?.message).toMatch(
      /: data decompresses \(zstd\) to more than 100000 bytes, the maxDecompressedBytes limit$/,
    )
    expect(over.error?.retryable).toBe(false)
    expect(over.error?.cause).toMatchObject({ code: 'ERR_BUFFER_TOO_LARGE' })
    expect(calls().map((call) => call.chunkSize)).toEqual([100_001, 40_001])

    // A limit spent to the byte by the first frames still lets an empty frame through.
    const filled = Buffer.concat([zstd(logText(limit)), zstd(''), skippable(Buffer.alloc(3))])
    expect(decodeOne(filled, { maxDecompressedBytes: limit }).error).toBeUndefined()
    const oneMore = Buffer.concat([zstd(logText(limit)), zstd('x')])
    expect(decodeOne(oneMore, { maxDecompressedBytes: limit }).error?.message).toContain(
      'the maxDecompressedBytes limit',
    )
  })

  it('charges the batch budget for every frame, and 16 KiB for each after the first, stopping a record whose frames pass what is left', () => {
    const FRAME_COST = 16 * 1024
    const budget = { maxBatchDecompressedBytes: 150_000 + FRAME_COST }
    const first = lambdaRecord(zstd(logText(100_000)))
    const twoFrames = (a: number, b: number) =>
      lambdaRecord(Buffer.concat([zstd(logText(a)), zstd(logText(b, a))]))
    const fits = decodeEvent(kinesisEvent(first, twoFrames(30_000, 20_000)), budget)
    expect(fits.errors.size).toBe(0)
    expect(Buffer.from(fits.records[1]?.data as Uint8Array).equals(logText(50_000))).toBe(true)

    const spent = decodeEvent(
      kinesisEvent(first, twoFrames(30_000, 20_001), lambdaRecord(zstd('later'))),
      budget,
    )
    expect([...spent.status]).toEqual([0, 2, 2])
    for (const i of [1, 2]) {
      expect(spent.errors.get(i)?.retryable).toBe(true)
      expect(spent.errors.get(i)?.message).toContain(
        `does not fit in what is left of maxBatchDecompressedBytes (${150_000 + FRAME_COST})`,
      )
    }
    // Alone, over the budget: no invocation can decompress it.
    const alone = decodeEvent(kinesisEvent(twoFrames(100_000, 50_001)), budget)
    expect(alone.errors.get(0)?.retryable).toBe(false)
    expect(alone.errors.get(0)?.message).toContain('so no invocation can decompress it')
  })

  it('stops a payload of many tiny frames once their setup has spent the budget', () => {
    // zlib sets up each frame anew (about 12 µs): 20,000 empty frames of 9 bytes each would
    // take a quarter of a second, and a 6 MB invocation of them several seconds.
    const MiB = 1024 * 1024
    const tiny = lambdaRecord(Buffer.concat(new Array<Buffer>(20_000).fill(zstd(''))))
    const later = lambdaRecord(zstd('later'))
    const batch = decodeEvent(kinesisEvent(tiny, later), { maxBatchDecompressedBytes: MiB })
    expect([...batch.status]).toEqual([2, 2])
    expect(batch.errors.get(0)?.retryable).toBe(false)
    expect(batch.errors.get(0)?.message).toContain(
      'does not fit in what is left of maxBatchDecompressedBytes (1048576)',
    )
    expect(batch.errors.get(0)?.cause).toMatchObject({
      message: expect.stringMatching(/^zstd frame 66, at byte 585: /),
    })
    expect(batch.errors.get(1)?.retryable).toBe(true)
    // The first frame and the 64 that 1 MiB pays for, then nothing more of it; the later record
    // is tried for one byte, as every compressed record after the budget is spent.
    expect(spy).toHaveBeenCalledTimes(65 + 1)
  })

  // Well under a second alone; the timeout leaves room for a machine busy with other packages.
  it('decodes any sequence of frames to their contents, or fails it at the limit (property)', {
    timeout: 30_000,
  }, () => {
    fc.assert(
      fc.property(
        fc.array(framePart, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 120_000 }),
        (parts, limit) => {
          const frames = framesOf(parts)
          const expected = Buffer.concat(frames.map(({ content }) => content))
          const { data, error } = decodeOne(Buffer.concat(frames.map(({ frame }) => frame)), {
            decompress: 'zstd',
            maxDecompressedBytes: limit,
          })
          if (expected.length <= limit) {
            expect(error).toBeUndefined()
            expect(Buffer.from(data).equals(expected)).toBe(true)
          } else {
            expect(error?.message).toContain('the maxDecompressedBytes limit')
          }
          for (const call of calls()) {
            expect(call.maxOutputLength).toBeLessThanOrEqual(limit)
            expect(call.chunkSize ?? 0).toBeLessThanOrEqual(limit + 1)
          }
          spy.mockClear()
        },
      ),
      { numRuns: 300 },
    )
  })
})
