/**
 * zlib's output chunk is sized from the size a payload declares (gzip's ISIZE trailer, zstd's
 * Frame_Content_Size). The header is not trusted: these tests give it lies and check that the
 * result and every limit are those of zlib's default chunks, and that the chunks stay in bounds:
 * at least 2 KiB and 4 bytes per compressed byte (up to zlib's default 16 KiB), at most the
 * limit + 1 and twice what deflate's 1032:1 lets the compressed bytes become.
 */
import zlib from 'node:zlib'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { decodeEvent } from './index.js'
import { kinesisEvent, lambdaRecord, logText } from './kpl.fixture.js'

const DEFAULT_CHUNK = 16 * 1024
const gunzip = zlib.gunzipSync

/** `gzip` with its ISIZE trailer replaced by `claim`. */
function claiming(gzip: Buffer, claim: number): Buffer {
  const copy = Buffer.from(gzip)
  copy.writeUInt32LE(claim, copy.length - 4)
  return copy
}

function decodeOne(bytes: Uint8Array, options?: Parameters<typeof decodeEvent>[1]) {
  const batch = decodeEvent(kinesisEvent(lambdaRecord(bytes)), options)
  return { data: batch.records[0]?.data as Uint8Array, error: batch.errors.get(0) }
}

/** zlib allocates chunks of exactly the `chunkSize` it is given; 16 KiB when given none. */
let spies: MockInstance[] = []
const chunkSizes = () =>
  spies.flatMap((spy) =>
    spy.mock.calls.map((call) => (call[1] as zlib.ZlibOptions | undefined)?.chunkSize),
  )
beforeEach(() => {
  spies = [vi.spyOn(zlib, 'gunzipSync'), vi.spyOn(zlib, 'zstdDecompressSync')]
})
afterEach(() => {
  for (const spy of spies) spy.mockRestore()
})

/** The smallest chunk for a payload of these compressed bytes, whatever its header says. */
const leastChunk = (bytes: Uint8Array) => Math.min(DEFAULT_CHUNK, Math.max(2048, 4 * bytes.length))

/**
 * zlib stops after the first chunk that takes the output past the limit: with chunks of `chunk`
 * bytes, a payload over `limit` produces `ceil((limit + 1) / chunk)` whole chunks first.
 */
const producedBeforeStop = (chunk: number, limit: number) => Math.ceil((limit + 1) / chunk) * chunk

describe('zlib output chunks sized from the payload header', () => {
  it.each([
    ['gzip', (bytes: Buffer) => zlib.gzipSync(bytes)],
    ['zstd', (bytes: Buffer) => zlib.zstdCompressSync(bytes)],
  ] as const)(
    'hands back a %s payload in the one chunk its header sizes, neither joined nor copied',
    (_, compress) => {
      for (const size of [20_000, 200_000, 2_000_000]) {
        const payload = logText(size)
        const { data, error } = decodeOne(compress(payload))
        expect(error).toBeUndefined()
        expect(Buffer.from(data).equals(payload)).toBe(true)
        // The chunk is `limit + 1` split evenly: a little more than the payload when it is far
        // under the limit, at most twice it.
        const chunk = chunkSizes().at(-1) as number
        expect(chunk).toBeGreaterThan(size)
        expect(chunk).toBeLessThan(size < 1e6 ? size * 1.02 : 2 * (size + 1))
        if (chunk < Buffer.poolSize >>> 1) {
          // Node allocates a buffer under half its pool size in its shared slab: 20 KB on
          // Node 24, whose pool is 64 KiB (Node 22's is 8 KiB).
          expect(data.buffer.byteLength).toBe(Buffer.poolSize)
        } else {
          // The chunk itself: a join or a copy would be exactly `size`.
          expect(data.byteOffset).toBe(0)
          expect(data.buffer.byteLength).toBe(chunk)
        }
      }
    },
  )

  it('sizes a small payload’s chunk too, but leaves zlib, which declares no size, to the default', () => {
    const wanted: number[] = []
    // chunkSizes() lists the gzip calls, then the zstd ones.
    for (const compress of [zlib.gzipSync, zlib.zstdCompressSync]) {
      for (const size of [300, 2_500, 10_000]) {
        const bytes = compress(logText(size))
        const { data, error } = decodeOne(bytes)
        expect(error).toBeUndefined()
        expect(Buffer.from(data).equals(logText(size))).toBe(true)
        wanted.push(Math.max(size + 1, leastChunk(bytes)))
      }
    }
    const inflate = vi.spyOn(zlib, 'inflateSync')
    decodeOne(zlib.deflateSync(logText(100_000)), { decompress: 'zlib' })
    expect(inflate.mock.calls[0]?.[1]?.chunkSize).toBeUndefined()
    inflate.mockRestore()
    // A payload of 2.5 KB gets a chunk of its own size, under 4 KiB and so from Node's shared
    // pool, instead of an allocation of 16 KiB; 300 bytes get 2 KiB.
    const chunks = chunkSizes() as number[]
    expect(chunks).toHaveLength(wanted.length)
    chunks.forEach((chunk, i) => {
      expect(chunk).toBeGreaterThanOrEqual(wanted[i] as number)
      expect(chunk).toBeLessThan((wanted[i] as number) * 1.01)
    })
    expect(chunks[1]).toBeLessThan(4096)
  })

  it('keeps chunks of at least 2 KiB, and 4 bytes per compressed byte up to 16 KiB, when the trailer claims less than the payload holds', () => {
    const payload = logText(300_000)
    const gzip = zlib.gzipSync(payload)
    // Zero padding after the member, which zlib accepts: the "trailer" then reads 0.
    const padded = decodeOne(Buffer.concat([gzip, Buffer.alloc(4)]))
    expect(padded.error).toBeUndefined()
    expect(Buffer.from(padded.data).equals(payload)).toBe(true)
    // A trailer that lies small fails zlib's length check, after the whole output, as before.
    const lying = decodeOne(claiming(gzip, 100))
    expect(lying.error?.message).toMatch(/: data is not valid gzip: incorrect length check$/)
    // A tiny bomb whose trailer claims nothing: at most 1032 / 4 = 258 chunks, none under 2 KiB.
    const bomb = zlib.gzipSync(Buffer.alloc(1_500_000))
    expect(decodeOne(claiming(bomb, 0)).error?.message).toContain('incorrect length check')
    const [paddedChunk, lyingChunk, bombChunk] = chunkSizes() as [number, number, number]
    expect(Math.min(paddedChunk, lyingChunk)).toBeGreaterThanOrEqual(DEFAULT_CHUNK)
    expect(bombChunk).toBeGreaterThanOrEqual(leastChunk(bomb))
    expect(leastChunk(bomb)).toBe(4 * bomb.length)
    expect(Math.ceil(1_500_000 / bombChunk)).toBeLessThanOrEqual(258)
  })

  it('reads zstd’s Frame_Content_Size in every header layout, and keeps zlib’s chunks when the header leaves it out', () => {
    const payload = logText(30_000)
    const frame = zlib.zstdCompressSync(payload)
    // The frame header after the magic: descriptor, window descriptor (unless single-segment),
    // dictionary id (0, 1, 2 or 4 bytes; 0 means none), content size (0, 1, 2, 4 or 8 bytes).
    const descriptor = frame[4] as number
    const single = (descriptor >> 5) & 1
    const sizeField = descriptor >> 6 === 0 ? single : 1 << (descriptor >> 6)
    const blocks = frame.subarray(
      5 + (single ^ 1) + ([0, 1, 2, 4][descriptor & 3] as number) + sizeField,
    )
    const layouts: Array<[single: number, sizeFlag: number, dictionaryFlag: number]> = []
    for (const s of [0, 1]) {
      for (const sizeFlag of [0, 1, 2, 3]) {
        for (const dictionaryFlag of [0, 1, 2, 3]) {
          if (s === 0 || sizeFlag > 0) layouts.push([s, sizeFlag, dictionaryFlag])
        }
      }
    }
    for (const [s, sizeFlag, dictionaryFlag] of layouts) {
      const size = Buffer.alloc(sizeFlag === 0 ? 0 : 1 << sizeFlag)
      if (sizeFlag === 1) size.writeUInt16LE(payload.length - 256)
      if (sizeFlag === 2) size.writeUInt32LE(payload.length)
      if (sizeFlag === 3) size.writeBigUInt64LE(BigInt(payload.length))
      const bytes = Buffer.concat([
        frame.subarray(0, 4),
        Buffer.of((sizeFlag << 6) | (s << 5) | (descriptor & 4) | dictionaryFlag),
        Buffer.alloc(s ^ 1, 0x28), // a 32 KiB window
        Buffer.alloc([0, 1, 2, 4][dictionaryFlag] as number),
        size,
        blocks,
      ])
      const { data, error } = decodeOne(bytes)
      expect(error).toBeUndefined()
      expect(Buffer.from(data).equals(payload)).toBe(true)
    }
    const chunks = chunkSizes()
    layouts.forEach(([, sizeFlag], i) => {
      if (sizeFlag > 0) {
        expect(chunks[i]).toBeGreaterThan(payload.length)
        expect(chunks[i]).toBeLessThan(payload.length * 1.02)
      } else expect(chunks[i] ?? DEFAULT_CHUNK).toBeLessThanOrEqual(DEFAULT_CHUNK + 1)
    })
  })

  it('allocates no more for a header that claims 4 GiB than the record could decompress to', () => {
    const gzip = zlib.gzipSync('hello, world')
    const lyingGzip = decodeOne(claiming(gzip, 0xffffffff))
    expect(lyingGzip.error?.message).toMatch(/: data is not valid gzip: incorrect length check$/)
    // zstd: the one-byte Frame_Content_Size rewritten as an 8-byte field claiming 2^40.
    const zstd = zlib.zstdCompressSync('hello, world')
    expect(zstd[4]).toBe(0x20) // Single_Segment_flag, one-byte Frame_Content_Size
    const header = Buffer.alloc(8)
    header.writeBigUInt64LE(2n ** 40n)
    const lyingZstd = Buffer.concat([
      zstd.subarray(0, 4),
      Buffer.of(0xe0),
      header,
      zstd.subarray(6),
    ])
    expect(decodeOne(lyingZstd).error?.message).toContain('data is not valid zstd')
    const [gzipChunk, zstdChunk] = chunkSizes() as [number, number]
    // 1032 to 1 is deflate's highest ratio: the chunk is about 32 KB, not the 16 MiB limit.
    expect(gzipChunk).toBeLessThanOrEqual(2 * (gzip.length * 1032 + 1))
    expect(zstdChunk).toBeLessThanOrEqual(2 * (lyingZstd.length * 1032 + 1))
    expect(Math.max(gzipChunk, zstdChunk)).toBeLessThan(64 * 1024)
  })

  it.each([
    ['gzip', (bytes: Buffer) => zlib.gzipSync(bytes)],
    ['zstd', (bytes: Buffer) => zlib.zstdCompressSync(bytes)],
  ] as const)(
    'decodes a %s record of exactly maxDecompressedBytes and fails one a byte over',
    (format, compress) => {
      const limit = 100_000
      const atLimit = decodeOne(compress(logText(limit)), { maxDecompressedBytes: limit })
      expect(atLimit.error).toBeUndefined()
      expect(Buffer.from(atLimit.data).equals(logText(limit))).toBe(true)
      expect(atLimit.data.buffer.byteLength).toBeLessThan(limit * 1.01)
      const over = decodeOne(compress(logText(limit + 1)), { maxDecompressedBytes: limit })
      expect(over.error?.message).toMatch(
        `: data decompresses (${format}) to more than 100000 bytes, the maxDecompressedBytes limit`,
      )
      for (const chunk of chunkSizes() as number[]) {
        expect(chunk).toBeLessThanOrEqual(limit + 1)
        expect(producedBeforeStop(chunk, limit)).toBe(limit + 1)
      }
    },
  )

  it('stops a payload whose trailer claims just under the limit within a few bytes of it', () => {
    const limit = 1_000_000
    const lying = claiming(zlib.gzipSync(logText(3 * limit)), limit - 1)
    const { error } = decodeOne(lying, { maxDecompressedBytes: limit })
    expect(error?.message).toContain('the maxDecompressedBytes limit')
    // A chunk of `limit` bytes would have let it produce 2 MB before zlib's check.
    const [chunk] = chunkSizes() as [number]
    expect(chunk).toBeGreaterThanOrEqual(limit)
    expect(producedBeforeStop(chunk, limit)).toBe(limit + 1)
  })

  it('decodes multi-member gzip, whose trailer gives only the last member, whatever its size', () => {
    const big = logText(100_000)
    const cases = [
      [big, Buffer.from('tail')],
      [Buffer.from('head'), big],
      [big, big],
    ]
    for (const members of cases) {
      const { data, error } = decodeOne(Buffer.concat(members.map((m) => zlib.gzipSync(m))))
      expect(error).toBeUndefined()
      expect(Buffer.from(data).equals(Buffer.concat(members))).toBe(true)
    }
    const tooBig = decodeOne(Buffer.concat([zlib.gzipSync(big), zlib.gzipSync(big)]), {
      maxDecompressedBytes: 150_000,
    })
    expect(tooBig.error?.message).toContain('to more than 150000 bytes, the maxDecompressedBytes')
    const chunks = chunkSizes()
    expect(chunks[0]).toBeLessThanOrEqual(DEFAULT_CHUNK + 1)
    expect(producedBeforeStop(chunks[3] as number, 150_000)).toBe(150_001)
  })

  it('sizes the chunk to what is left of a nearly spent budget, and no more', () => {
    const budget = { maxBatchDecompressedBytes: 150_000 }
    const first = lambdaRecord(zlib.gzipSync(logText(100_000)))
    const exactlyTheRest = lambdaRecord(zlib.gzipSync(logText(50_000)))
    const fits = decodeEvent(kinesisEvent(first, exactlyTheRest), budget)
    expect(fits.errors.size).toBe(0)
    // Each chunk is what was left, plus one byte: the first, 100,000 bytes, keeps a chunk of
    // 150,001 (the limit split evenly, see chunkSizeOf), the second exactly its own.
    expect(fits.records[1]?.data.buffer.byteLength).toBe(50_001)

    const oneMore = lambdaRecord(zlib.gzipSync(logText(50_001)))
    const spent = decodeEvent(kinesisEvent(first, oneMore), budget)
    expect([...spent.status]).toEqual([0, 2])
    expect(spent.errors.get(1)?.retryable).toBe(true)
    expect(spent.errors.get(1)?.message).toContain('does not fit in what is left')
    expect(chunkSizes()).toEqual([150_001, 50_001, 150_001, 50_001])
  })

  // Under a second alone; the timeout leaves room for a machine busy with the other packages.
  it('gives the result and error of default chunks, within its bounds, whatever a trailer claims (property)', {
    timeout: 30_000,
  }, () => {
    const claims = (size: number, limit: number) =>
      fc.oneof(
        fc.constant(size),
        fc.constant(0xffffffff),
        fc.constant(limit - 1),
        fc.integer({ min: 0, max: 2 * size + DEFAULT_CHUNK }),
      )
    const cases = fc
      .record({
        size: fc.integer({ min: 0, max: 150_000 }),
        tail: fc.option(fc.integer({ min: 0, max: 40_000 }), { nil: undefined }),
        limit: fc.integer({ min: 1, max: 200_000 }),
      })
      .chain((c) => fc.record({ claim: claims(c.size, c.limit) }).map((x) => ({ ...c, ...x })))
    fc.assert(
      fc.property(cases, ({ size, tail, limit, claim }) => {
        for (const spy of spies) spy.mockClear()
        const members = [zlib.gzipSync(logText(size))]
        if (tail !== undefined) members.push(zlib.gzipSync(logText(tail)))
        const bytes = claiming(Buffer.concat(members), claim)
        let expected: Buffer | Error
        try {
          expected = gunzip(bytes, { maxOutputLength: limit })
        } catch (error) {
          expected = error as Error
        }
        const { data, error } = decodeOne(bytes, { maxDecompressedBytes: limit })
        const overLimit = 'the maxDecompressedBytes limit'
        if (!(expected instanceof Error)) {
          expect(error).toBeUndefined()
          expect(Buffer.from(data).equals(expected)).toBe(true)
        } else if (size + (tail ?? 0) <= limit) {
          expect(error?.message).toContain(`data is not valid gzip: ${expected.message}`)
        } else {
          // Over the limit and corrupt (a lying trailer): which zlib notices first depends on
          // where the chunks end, with any chunk size.
          expect(error?.message).toMatch(
            /the maxDecompressedBytes limit$|: data is not valid gzip: /,
          )
        }
        if (
          (expected as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' &&
          tail === undefined &&
          claim === size
        ) {
          expect(error?.message).toContain(overLimit)
        }
        const [chunk] = chunkSizes()
        const least = leastChunk(bytes)
        if (chunk === undefined) {
          expect(least).toBeGreaterThan(limit + 1)
        } else {
          const declared = Math.min(claim, limit, bytes.length * 1032)
          expect(chunk).toBeGreaterThanOrEqual(least)
          expect(chunk).toBeGreaterThan(declared)
          expect(chunk).toBeLessThanOrEqual(Math.min(limit + 1, 2 * Math.max(least, declared + 1)))
          expect(producedBeforeStop(chunk, limit) - (limit + 1)).toBeLessThan(
            (limit + 1) / chunk + 1,
          )
        }
      }),
      { numRuns: 400 },
    )
  })
})
