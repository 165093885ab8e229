import { createHash } from 'node:crypto'
import zlib from 'node:zlib'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { lambdaContext } from './context.js'
import {
  awsSampleEvent,
  gzip,
  kinesisEvent,
  kinesisRecord,
  sequenceNumber,
  windowEvent,
  zstd,
} from './events.js'
import { kplAggregate } from './kpl.js'

const text = (base64: string) => Buffer.from(base64, 'base64').toString('utf8')
const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'))

describe('kinesisEvent', () => {
  it('builds records from text, JSON values and bytes, as Lambda sends them', () => {
    const event = kinesisEvent(['plain text', { json: { id: 7 } }, Uint8Array.of(0, 255, 1)])
    const [a, b, c] = event.Records.map((record) => record.kinesis.data) as [string, string, string]
    expect(text(a)).toBe('plain text')
    expect(JSON.parse(text(b))).toEqual({ id: 7 })
    expect(bytesOf(c)).toEqual(Uint8Array.of(0, 255, 1))
    expect(event.Records.map((record) => record.kinesis.sequenceNumber)).toEqual([
      sequenceNumber(0),
      sequenceNumber(1),
      sequenceNumber(2),
    ])
    expect(event.Records[1]).toMatchObject({
      eventSource: 'aws:kinesis',
      eventID: `shardId-000000000006:${sequenceNumber(1)}`,
      kinesis: { partitionKey: '1', kinesisSchemaVersion: '1.0' },
    })
  })

  it('takes a record spec: partition key, sequence number, arrival, base64 as it is', () => {
    const record = kinesisRecord(
      {
        data: { base64: 'not base64!' },
        partitionKey: 'order-7',
        sequenceNumber: '42',
        approximateArrivalTimestamp: 1.5,
      },
      0,
      'shardId-000000000001',
    )
    expect(record.kinesis).toMatchObject({
      data: 'not base64!',
      partitionKey: 'order-7',
      sequenceNumber: '42',
      approximateArrivalTimestamp: 1.5,
    })
    expect(record.eventID).toBe('shardId-000000000001:42')
  })

  it.each([
    [{ id: 1 }, /got an object with keys id: to send a value as JSON, write \{ json: value \}/],
    [new ArrayBuffer(2), /got an ArrayBuffer \(wrap it: new Uint8Array\(buffer\)\)/],
    [42, /got number/],
    [null, /got null/],
  ])(
    'refuses a payload that is neither text, bytes nor { json } (%o), saying what it takes',
    (payload, said) => {
      expect(() => kinesisEvent([payload as never])).toThrow(TypeError)
      expect(() => kinesisEvent([payload as never])).toThrow(said)
    },
  )

  it('refuses a JSON value that JSON cannot write, rather than send no data', () => {
    expect(() => kinesisEvent([{ json: undefined }])).toThrow(/JSON cannot write/)
  })

  it('sequence numbers compare in the order of their positions, as decimal strings', () => {
    expect(sequenceNumber(9) < sequenceNumber(10)).toBe(true)
    expect(sequenceNumber(0)).toMatch(/^[1-9]\d{55}$/)
  })

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses a position that no record has (%s), rather than write a sequence number Kinesis never gives',
    (position) => {
      expect(() => sequenceNumber(position)).toThrow(RangeError)
      expect(() => sequenceNumber(position)).toThrow(/an integer from 0; got /)
    },
  )
})

describe('compressed payloads', () => {
  it('gzip: starts 1F 8B and inflates back to the payload', () => {
    const data = gzip({ json: { id: 1 } })
    expect([...data.subarray(0, 2)]).toEqual([0x1f, 0x8b])
    expect(zlib.gunzipSync(data).toString()).toBe('{"id":1}')
  })

  it('zstd: starts 28 B5 2F FD and decompresses back to the payload', () => {
    const data = zstd('hello, zstd')
    expect([...data.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd])
    expect(zlib.zstdDecompressSync(data).toString()).toBe('hello, zstd')
  })
})

describe('kplAggregate', () => {
  it('frames the protobuf with the magic and its MD5, under the first partition key', () => {
    const aggregate = kplAggregate([
      { partitionKey: 'a', data: 'one' },
      { partitionKey: 'b', data: { json: [2] }, explicitHashKey: '42' },
      { partitionKey: 'a', data: Uint8Array.of(3) },
    ])
    expect(aggregate.partitionKey).toBe('a')
    const { data } = aggregate
    expect([...data.subarray(0, 4)]).toEqual([0xf3, 0x89, 0x9a, 0xc2])
    const body = data.subarray(4, data.length - 16)
    expect(Buffer.from(data.subarray(data.length - 16))).toEqual(
      createHash('md5').update(body).digest(),
    )
    // The partition key table holds each key once; the explicit hash key table its one key.
    const fields = readMessage(body)
    expect(fields.filter(([n]) => n === 1).map(([, v]) => Buffer.from(v).toString())).toEqual([
      'a',
      'b',
    ])
    expect(fields.filter(([n]) => n === 2).map(([, v]) => Buffer.from(v).toString())).toEqual([
      '42',
    ])
    const records = fields.filter(([n]) => n === 3).map(([, v]) => readMessage(v))
    expect(records.map((r) => r.map(([n, v]) => [n, Buffer.from(v).toString('hex')]))).toEqual([
      [
        [1, '00'],
        [3, Buffer.from('one').toString('hex')],
      ],
      [
        [1, '01'],
        [2, '00'],
        [3, Buffer.from('[2]').toString('hex')],
      ],
      [
        [1, '00'],
        [3, '03'],
      ],
    ])
  })

  it('refuses to aggregate no user record: the KPL writes no empty aggregate, and its carrier would vanish', () => {
    expect(() => kplAggregate([])).toThrow(/kplAggregate needs at least one user record/)
  })

  it('is a record spec, for kinesisEvent', () => {
    const event = kinesisEvent([kplAggregate([{ partitionKey: 'k', data: 'x' }])])
    expect(event.Records[0]?.kinesis.partitionKey).toBe('k')
    expect(bytesOf(event.Records[0]?.kinesis.data as string)[0]).toBe(0xf3)
  })
})

/** Fields of a protobuf message: varints as their bytes, length-delimited as their content. */
function readMessage(bytes: Uint8Array): Array<[number, Uint8Array]> {
  const out: Array<[number, Uint8Array]> = []
  let at = 0
  const varint = () => {
    let value = 0
    let shift = 0
    const start = at
    while ((bytes[at] as number) & 0x80) {
      value += ((bytes[at++] as number) & 0x7f) * 2 ** shift
      shift += 7
    }
    value += (bytes[at++] as number) * 2 ** shift
    return { value, raw: bytes.subarray(start, at) }
  }
  while (at < bytes.length) {
    const key = varint().value
    if (key % 8 === 0) out.push([key >> 3, varint().raw])
    else {
      const length = varint().value
      out.push([key >> 3, bytes.subarray(at, at + length)])
      at += length
    }
  }
  return out
}

describe('awsSampleEvent', () => {
  it("is the Lambda guide's sample: two records of shardId-000000000006", () => {
    const event = awsSampleEvent()
    expect(event.Records.map((record) => text(record.kinesis.data))).toEqual([
      'Hello, this is a test.',
      'This is only a test.',
    ])
    expect(event.Records[1]).toEqual({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: '1',
        sequenceNumber: '49590338271490256608559692540925702759324208523137515618',
        data: 'VGhpcyBpcyBvbmx5IGEgdGVzdC4=',
        approximateArrivalTimestamp: 1545084711.166,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: 'shardId-000000000006:49590338271490256608559692540925702759324208523137515618',
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
      awsRegion: 'us-east-2',
      eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
    })
  })

  it('is a new copy at each call', () => {
    const first = awsSampleEvent()
    first.Records.pop()
    expect(awsSampleEvent().Records).toHaveLength(2)
  })
})

describe('windowEvent', () => {
  it("carries the window, the state and whether it is the window's final invocation", () => {
    expect(windowEvent(['a'], { n: 1 }, true)).toMatchObject({
      window: { start: '2026-11-25T10:00:00Z', end: '2026-11-25T10:05:00Z' },
      state: { n: 1 },
      shardId: 'shardId-000000000006',
      isFinalInvokeForWindow: true,
    })
  })
})

describe('lambdaContext', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('counts the chosen remaining time down on the clock, to 0', () => {
    vi.useFakeTimers()
    const context = lambdaContext(1500, 'orders')
    expect(context.getRemainingTimeInMillis()).toBe(1500)
    vi.advanceTimersByTime(1000)
    expect(context.getRemainingTimeInMillis()).toBe(500)
    vi.advanceTimersByTime(1000)
    expect(context.getRemainingTimeInMillis()).toBe(0)
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-2:123456789012:function:orders')
  })
})
