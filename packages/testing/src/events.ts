/**
 * Kinesis events shaped exactly as Lambda builds them (DESIGN.md section 1), from payloads given
 * as text, JSON values or bytes, compressed or not.
 */
import zlib from 'node:zlib'
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda'

/** A record's payload: text (UTF-8), bytes, or `{ json }`, a value written as JSON text. */
export type Payload = string | Uint8Array | { json: unknown }

export interface RecordSpec {
  /** The payload; `{ base64 }` is used as it is, so that bad base64 can be tested too. */
  data: Payload | { base64: string }
  /** Default `'1'`, as in AWS's sample event. */
  partitionKey?: string
  /** Default `sequenceNumber(position)`. */
  sequenceNumber?: string
  /** Epoch seconds with a fraction. Default 1545084650.987, as in AWS's sample event. */
  approximateArrivalTimestamp?: number
}

export const STREAM_ARN = 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream'
export const SHARD_ID = 'shardId-000000000006'

/** Sequence numbers shaped like real ones: 56 digits, increasing with `position`. */
export function sequenceNumber(position: number): string {
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new RangeError(
      `@shardwise/testing: sequenceNumber takes a record's position in the batch, an integer from 0; got ${position}`,
    )
  }
  return `4959033827149025660855969253836157109592157598913${String(position).padStart(7, '0')}`
}

/** The bytes of a payload: text as UTF-8, `{ json }` as its JSON text. */
export function payloadBytes(payload: Payload): Uint8Array {
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8')
  if (payload instanceof Uint8Array) return payload
  if (typeof payload !== 'object' || payload === null || !('json' in payload)) {
    throw new TypeError(
      `@shardwise/testing: a payload is text, bytes (a Uint8Array) or { json: value }; got ${describePayload(payload)}: to send a value as JSON, write { json: value }`,
    )
  }
  const text = JSON.stringify(payload.json)
  if (text === undefined) {
    throw new TypeError(
      `@shardwise/testing: { json } holds a value JSON cannot write: ${typeof payload.json}`,
    )
  }
  return Buffer.from(text, 'utf8')
}

function describePayload(payload: unknown): string {
  if (payload === null) return 'null'
  if (typeof payload !== 'object') return typeof payload
  if (payload instanceof ArrayBuffer) return 'an ArrayBuffer (wrap it: new Uint8Array(buffer))'
  return `an object with keys ${Object.keys(payload).join(', ') || 'none'}`
}

/** A payload gzip-compressed, as a producer (or a CloudWatch Logs subscription) sends it. */
export function gzip(payload: Payload): Uint8Array {
  return zlib.gzipSync(payloadBytes(payload))
}

/** A payload zstd-compressed (node:zlib's zstd, Node 22.15 or later). */
export function zstd(payload: Payload): Uint8Array {
  if (typeof zlib.zstdCompressSync !== 'function') {
    throw new Error(
      `@shardwise/testing: zstd needs Node 22.15 or later (this is ${process.version})`,
    )
  }
  return zlib.zstdCompressSync(payloadBytes(payload))
}

/**
 * A Kinesis event of one shard: each item is a record's payload (text, bytes, `{ json }`) or a
 * `RecordSpec`. Sequence numbers follow the positions, `sequenceNumber(0)` first.
 */
export function kinesisEvent(
  records: ReadonlyArray<RecordSpec | Payload>,
  shardId = SHARD_ID,
): KinesisStreamEvent {
  return { Records: records.map((spec, i) => kinesisRecord(spec, i, shardId)) }
}

export function kinesisRecord(
  spec: RecordSpec | Payload,
  position: number,
  shardId = SHARD_ID,
): KinesisStreamRecord {
  const full = isSpec(spec) ? spec : { data: spec }
  const seq = full.sequenceNumber ?? sequenceNumber(position)
  const data =
    typeof full.data === 'object' && full.data !== null && 'base64' in full.data
      ? full.data.base64
      : Buffer.from(payloadBytes(full.data)).toString('base64')
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: full.partitionKey ?? '1',
      sequenceNumber: seq,
      data,
      approximateArrivalTimestamp: full.approximateArrivalTimestamp ?? 1545084650.987,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shardId}:${seq}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'us-east-2',
    eventSourceARN: STREAM_ARN,
  }
}

function isSpec(spec: RecordSpec | Payload): spec is RecordSpec {
  return (
    typeof spec === 'object' && spec !== null && !(spec instanceof Uint8Array) && 'data' in spec
  )
}

/**
 * AWS's sample Kinesis event (Lambda developer guide, "Using Lambda with Kinesis"): two records
 * of `shardId-000000000006` whose data reads "Hello, this is a test." and "This is only a test.".
 * A new copy at each call.
 */
export function awsSampleEvent(): KinesisStreamEvent {
  const sample = (sequenceNumber: string, data: string, approximateArrivalTimestamp: number) =>
    kinesisRecord({ data: { base64: data }, sequenceNumber, approximateArrivalTimestamp }, 0)
  return {
    Records: [
      sample(
        '49590338271490256608559692538361571095921575989136588898',
        'SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==',
        1545084650.987,
      ),
      sample(
        '49590338271490256608559692540925702759324208523137515618',
        'VGhpcyBpcyBvbmx5IGEgdGVzdC4=',
        1545084711.166,
      ),
    ],
  }
}

/**
 * A Kinesis event of a tumbling window (`TumblingWindowInSeconds`), as Lambda sends it: the
 * records, the window from 10:00 to 10:05 on 2026-11-25, the state carried from the window's
 * last invocation, and whether this is its final one.
 */
export function windowEvent(
  records: ReadonlyArray<RecordSpec | Payload>,
  state: unknown,
  final = false,
): KinesisStreamEvent {
  return {
    ...kinesisEvent(records),
    window: { start: '2026-11-25T10:00:00Z', end: '2026-11-25T10:05:00Z' },
    state,
    shardId: SHARD_ID,
    eventSourceARN: STREAM_ARN,
    isFinalInvokeForWindow: final,
    isWindowTerminatedEarly: false,
  } as KinesisStreamEvent
}
