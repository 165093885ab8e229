import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import zlib from 'node:zlib'
import {
  BATCH,
  batchResponse,
  ConfigurationError,
  type DecodedEvent,
  DecodeError,
  type KinesisRecord,
  type KinesisStreamEvent,
  type RecordBatch,
  RecordStatus,
} from '@shardwise/core'
import fc from 'fast-check'
import { describe, expect, expectTypeOf, it, vi } from 'vitest'
import {
  DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  DEFER_FROM,
  decodeEvent,
  type KinesisDecodeOptions,
  kinesisDecode,
} from './index.js'
import {
  base64Record,
  kinesisEvent,
  lambdaRecord,
  pb,
  peerAggregates,
  peerEncodedAggregate,
  text,
  withFraming,
} from './kpl.fixture.js'

const sample = (): KinesisStreamEvent =>
  JSON.parse(
    readFileSync(new URL('../../../examples/events/kinesis-sample.json', import.meta.url), 'utf8'),
  )

describe('kinesisDecode on plain records', () => {
  it('decodes the AWS sample event to its two messages, with their coordinates', () => {
    const event = sample()
    const batch = decodeEvent(event)
    expect(batch.records.map((record) => text(record.data))).toEqual([
      'Hello, this is a test.',
      'This is only a test.',
    ])
    expect(batch.records[1]).toMatchObject({
      partitionKey: '1',
      explicitHashKey: undefined,
      sequenceNumber: '49590338271490256608559692540925702759324208523137515618',
      subSequenceNumber: undefined,
      approximateArrivalTimestamp: 1545084711.166,
      shardId: 'shardId-000000000006',
      eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
    })
    expect(batch.records[1]?.lambdaRecord).toBe(event.Records[1])
    expect([...batch.status]).toEqual([RecordStatus.Pending, RecordStatus.Pending])
    expect(batch.errors.size).toBe(0)
  })

  it('attaches the batch to the event in before()', async () => {
    const event = sample() as DecodedEvent
    await kinesisDecode().before?.({ event } as never)
    expect(event[BATCH].records).toHaveLength(2)
  })

  it('refuses to run twice in one invocation, which would undo what ran in between', async () => {
    const request = { event: sample() }
    await kinesisDecode().before?.(request as never)
    expect(() => kinesisDecode().before?.(request as never)).toThrow(
      "@shardwise/kinesis-decode: kinesisDecode() is in the middy chain twice; the second would decode again, undoing what ran between (a parser's values and failures): keep one",
    )
    // The same event in a new invocation (a test that calls the handler again) decodes again.
    await kinesisDecode().before?.({ event: request.event } as never)
  })

  it('fails a record whose data is not base64, alone, naming it', () => {
    const good = lambdaRecord('ok')
    const bad = [base64Record('not base64!'), base64Record('YWJj*GVm'), base64Record('YWJ')]
    const batch = decodeEvent(kinesisEvent(good, ...bad))
    expect([...batch.status]).toEqual([0, 2, 2, 2])
    expect(text(batch.records[0]?.data as Uint8Array)).toBe('ok')
    const error = batch.errors.get(1)
    expect(error).toBeInstanceOf(DecodeError)
    expect(error?.message).toContain(bad[0]?.kinesis.sequenceNumber)
    expect(error?.message).toContain('not valid base64')
    expect(error?.retryable).toBe(false)
    // What a dead-letter sink keeps of it: the text as it came, not nothing.
    expect(text(batch.records[1]?.rawData as Uint8Array)).toBe('not base64!')
  })

  it('turns an empty event into an empty batch', () => {
    expect(decodeEvent({ Records: [] }).records).toEqual([])
  })
})

describe('large plain records, decoded at their turn', () => {
  /** The fewest bytes whose base64 is DEFER_FROM characters or more. */
  const large = (fill: number, size = (DEFER_FROM / 4) * 3) => Buffer.alloc(size, fill)

  it('decodes a large plain record at each read of its data, and the batch keeps none of its bytes', () => {
    const payload = large(97)
    const event = kinesisEvent(lambdaRecord('small'), lambdaRecord(payload), lambdaRecord('after'))
    const batch = decodeEvent(event)
    expect(batch.deferred).toEqual(new Set([1]))
    expect(batch.records.map((record) => text(record.data))).toEqual([
      'small',
      payload.toString(),
      'after',
    ])
    const record = batch.records[1] as KinesisRecord<Uint8Array>
    const held = Object.values(Object.getOwnPropertyDescriptors(record)).filter(
      (property) => property.value instanceof Uint8Array,
    )
    expect(held).toEqual([])
    // Decoded again at each read: nothing keeps the bytes alive but their reader.
    expect(record.data).not.toBe(record.data)
    expect(payload.equals(record.data)).toBe(true)
    expect(payload.equals(record.rawData)).toBe(true)
    expect(record).toMatchObject({
      partitionKey: 'carrier-key',
      sequenceNumber: event.Records[1]?.kinesis.sequenceNumber,
      subSequenceNumber: undefined,
      lambdaRecord: event.Records[1],
    })
    // Spread and JSON see the bytes, as on any record.
    expect(payload.equals({ ...record }.data)).toBe(true)
    expect(JSON.parse(JSON.stringify(record)).rawData).toEqual(payload.toJSON())
    expect([...batch.status]).toEqual([0, 0, 0])
  })

  it('decodes a large record from the text it checked, whatever a later middleware writes over the event', () => {
    const payload = large(99)
    const event = kinesisEvent(lambdaRecord(payload))
    const batch = decodeEvent(event)
    // As @middy/event-normalizer does when it is used after kinesisDecode.
    ;(event.Records[0] as { kinesis: { data: unknown } }).kinesis.data = { normalized: true }
    const record = batch.records[0] as KinesisRecord<Uint8Array>
    expect(payload.equals(record.data)).toBe(true)
    expect(payload.equals(record.rawData)).toBe(true)
  })

  it('keeps what a step sets on a deferred record', () => {
    const batch = decodeEvent(kinesisEvent(lambdaRecord(large(98))))
    const record = batch.records[0] as KinesisRecord<unknown>
    record.data = { parsed: true }
    expect(record.data).toEqual({ parsed: true })
    expect(Buffer.from(record.rawData).equals(large(98))).toBe(true)
    record.rawData = Buffer.from('kept')
    expect(text(record.rawData)).toBe('kept')
    // A value that means nothing is still a value: a schema may answer undefined.
    record.data = undefined
    expect(record.data).toBeUndefined()
    expect({ ...record }).toMatchObject({ data: undefined, rawData: Buffer.from('kept') })
  })

  it('decodes ahead, as before, a record under the threshold, and aggregates and compressed data whatever their size', () => {
    const under = large(67, (DEFER_FROM / 4) * 3 - 3)
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: large(65) },
      { partitionKey: 'b', data: Buffer.from('two') },
    ])
    const random = randomBytes(DEFER_FROM)
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), large(66)])
    const event = kinesisEvent(
      lambdaRecord(under),
      lambdaRecord(aggregate as Buffer),
      lambdaRecord(zlib.gzipSync(random)),
      lambdaRecord(zstd),
      lambdaRecord(large(68)),
    )
    expect(event.Records[0]?.kinesis.data.length).toBeLessThan(DEFER_FROM)
    const batch = decodeEvent(event)
    // Only the last one is large and plain; the zstd frame is corrupt and fails alone.
    expect(batch.deferred).toEqual(new Set([5]))
    expect([...batch.status]).toEqual([0, 0, 0, 0, 2, 0])
    const data = batch.records.map((record) => Buffer.from(record.data))
    expect(data[0]?.equals(under)).toBe(true)
    expect(data[1]?.equals(large(65))).toBe(true)
    expect(text(data[2] as Buffer)).toBe('two')
    expect(data[3]?.equals(random)).toBe(true)
    expect(data[4]?.equals(zstd)).toBe(true)
    expect(data[5]?.equals(large(68))).toBe(true)
  })

  it('fails a large record that is not valid base64 before the loop, naming it, as any record', () => {
    const bad = [
      base64Record(`${'QUJD'.repeat(DEFER_FROM / 4)}*QUJ`),
      base64Record(`${'QUJD'.repeat(DEFER_FROM / 4)}QQ`),
      base64Record(`${'QUJD'.repeat(DEFER_FROM / 4)} QUJ`),
    ]
    // Decoded once each, into the scratch buffer that shows them bad, not again from their text.
    const from = vi.spyOn(Buffer, 'from')
    const write = vi.spyOn(Buffer.prototype, 'write')
    let batch: RecordBatch<Uint8Array>
    try {
      batch = decodeEvent(kinesisEvent(...bad))
      const base64 = [...from.mock.calls, ...write.mock.calls].filter((call) =>
        call.includes('base64' as never),
      )
      expect(base64).toHaveLength(bad.length)
    } finally {
      from.mockRestore()
      write.mockRestore()
    }
    expect(batch.deferred).toBeUndefined()
    expect([...batch.status]).toEqual([2, 2, 2])
    for (const [i, record] of bad.entries()) {
      const error = batch.errors.get(i)
      expect(error).toBeInstanceOf(DecodeError)
      expect(error?.message).toContain(record.kinesis.sequenceNumber)
      expect(error?.message).toContain('not valid base64')
      expect(text(batch.records[i]?.rawData as Uint8Array)).toBe(record.kinesis.data)
    }
  })

  it('defers a large record only when its options would hand its bytes on as they are', () => {
    const gzipped = zlib.gzipSync(randomBytes(DEFER_FROM))
    const [aggregate] = peerAggregates([{ partitionKey: 'a', data: large(69) }])
    const event = () =>
      kinesisEvent(
        lambdaRecord(gzipped),
        lambdaRecord(aggregate as Buffer),
        lambdaRecord(large(70)),
      )
    expect(decodeEvent(event(), { decompress: false, deaggregate: false }).deferred).toEqual(
      new Set([0, 1, 2]),
    )
    expect(decodeEvent(event(), { decompress: false }).deferred).toEqual(new Set([0, 2]))
    // An explicit format expects every record compressed: the plain one fails as before.
    const zlibBatch = decodeEvent(event(), { decompress: 'zlib' })
    expect(zlibBatch.deferred).toBeUndefined()
    expect(zlibBatch.errors.get(2)).toBeInstanceOf(DecodeError)
  })
  it('decodes the base64 of a large aggregate or compressed record once, to check it and to read it', () => {
    const payload = randomBytes(DEFER_FROM)
    const [aggregate] = peerAggregates([{ partitionKey: 'a', data: large(72) }])
    const event = kinesisEvent(
      lambdaRecord(zlib.gzipSync(payload)),
      lambdaRecord(aggregate as Buffer),
    )
    // Both ways of decoding base64 text: into a new buffer, or into the scratch buffer.
    const from = vi.spyOn(Buffer, 'from')
    const write = vi.spyOn(Buffer.prototype, 'write')
    let batch: RecordBatch<Uint8Array>
    try {
      batch = decodeEvent(event)
      const base64 = [...from.mock.calls, ...write.mock.calls].filter((call) =>
        call.includes('base64' as never),
      )
      expect(base64).toHaveLength(2)
    } finally {
      from.mockRestore()
      write.mockRestore()
    }
    expect(batch.deferred).toBeUndefined()
    expect([...batch.status]).toEqual([0, 0])
    expect(payload.equals(batch.records[0]?.data as Uint8Array)).toBe(true)
    expect(large(72).equals(batch.records[1]?.data as Uint8Array)).toBe(true)
    // The bytes are the record's own, not a view of the scratch buffer the next record reuses.
    expect(zlib.gunzipSync(batch.records[0]?.rawData as Uint8Array).equals(payload)).toBe(true)
  })

  it('checks a batch of growing large records in a few scratch buffers, not one per record', () => {
    // 400 records of about 10 KiB, each a few bytes longer than the one before, as a batch of
    // like records often is, then 4 of about 1 MiB: each buffer stays allocated outside the V8
    // heap until a collection, and one per longer record allocated 2.4 MiB and 4 MiB of them.
    const sizes = [
      ...Array.from({ length: 400 }, (_, i) => 10 * 1024 + 4 * i),
      ...[0, 8, 40, 24].map((extra) => 1024 * 1024 + extra),
    ]
    const event = kinesisEvent(...sizes.map((size, i) => lambdaRecord(large(i % 256, size))))
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe')
    try {
      const batch = decodeEvent(event)
      expect(batch.deferred?.size).toBe(sizes.length)
      const scratches = allocUnsafe.mock.calls.filter(([size]) => size >= (DEFER_FROM / 4) * 3)
      expect(scratches.length).toBeLessThanOrEqual(3)
    } finally {
      allocUnsafe.mockRestore()
    }
    // A scratch larger than a record's bytes checks it as before: bad base64 after a larger record.
    const bad = base64Record(`${'QUJD'.repeat(DEFER_FROM / 4)}*QUJ`)
    const batch = decodeEvent(kinesisEvent(lambdaRecord(large(71, 64 * 1024)), bad))
    expect(batch.deferred).toEqual(new Set([0]))
    expect([...batch.status]).toEqual([0, 2])
    expect(batch.errors.get(1)?.message).toContain('not valid base64')
  })
})

describe('kinesisDecode refuses what is not a Kinesis event', () => {
  const sqs = { Records: [{ eventSource: 'aws:sqs', messageId: '1', body: '{}' }] }
  const dynamodb = { Records: [{ eventSource: 'aws:dynamodb', dynamodb: {} }] }

  it.each([
    ['an SQS event', sqs, 'got aws:sqs'],
    ['a DynamoDB stream event', dynamodb, 'got aws:dynamodb'],
    ['an event without Records', { detail: {} }, 'got an event without Records'],
    ['a null event', null, 'event, got null'],
    // Found by the chain fuzz (test/src/chain.fuzz.test.ts): this threw a TypeError.
    ['a null first record', { Records: [null] }, 'got records without eventSource'],
  ])('fails the batch on %s, saying what it got', (_, event, got) => {
    const before = () => kinesisDecode().before?.({ event } as never)
    expect(before).toThrow(ConfigurationError)
    expect(before).toThrow(got)
    expect(() => decodeEvent(event as never)).toThrow(/expected an aws:kinesis event/)
  })

  it.each([
    [{ id: 1 }, 'an object'],
    [[1], 'an array'],
    [7, 'a number'],
    [null, 'null'],
  ])(
    'fails the batch when data is %j, which a middleware before it decoded, saying which',
    (data, got) => {
      const record = lambdaRecord('ok')
      const decoded = { ...record, kinesis: { ...record.kinesis, data } }
      expect(() => decodeEvent(kinesisEvent(record, decoded as never))).toThrow(
        `@shardwise/kinesis-decode: Records[1].kinesis.data is ${got}, not Lambda's base64: a middleware before kinesisDecode decoded it (as @middy/event-normalizer does); remove it, or .use() it after kinesisDecode()`,
      )
    },
  )

  it('fails the batch when a record has no sequence number, since it could not be reported', () => {
    const record = lambdaRecord('ok')
    for (const sequenceNumber of [undefined, 5, '']) {
      const broken = { ...record, kinesis: { ...record.kinesis, sequenceNumber } }
      expect(() => decodeEvent(kinesisEvent(record, broken as never))).toThrow(
        /Records\[1\] has no kinesis.sequenceNumber/,
      )
    }
  })

  it('decodes a record without an eventID, with an empty shard id, instead of throwing', () => {
    // Found by the chain fuzz (test/src/chain.fuzz.test.ts): eventID.indexOf threw a TypeError.
    for (const eventID of [undefined, null, 42, {}]) {
      const broken = { ...lambdaRecord('ok'), eventID }
      const batch = decodeEvent(kinesisEvent(broken as never))
      expect(batch.records[0]?.shardId).toBe('')
      expect(text(batch.records[0]?.data as Uint8Array)).toBe('ok')
    }
  })
})

describe('kinesisDecode options', () => {
  it.each([
    [{ deaggregate: 'yes' }, "Option 'deaggregate' must be boolean"],
    [{ decompress: 'brotli' }, "Option 'decompress' must be one of"],
    [{ decompress: true }, "Option 'decompress' must be one of"],
    [{ maxDecompressedBytes: 0 }, "Option 'maxDecompressedBytes' must be >= 1"],
    [{ maxDecompressedBytes: 1.5 }, "Option 'maxDecompressedBytes' must be integer"],
    [{ maxDecompressedBytes: '1MB' }, "Option 'maxDecompressedBytes' must be integer"],
    [{ maxDecompressedBytes: 2 ** 60 }, "Option 'maxDecompressedBytes' must be <="],
    [{ maxBatchDecompressedBytes: 0 }, "Option 'maxBatchDecompressedBytes' must be >= 1"],
    [{ maxBatchDecompressedBytes: 1.5 }, "Option 'maxBatchDecompressedBytes' must be integer"],
    [{ maxBatchDecompressedBytes: 2 ** 60 }, "Option 'maxBatchDecompressedBytes' must be <="],
    [{ deaggregation: false }, "Unknown option 'deaggregation'"],
    ['gzip', 'options must be an object, got a string'],
  ])('rejects %j when the middleware is built', (options, message) => {
    expect(() => kinesisDecode(options as never)).toThrow(ConfigurationError)
    expect(() => kinesisDecode(options as never)).toThrow(message)
    expect(() => kinesisDecode(options as never)).toThrow('@shardwise/kinesis-decode')
  })

  it('types the options so that a wrong value does not compile', () => {
    expectTypeOf(kinesisDecode).parameter(0).toEqualTypeOf<KinesisDecodeOptions | undefined>()
    expectTypeOf<KinesisDecodeOptions['decompress']>().toEqualTypeOf<
      'auto' | 'gzip' | 'zstd' | 'zlib' | false | undefined
    >()
    // @ts-expect-error: brotli is not a format Kinesis producers use
    expect(() => kinesisDecode({ decompress: 'brotli' })).toThrow(ConfigurationError)
    // @ts-expect-error: the limit is a number of bytes
    expect(() => kinesisDecode({ maxDecompressedBytes: '1MB' })).toThrow(ConfigurationError)
    // @ts-expect-error: so is the batch's
    expect(() => kinesisDecode({ maxBatchDecompressedBytes: '256MB' })).toThrow(ConfigurationError)
  })

  it('accepts every documented value', () => {
    for (const decompress of ['auto', 'gzip', 'zstd', 'zlib', false] as const) {
      expect(() => kinesisDecode({ decompress, deaggregate: false })).not.toThrow()
    }
    expect(() => kinesisDecode({ maxDecompressedBytes: 1 })).not.toThrow()
    expect(() => kinesisDecode({ maxBatchDecompressedBytes: 1 })).not.toThrow()
    expect(DEFAULT_MAX_DECOMPRESSED_BYTES).toBe(16 * 1024 * 1024)
    expect(DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES).toBe(256 * 1024 * 1024)
  })
})

describe('KPL de-aggregation', () => {
  const userRecords = [
    { partitionKey: 'user-1', data: Buffer.from('first') },
    {
      partitionKey: 'user-2',
      explicitHashKey: '170141183460469231731687303715884105728',
      data: Buffer.from('second'),
    },
    { partitionKey: 'user-1', data: Buffer.alloc(0) },
  ]

  it('expands an aggregate in place, with each user record’s keys and the carrier’s place', () => {
    const [aggregate] = peerAggregates(userRecords)
    const before = lambdaRecord('before')
    const carrier = lambdaRecord(aggregate as Buffer)
    const after = lambdaRecord('after')
    const batch = decodeEvent(kinesisEvent(before, carrier, after))
    expect(batch.records.map((record) => text(record.data))).toEqual([
      'before',
      'first',
      'second',
      '',
      'after',
    ])
    expect(
      batch.records.map(({ partitionKey, explicitHashKey, sequenceNumber, subSequenceNumber }) => ({
        partitionKey,
        explicitHashKey,
        sequenceNumber,
        subSequenceNumber,
      })),
    ).toEqual([
      {
        partitionKey: 'carrier-key',
        explicitHashKey: undefined,
        sequenceNumber: before.kinesis.sequenceNumber,
        subSequenceNumber: undefined,
      },
      {
        partitionKey: 'user-1',
        explicitHashKey: undefined,
        sequenceNumber: carrier.kinesis.sequenceNumber,
        subSequenceNumber: 0,
      },
      {
        partitionKey: 'user-2',
        explicitHashKey: '170141183460469231731687303715884105728',
        sequenceNumber: carrier.kinesis.sequenceNumber,
        subSequenceNumber: 1,
      },
      {
        partitionKey: 'user-1',
        explicitHashKey: undefined,
        sequenceNumber: carrier.kinesis.sequenceNumber,
        subSequenceNumber: 2,
      },
      {
        partitionKey: 'carrier-key',
        explicitHashKey: undefined,
        sequenceNumber: after.kinesis.sequenceNumber,
        subSequenceNumber: undefined,
      },
    ])
    for (const record of batch.records.slice(1, 4)) {
      expect(record.lambdaRecord).toBe(carrier)
      expect(record.shardId).toBe('shardId-000000000006')
      expect(record.approximateArrivalTimestamp).toBe(carrier.kinesis.approximateArrivalTimestamp)
    }
    expect(batch.status).toHaveLength(5)
  })

  it('counts the aggregates it expanded and the bytes decompression handed on, for metrics', () => {
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: zlib.gzipSync('fine') },
      { partitionKey: 'b', data: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01]) },
      { partitionKey: 'c', data: Buffer.from('plain') },
    ])
    const batch = decodeEvent(
      kinesisEvent(
        lambdaRecord(aggregate as Buffer),
        lambdaRecord(zlib.gzipSync('compressed alone')),
        lambdaRecord(zlib.gzipSync(aggregate as Buffer)),
        lambdaRecord('plain'),
      ),
    )
    // The compressed aggregate's bytes count, and its 'fine' again; the corrupt gzip, nothing.
    expect(batch.decoded).toEqual({
      kplAggregates: 2,
      bytesDecompressed:
        'fine'.length * 2 + 'compressed alone'.length + (aggregate as Buffer).length,
    })
    expect(
      decodeEvent(kinesisEvent(lambdaRecord(aggregate as Buffer)), { deaggregate: false }).decoded,
    ).toEqual({ kplAggregates: 0, bytesDecompressed: 0 })
  })

  it('leaves aggregates as they are with deaggregate: false', () => {
    const [aggregate] = peerAggregates(userRecords)
    const batch = decodeEvent(kinesisEvent(lambdaRecord(aggregate as Buffer)), {
      deaggregate: false,
    })
    expect(batch.records).toHaveLength(1)
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(aggregate as Buffer)).toBe(true)
  })

  it('indexes failures by expanded position and reports the carrier of a failed sub-record', () => {
    const corrupt = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02, 0x03])
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: zlib.gzipSync('fine') },
      { partitionKey: 'b', data: corrupt },
      { partitionKey: 'c', data: Buffer.from('after the bad one') },
    ])
    const first = lambdaRecord('first')
    const carrier = lambdaRecord(aggregate as Buffer)
    const batch = decodeEvent(kinesisEvent(first, carrier))
    expect([...batch.status]).toEqual([0, 0, 2, 0])
    expect(text(batch.records[1]?.data as Uint8Array)).toBe('fine')
    const error = batch.errors.get(2)
    expect(error).toBeInstanceOf(DecodeError)
    expect(error).toMatchObject({
      sequenceNumber: carrier.kinesis.sequenceNumber,
      subSequenceNumber: 1,
      partitionKey: 'b',
    })
    expect(error?.message).toContain('sub-record 1')
    expect(error?.message).toContain('not valid gzip')
    expect(Buffer.from(batch.records[2]?.data as Uint8Array).equals(corrupt)).toBe(true)
    batch.status[0] = RecordStatus.Succeeded
    batch.status[1] = RecordStatus.Succeeded
    expect(batchResponse(batch)).toEqual({
      batchItemFailures: [{ itemIdentifier: carrier.kinesis.sequenceNumber }],
    })
  })

  it('passes a record with the magic but a wrong MD5 through as a plain record, as the KCL does', () => {
    const [aggregate] = peerAggregates(userRecords)
    const tampered = Buffer.from(aggregate as Buffer)
    tampered.writeUInt8(0xff - (tampered.at(-1) as number), tampered.length - 1)
    const batch = decodeEvent(kinesisEvent(lambdaRecord(tampered)))
    expect(batch.records).toHaveLength(1)
    expect(batch.records[0]?.subSequenceNumber).toBeUndefined()
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(tampered)).toBe(true)
    expect(batch.status[0]).toBe(RecordStatus.Pending)
  })

  it.each([
    ['a body cut short', [...pb.tag(3, 2), ...pb.varint(40), 1, 2, 3], 'field at byte 0'],
    [
      'a record without data',
      pb.bytes(1, 'k').concat(pb.bytes(3, pb.uint(1, 0))),
      'user record 0 (at byte 3 of the body) has no data',
    ],
    [
      'a record without partition key index',
      pb.bytes(1, 'k').concat(pb.bytes(3, pb.bytes(3, 'x'))),
      'user record 0 (at byte 3 of the body) has no partition_key_index',
    ],
    [
      'a partition key index past the table',
      pb
        .bytes(1, 'k')
        .concat(pb.bytes(3, [...pb.uint(1, 0), ...pb.bytes(3, 'x')]))
        .concat(pb.bytes(3, [...pb.uint(1, 1), ...pb.bytes(3, 'y')])),
      'user record 1 has partition_key_index 1, outside the partition_key_table of 1',
    ],
    [
      'an explicit hash key index with no table',
      pb
        .bytes(1, 'k')
        .concat(pb.bytes(3, [...pb.uint(1, 0), ...pb.uint(2, 0), ...pb.bytes(3, 'x')])),
      'user record 0 has explicit_hash_key_index 0, outside the explicit_hash_key_table of 0',
    ],
    [
      'a varint longer than ten bytes',
      [...pb.tag(5, 0), ...new Array(11).fill(0xff), 1],
      'field at byte 0',
    ],
    ['field number 0', [...pb.tag(0, 0), 1], 'field at byte 0'],
    ['wire type 7', [...pb.bytes(1, 'k'), ...pb.tag(9, 7), 1], 'field at byte 3'],
    ['an end group with no start', [...pb.tag(9, 4)], 'field at byte 0'],
    ['a group that never ends', [...pb.tag(9, 3), ...pb.uint(1, 1)], 'field at byte 0'],
    [
      'a data length past the end of its record',
      pb.bytes(1, 'k').concat(pb.bytes(3, [...pb.uint(1, 0), ...pb.tag(3, 2), ...pb.varint(9), 1])),
      'user record 0 (at byte 3 of the body) is not valid protobuf: the field at byte 2 of the record',
    ],
    [
      'a huge index',
      pb.bytes(1, 'k').concat(pb.bytes(3, [...pb.uint(1, 2n ** 64n - 1n), ...pb.bytes(3, 'x')])),
      'user record 0 has partition_key_index 18446744073709552000',
    ],
  ])('fails the carrier alone when an aggregate with a right MD5 has %s', (_, body, cause) => {
    const bytes = withFraming(Uint8Array.from(body))
    const before = lambdaRecord('before')
    const carrier = lambdaRecord(bytes)
    const batch = decodeEvent(kinesisEvent(before, carrier, lambdaRecord('after')))
    expect(batch.records).toHaveLength(3)
    expect(batch.records[1]?.lambdaRecord).toBe(carrier)
    expect([...batch.status]).toEqual([
      RecordStatus.Pending,
      RecordStatus.Failed,
      RecordStatus.Pending,
    ])
    const error = batch.errors.get(1)
    expect(error).toBeInstanceOf(DecodeError)
    expect(error?.retryable).toBe(false)
    expect(error?.sequenceNumber).toBe(carrier.kinesis.sequenceNumber)
    expect(error?.message).toContain(carrier.kinesis.sequenceNumber)
    expect(error?.message).toContain('KPL aggregate (magic and MD5 match) that cannot be read')
    expect(error?.message).toContain(cause)
    // Nothing is lost: a dead-letter sink gets the carrier's bytes whole.
    expect(Buffer.from(batch.records[1]?.rawData as Uint8Array).equals(bytes)).toBe(true)
    expect(text(batch.records[2]?.data as Uint8Array)).toBe('after')
  })

  it('fails a gzip-compressed aggregate with a right MD5 that cannot be read, keeping its bytes', () => {
    const aggregate = withFraming(Uint8Array.from(pb.bytes(3, pb.bytes(3, 'x'))))
    const compressed = zlib.gzipSync(aggregate)
    const batch = decodeEvent(kinesisEvent(lambdaRecord(compressed)))
    expect(batch.records).toHaveLength(1)
    expect(batch.errors.get(0)?.message).toContain('has no partition_key_index')
    expect(Buffer.from(batch.records[0]?.rawData as Uint8Array).equals(compressed)).toBe(true)
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(aggregate)).toBe(true)
  })

  it('skips tags, unknown fields and groups, and reads tables written after the records', () => {
    const record = [
      ...pb.bytes(4, [...pb.bytes(1, 'tag-key'), ...pb.bytes(2, 'tag-value')]),
      ...pb.uint(15, 7),
      ...pb.bytes(3, 'payload'),
      ...pb.tag(12, 5),
      1,
      2,
      3,
      4,
      ...pb.uint(1, 1),
      ...pb.tag(13, 3),
      ...pb.uint(1, 5),
      ...pb.tag(14, 3),
      ...pb.tag(14, 4),
      ...pb.tag(13, 4),
      ...pb.uint(2, 0),
    ]
    const body = [
      ...pb.bytes(3, record),
      ...pb.tag(9, 1),
      ...[1, 2, 3, 4, 5, 6, 7, 8],
      ...pb.bytes(1, 'unused'),
      ...pb.bytes(1, 'ключ 🔑'),
      ...pb.bytes(2, '42'),
      ...pb.bytes(99, 'a field from the future'),
    ]
    const batch = decodeEvent(kinesisEvent(lambdaRecord(withFraming(Uint8Array.from(body)))))
    expect(batch.records).toHaveLength(1)
    expect(batch.records[0]).toMatchObject({
      partitionKey: 'ключ 🔑',
      explicitHashKey: '42',
      subSequenceNumber: 0,
    })
    expect(text(batch.records[0]?.data as Uint8Array)).toBe('payload')
  })

  it('reads the Tag messages the KPL may write', () => {
    const aggregate = peerEncodedAggregate(userRecords, [
      { key: 'k', value: 'v' },
      { key: 'only-key' },
    ])
    const batch = decodeEvent(kinesisEvent(lambdaRecord(aggregate)))
    expect(batch.records.map((record) => text(record.data))).toEqual(['first', 'second', ''])
  })

  it('turns an aggregate of no user records into no records', () => {
    const empty = withFraming(new Uint8Array(0))
    const batch = decodeEvent(kinesisEvent(lambdaRecord(empty), lambdaRecord('next')))
    expect(batch.records.map((record) => text(record.data))).toEqual(['next'])
    expect(batch.status).toHaveLength(1)
  })
})

describe('decompression', () => {
  const json = JSON.stringify({ hello: 'world', n: [1, 2, 3] })
  const gzip = zlib.gzipSync(json)
  const zstd = zlib.zstdCompressSync(json)
  const deflate = zlib.deflateSync(json)

  it("recognises gzip and zstd by their magic bytes with 'auto', and leaves the rest alone", () => {
    const batch = decodeEvent(
      kinesisEvent(
        lambdaRecord(gzip),
        lambdaRecord(zstd),
        lambdaRecord(deflate),
        lambdaRecord(json),
      ),
    )
    expect(batch.records.map((record) => text(record.data))).toEqual([
      json,
      json,
      deflate.toString('utf8'),
      json,
    ])
    expect(batch.errors.size).toBe(0)
    expect(Buffer.from(batch.records[0]?.rawData as Uint8Array).equals(gzip)).toBe(true)
    expect(Buffer.from(batch.records[1]?.rawData as Uint8Array).equals(zstd)).toBe(true)
  })

  it('inflates zlib only when asked, and then fails what is not zlib', () => {
    const batch = decodeEvent(kinesisEvent(lambdaRecord(deflate), lambdaRecord(json)), {
      decompress: 'zlib',
    })
    expect(text(batch.records[0]?.data as Uint8Array)).toBe(json)
    expect([...batch.status]).toEqual([0, 2])
    expect(batch.errors.get(1)?.message).toMatch(/data is not valid zlib: incorrect header check/)
  })

  it.each([
    ['gzip', gzip],
    ['zstd', zstd],
  ] as const)(
    'with decompress: %s, fails a record that is not compressed that way',
    (format, compressed) => {
      const batch = decodeEvent(kinesisEvent(lambdaRecord(compressed), lambdaRecord(json)), {
        decompress: format,
      })
      expect(text(batch.records[0]?.data as Uint8Array)).toBe(json)
      expect([...batch.status]).toEqual([0, 2])
      expect(batch.errors.get(1)?.message).toContain(`data is not valid ${format}`)
    },
  )

  it('keeps compressed bytes as they are with decompress: false', () => {
    const batch = decodeEvent(kinesisEvent(lambdaRecord(gzip)), { decompress: false })
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(gzip)).toBe(true)
  })

  it('fails corrupt compressed data alone, with the cause', () => {
    const truncated = gzip.subarray(0, gzip.length - 6)
    const garbled = Buffer.from(zstd)
    garbled.fill(0xaa, 6)
    const batch = decodeEvent(
      kinesisEvent(lambdaRecord(truncated), lambdaRecord('ok'), lambdaRecord(garbled)),
    )
    expect([...batch.status]).toEqual([2, 0, 2])
    const gzipError = batch.errors.get(0)
    expect(gzipError).toBeInstanceOf(DecodeError)
    expect(gzipError?.message).toMatch(/: data is not valid gzip: unexpected end of file$/)
    expect(gzipError?.cause).toBeInstanceOf(Error)
    expect(batch.errors.get(2)?.message).toContain('data is not valid zstd')
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(truncated)).toBe(true)
  })

  it.each([
    ['gzip', (bytes: Buffer) => zlib.gzipSync(bytes)],
    ['zstd', (bytes: Buffer) => zlib.zstdCompressSync(bytes)],
    ['zlib', (bytes: Buffer) => zlib.deflateSync(bytes)],
  ] as const)(
    'fails a %s record that decompresses past maxDecompressedBytes, alone',
    (format, compress) => {
      const limit = 64 * 1024
      const atLimit = compress(Buffer.alloc(limit, 'a'))
      const bomb = compress(Buffer.alloc(64 * 1024 * 1024))
      const options = {
        maxDecompressedBytes: limit,
        decompress: format === 'zlib' ? 'zlib' : 'auto',
      } as const
      const batch = decodeEvent(kinesisEvent(lambdaRecord(atLimit), lambdaRecord(bomb)), options)
      expect(batch.records[0]?.data).toHaveLength(limit)
      expect([...batch.status]).toEqual([0, 2])
      expect(batch.errors.get(1)?.message).toContain(
        `data decompresses (${format}) to more than 65536 bytes, the maxDecompressedBytes limit`,
      )
    },
  )

  it('stops a decompression bomb at the default limit', () => {
    const bomb = zlib.gzipSync(Buffer.alloc(DEFAULT_MAX_DECOMPRESSED_BYTES + 1))
    const batch = decodeEvent(kinesisEvent(lambdaRecord(bomb)))
    expect(batch.errors.get(0)?.message).toContain('maxDecompressedBytes')
  })

  it('decompresses the user records of an aggregate one by one, keeping their raw bytes', () => {
    const gzipInside = zlib.gzipSync('gzip inside')
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: gzipInside },
      { partitionKey: 'b', data: zlib.zstdCompressSync('zstd inside') },
      { partitionKey: 'c', data: Buffer.from('plain inside') },
    ])
    const batch = decodeEvent(kinesisEvent(lambdaRecord(aggregate as Buffer)))
    expect(batch.records.map((record) => text(record.data))).toEqual([
      'gzip inside',
      'zstd inside',
      'plain inside',
    ])
    expect(Buffer.from(batch.records[0]?.rawData as Uint8Array).equals(gzipInside)).toBe(true)
    expect(text(batch.records[2]?.rawData as Uint8Array)).toBe('plain inside')
  })

  it('inflates zlib user records of an aggregate when asked', () => {
    const [aggregate] = peerAggregates([
      { partitionKey: 'a', data: zlib.deflateSync('one') },
      { partitionKey: 'a', data: zlib.deflateSync('two') },
    ])
    const batch = decodeEvent(kinesisEvent(lambdaRecord(aggregate as Buffer)), {
      decompress: 'zlib',
    })
    expect(batch.records.map((record) => text(record.data))).toEqual(['one', 'two'])
  })

  it.each(['auto', 'gzip'] as const)(
    'expands a gzip-compressed aggregate (decompress: %s)',
    (decompress) => {
      const [aggregate] = peerAggregates([
        { partitionKey: 'a', data: Buffer.from('one') },
        { partitionKey: 'b', data: Buffer.from('two') },
      ])
      const carrier = lambdaRecord(zlib.gzipSync(aggregate as Buffer))
      const batch = decodeEvent(kinesisEvent(carrier), { decompress })
      expect(
        batch.records.map((record) => [
          record.partitionKey,
          record.subSequenceNumber,
          text(record.data),
        ]),
      ).toEqual([
        ['a', 0, 'one'],
        ['b', 1, 'two'],
      ])
    },
  )

  it("with 'auto', also decompresses user records inside a compressed aggregate", () => {
    const [aggregate] = peerAggregates([{ partitionKey: 'a', data: zlib.gzipSync('twice') }])
    const batch = decodeEvent(
      kinesisEvent(lambdaRecord(zlib.zstdCompressSync(aggregate as Buffer))),
    )
    expect(batch.records.map((record) => text(record.data))).toEqual(['twice'])
  })

  it('fails a compressed aggregate that is too big as one record, naming the carrier', () => {
    const [aggregate] = peerAggregates([{ partitionKey: 'a', data: Buffer.alloc(100_000) }])
    const batch = decodeEvent(kinesisEvent(lambdaRecord(zlib.gzipSync(aggregate as Buffer))), {
      maxDecompressedBytes: 50_000,
    })
    expect(batch.records).toHaveLength(1)
    expect(batch.errors.get(0)).toMatchObject({
      subSequenceNumber: undefined,
      partitionKey: 'carrier-key',
    })
  })

  it('decompresses a compressed aggregate but does not expand it, with deaggregate: false', () => {
    const [aggregate] = peerAggregates([{ partitionKey: 'a', data: Buffer.from('x') }])
    const batch = decodeEvent(kinesisEvent(lambdaRecord(zlib.gzipSync(aggregate as Buffer))), {
      deaggregate: false,
    })
    expect(batch.records).toHaveLength(1)
    expect(Buffer.from(batch.records[0]?.data as Uint8Array).equals(aggregate as Buffer)).toBe(true)
  })
})

describe('the batch budget (maxBatchDecompressedBytes)', () => {
  const MiB = 1024 * 1024
  const limits = { maxDecompressedBytes: MiB, maxBatchDecompressedBytes: 3 * MiB }
  // Just under the per-record limit, about 1 KiB compressed: three fill the budget but for 3 bytes.
  const bomb = zlib.gzipSync(Buffer.alloc(MiB - 1))
  const bombs = (count: number) =>
    Array.from({ length: count }, (_, i) => ({ partitionKey: `bomb-${i}`, data: bomb }))
  const carrierOf = (records: ReturnType<typeof bombs>) =>
    lambdaRecord(peerEncodedAggregate(records), 'aggregate-key')

  /** What the batch holds decompressed: every payload that is not its own raw bytes. */
  const decompressedTotal = (batch: ReturnType<typeof decodeEvent>) =>
    batch.records.reduce(
      (total, record) => total + (record.data === record.rawData ? 0 : record.data.byteLength),
      0,
    )

  it('stops an aggregate of gzip bombs at the budget: the records from the first over it on fail retryable', () => {
    const first = lambdaRecord(bomb)
    const aggregate = carrierOf(bombs(20))
    const plain = lambdaRecord('plain after')
    const compressedAggregate = lambdaRecord(
      zlib.gzipSync(peerEncodedAggregate([{ partitionKey: 'x', data: Buffer.from('x') }])),
    )
    const batch = decodeEvent(kinesisEvent(first, aggregate, plain, compressedAggregate), limits)

    expect(decompressedTotal(batch)).toBe(3 * (MiB - 1))
    expect(batch.records).toHaveLength(23)
    expect([...batch.status]).toEqual([0, 0, 0, ...new Array(18).fill(2), 0, 2])
    expect(batch.records[2]?.data).toHaveLength(MiB - 1)
    const over = batch.errors.get(3)
    expect(over).toBeInstanceOf(DecodeError)
    expect(over).toMatchObject({
      sequenceNumber: aggregate.kinesis.sequenceNumber,
      subSequenceNumber: 2,
      retryable: true,
    })
    expect(over?.message).toMatch(
      /sub-record 2 .*: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(3145728\), the most one invocation decompresses; Lambda delivers it again, in a later invocation with a fresh budget$/,
    )
    expect(over?.cause).toMatchObject({ code: 'ERR_BUFFER_TOO_LARGE' })
    // The budget is spent: each later compressed record is tried for one byte only.
    for (const later of [4, 20, 22]) {
      expect(batch.errors.get(later)?.retryable).toBe(true)
      expect(batch.errors.get(later)?.message).toMatch(
        /: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(3145728\), the most one invocation decompresses; Lambda delivers it again/,
      )
    }
    expect(batch.records[22]?.lambdaRecord).toBe(compressedAggregate)
    expect(batch.records[3]?.data).toBe(batch.records[3]?.rawData)

    batch.status[0] = RecordStatus.Succeeded
    batch.status[1] = RecordStatus.Succeeded
    batch.status[2] = RecordStatus.Succeeded
    expect(batchResponse(batch)).toEqual({
      batchItemFailures: [{ itemIdentifier: aggregate.kinesis.sequenceNumber }],
    })
  })

  it('fails an aggregate that alone passes the budget for good, from the first user record over it', () => {
    const aggregate = carrierOf(bombs(5))
    const next = lambdaRecord(zlib.gzipSync('next'))
    const batch = decodeEvent(kinesisEvent(aggregate, next), limits)
    expect(decompressedTotal(batch)).toBe(3 * (MiB - 1))
    expect([...batch.status]).toEqual([0, 0, 0, 2, 2, 2])
    expect(batch.errors.get(3)?.retryable).toBe(false)
    expect(batch.errors.get(3)?.message).toMatch(
      /sub-record 3 .*: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(3145728\), the most one invocation decompresses; its Kinesis record alone decompresses to more than that, so no invocation can decompress it$/,
    )
    expect(batch.errors.get(4)?.retryable).toBe(false)
    // The next Lambda record decodes in a later invocation that starts with it.
    expect(batch.errors.get(5)?.retryable).toBe(true)
  })

  it('lets plain records through whatever their total, at no cost to the budget', () => {
    // Five times the budget in plain records and a plain aggregate, then a compressed record
    // that takes the whole budget but for a byte.
    const budget = 64 * 1024
    const plain = Array.from({ length: 5 }, (_, i) => lambdaRecord(Buffer.alloc(budget, 97 + i)))
    const [aggregate] = peerAggregates(
      Array.from({ length: 4 }, (_, i) => ({
        partitionKey: `plain-${i}`,
        data: Buffer.alloc(budget / 4, 65 + i),
      })),
    )
    const fill = lambdaRecord(zlib.gzipSync(Buffer.alloc(budget - 1)))
    const batch = decodeEvent(kinesisEvent(...plain, lambdaRecord(aggregate as Buffer), fill), {
      maxDecompressedBytes: budget,
      maxBatchDecompressedBytes: budget,
    })
    expect(batch.errors.size).toBe(0)
    expect(batch.records).toHaveLength(10)
    expect(
      batch.records.slice(0, 9).every((record) => Buffer.from(record.data).equals(record.rawData)),
    ).toBe(true)
    expect(Buffer.alloc(budget, 101).equals(batch.records[4]?.data as Uint8Array)).toBe(true)
    expect(batch.records[9]?.data).toHaveLength(budget - 1)
  })

  it('keeps a record over maxDecompressedBytes non-retryable, and charges the budget the work it did', () => {
    const tooBig = lambdaRecord(zlib.gzipSync(Buffer.alloc(2 * MiB)))
    const batch = decodeEvent(
      kinesisEvent(tooBig, lambdaRecord(bomb), lambdaRecord(bomb), lambdaRecord(bomb)),
      limits,
    )
    // It produced 1 MiB before zlib stopped: two bombs still fit, the third does not.
    expect([...batch.status]).toEqual([2, 0, 0, 2])
    expect(batch.errors.get(0)?.retryable).toBe(false)
    expect(batch.errors.get(0)?.message).toMatch(
      /: data decompresses \(gzip\) to more than 1048576 bytes, the maxDecompressedBytes limit$/,
    )
    expect(batch.errors.get(3)?.retryable).toBe(true)
  })

  it('charges a corrupt stream the work it did, so a batch of them costs at most the budget', () => {
    // MiB - 1 zeros whose gzip trailer is corrupt: zlib inflates them all, then refuses the CRC.
    const corrupt = Buffer.from(bomb)
    corrupt[corrupt.length - 5] = (corrupt[corrupt.length - 5] as number) ^ 0xff
    const records = Array.from({ length: 5 }, () => lambdaRecord(corrupt))
    const batch = decodeEvent(kinesisEvent(...records), limits)
    expect([...batch.status]).toEqual([2, 2, 2, 2, 2])
    for (const i of [0, 1, 2]) {
      expect(batch.errors.get(i)?.retryable).toBe(false)
      expect(batch.errors.get(i)?.message).toMatch(
        /: data is not valid gzip: incorrect data check$/,
      )
    }
    // Three attempts of 1 MiB each spent the 3 MiB: the rest are tried for one byte only.
    for (const i of [3, 4]) {
      expect(batch.errors.get(i)?.retryable).toBe(true)
      expect(batch.errors.get(i)?.message).toContain('does not fit in what is left')
    }
  })

  // issue 13, item 1: a corrupt 13-byte payload was charged the whole per-record limit.
  const corruptGzip = Buffer.from('1f8b0800000000000003ffffff', 'hex')
  const corruptZstd = Buffer.from('28b52ffd2400ffffffffffffff', 'hex')

  it('charges a small corrupt payload no more than it could produce: valid records after many still decode', () => {
    const valid = zlib.gzipSync(Buffer.alloc(100_000, 0x61))
    const corrupt = (count: number) =>
      Array.from({ length: count }, (_, i) => ({
        partitionKey: `corrupt-${i}`,
        data: i % 2 === 0 ? corruptGzip : corruptZstd,
      }))
    const aggregate = lambdaRecord(
      peerEncodedAggregate([...corrupt(16), { partitionKey: 'valid', data: valid }]),
    )
    const separate = corrupt(16).map(({ data }) => lambdaRecord(data))
    const batch = decodeEvent(
      kinesisEvent(aggregate, ...separate, lambdaRecord(valid), lambdaRecord(valid)),
      { maxDecompressedBytes: 16 * MiB, maxBatchDecompressedBytes: 16 * MiB },
    )
    expect(batch.records).toHaveLength(17 + 16 + 2)
    for (let i = 0; i < 33; i++) {
      if (i === 16) continue
      const error = batch.errors.get(i)
      expect(error?.retryable).toBe(false)
      expect(error?.message).toMatch(/: data is not valid (gzip|zstd): /)
      expect(error?.message).not.toContain('maxBatchDecompressedBytes')
    }
    for (const i of [16, 33, 34]) {
      expect(batch.errors.get(i)).toBeUndefined()
      expect(batch.records[i]?.data).toHaveLength(100_000)
    }
  })

  it('says that a Kinesis record alone is over the budget only when it is, counting its failed payloads', () => {
    // Each corrupt gzip payload could have made 13 * 1032 bytes: two are charged 26,832.
    const valid = zlib.gzipSync(Buffer.alloc(20_000, 0x61))
    const aggregate = lambdaRecord(
      peerEncodedAggregate([
        { partitionKey: 'a', data: corruptGzip },
        { partitionKey: 'b', data: corruptGzip },
        { partitionKey: 'c', data: valid },
      ]),
    )
    const batch = decodeEvent(kinesisEvent(aggregate), { maxBatchDecompressedBytes: 40_000 })
    expect(batch.errors.get(0)?.message).toMatch(/: data is not valid gzip: /)
    expect(batch.errors.get(2)?.retryable).toBe(false)
    expect(batch.errors.get(2)?.message).toMatch(
      /sub-record 2 .*: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(40000\), the most one invocation decompresses; its Kinesis record alone decompresses to more than that, counting 26832 bytes \(the most they could make\) for its payloads that failed to decompress, so no invocation can decompress it$/,
    )
    // With room for what they could have made, it decodes.
    const roomy = decodeEvent(kinesisEvent(aggregate), { maxBatchDecompressedBytes: 46_832 })
    expect(roomy.records[2]?.data).toHaveLength(20_000)
  })

  it('still decodes a payload that decompresses to nothing when the budget is spent to the byte', () => {
    const exact = lambdaRecord(zlib.gzipSync(Buffer.alloc(100)))
    const empty = lambdaRecord(zlib.gzipSync(Buffer.alloc(0)))
    const batch = decodeEvent(kinesisEvent(exact, empty), { maxBatchDecompressedBytes: 100 })
    expect(batch.errors.size).toBe(0)
    expect(batch.records[1]?.data).toHaveLength(0)
  })

  it('fails a record alone over a smaller batch budget for good, naming it; the next waits for its own invocation', () => {
    const batch = decodeEvent(kinesisEvent(lambdaRecord(bomb), lambdaRecord(zlib.gzipSync('ok'))), {
      maxBatchDecompressedBytes: MiB / 2,
    })
    expect([...batch.status]).toEqual([2, 2])
    expect(batch.errors.get(0)?.retryable).toBe(false)
    expect(batch.errors.get(0)?.message).toMatch(
      /: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(524288\), the most one invocation decompresses; its Kinesis record alone decompresses to more than that, so no invocation can decompress it$/,
    )
    // The bomb spent the budget before zlib stopped it; the next record decodes when Lambda
    // delivers it again.
    expect(batch.errors.get(1)?.retryable).toBe(true)
    const again = decodeEvent(kinesisEvent(lambdaRecord(zlib.gzipSync('ok'))), {
      maxBatchDecompressedBytes: MiB / 2,
    })
    expect(text(again.records[0]?.data as Uint8Array)).toBe('ok')
  })

  // Sizes, limits and budget in the same proportions as real ones, but small: what is tested is
  // how they compare, and every byte costs base64, MD5 and zlib time in each of the runs.
  const payload = fc.record({ gzip: fc.boolean(), size: fc.integer({ min: 1, max: 1024 }) })
  const lambdaPayloads = fc.oneof(
    payload.map((one) => [one]),
    fc.array(payload, { maxLength: 6 }).map((users) => ({ users })),
  )

  // gzip of each size, made once: the property is about the budget, not about zlib.
  const gzipOfSize = new Map<number, Buffer>()
  const gzipped = (size: number) => {
    let bytes = gzipOfSize.get(size)
    if (bytes === undefined) {
      bytes = zlib.gzipSync(Buffer.alloc(size, 0x20 + (size % 90)))
      gzipOfSize.set(size, bytes)
    }
    return bytes
  }

  // About 0.4 s alone; the timeout leaves room for a machine busy with the other packages.
  it('holds at most the budget, charges what each decompression produced, and refuses what does not fit (property)', {
    timeout: 30_000,
  }, () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2048 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.array(lambdaPayloads, { maxLength: 8 }),
        (maxDecompressedBytes, maxBatchDecompressedBytes, inputs) => {
          const sizes: number[] = []
          const compressed: boolean[] = []
          const lambdaRecords = inputs.map((input) => {
            const users = Array.isArray(input) ? input : input.users
            const bytes = users.map(({ gzip, size }) => {
              sizes.push(size)
              compressed.push(gzip)
              return gzip ? gzipped(size) : Buffer.alloc(size, 0x20 + (size % 90))
            })
            return Array.isArray(input)
              ? lambdaRecord(bytes[0] as Buffer)
              : lambdaRecord(
                  peerEncodedAggregate(bytes.map((data) => ({ partitionKey: 'k', data }))),
                )
          })
          const batch = decodeEvent(kinesisEvent(...lambdaRecords), {
            maxDecompressedBytes,
            maxBatchDecompressedBytes,
          })
          expect(batch.records).toHaveLength(sizes.length)

          expect(decompressedTotal(batch)).toBeLessThanOrEqual(maxBatchDecompressedBytes)
          // The model: each compressed payload may produce up to the per-record limit or what is
          // left, whichever is less (at least 1 byte: zlib's smallest limit); what it produced is
          // charged, kept or not; plain payloads cost nothing.
          let left = maxBatchDecompressedBytes
          let leftAtKinesisRecord = left
          let carrier: unknown
          for (let i = 0; i < sizes.length; i++) {
            const record = batch.records[i] as (typeof batch.records)[number]
            const error = batch.errors.get(i)
            const size = sizes[i] as number
            if (record.lambdaRecord !== carrier) {
              carrier = record.lambdaRecord
              leftAtKinesisRecord = left
            }
            if (!compressed[i]) {
              expect(error).toBeUndefined()
              continue
            }
            const perRecordLimitBinds = maxDecompressedBytes <= left
            const limit = perRecordLimitBinds ? maxDecompressedBytes : left
            if (size <= Math.max(limit, 1) && size <= left) {
              expect(error).toBeUndefined()
              expect(record.data).toHaveLength(size)
              left -= size
              continue
            }
            expect(record.data).toBe(record.rawData)
            const overBudget = size <= Math.max(limit, 1) || !perRecordLimitBinds
            left = size <= Math.max(limit, 1) ? 0 : left - limit
            if (overBudget) {
              expect(error?.message).toContain('does not fit in what is left of')
              expect(error?.retryable).toBe(leftAtKinesisRecord < maxBatchDecompressedBytes)
            } else {
              expect(error?.message).toContain('the maxDecompressedBytes limit')
              expect(error?.retryable).toBe(false)
            }
          }
        },
      ),
      { numRuns: 1000 },
    )
  })
})

describe('CloudWatch Logs subscription payloads', () => {
  const logs = {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/aws/lambda/orders',
    logStream: '2026/11/25/[$LATEST]abc',
    subscriptionFilters: ['to-kinesis'],
    logEvents: [{ id: '1', timestamp: 1764072000000, message: 'START RequestId: 1' }],
  }
  const control = {
    messageType: 'CONTROL_MESSAGE',
    owner: 'CloudwatchLogs',
    logGroup: '',
    logStream: '',
    subscriptionFilters: [],
    logEvents: [
      {
        id: '',
        timestamp: 1764072000000,
        message: 'CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.',
      },
    ],
  }

  it('come out as their JSON text', () => {
    const batch = decodeEvent(
      kinesisEvent(
        lambdaRecord(zlib.gzipSync(JSON.stringify(control))),
        lambdaRecord(zlib.gzipSync(JSON.stringify(logs))),
      ),
    )
    expect(batch.records.map((record) => JSON.parse(text(record.data)))).toEqual([control, logs])
  })
})
