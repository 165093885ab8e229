/**
 * The event Lambda builds for a Kinesis batch (DESIGN.md section 1; AWS docs, "with-kinesis",
 * "Example event"), and for a tumbling window ("services-kinesis-windows",
 * `KinesisTimeWindowEvent`). Each record is turned into its Lambda form once, when it is read,
 * so retries and bisected halves reuse it and the batch size in bytes is a sum.
 */
import type { KinesisStreamEvent, KinesisStreamRecord } from '@shardwise/core'

/** Lambda's limit on a synchronous invocation's payload: 6 MB. */
export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024

/** A record as the stream returned it (the shape of `@aws-sdk/client-kinesis`'s `_Record`). */
export interface StreamRecordInput {
  SequenceNumber?: string | undefined
  ApproximateArrivalTimestamp?: Date | undefined
  Data?: Uint8Array | undefined
  PartitionKey?: string | undefined
}

/** Where the records come from: the same for every record of a shard. */
export interface RecordSource {
  shardId: string
  streamArn: string
  region: string
  /** The role Lambda would assume; only shown in the event. */
  invokeIdentityArn: string
}

/** One record waiting in a shard: its Lambda form, its JSON size, and what the rules need. */
export interface PendingRecord {
  readonly lambda: KinesisStreamRecord
  readonly sequenceNumber: string
  readonly partitionKey: string
  /** Epoch milliseconds. */
  readonly arrivalMs: number
  /** Bytes of `JSON.stringify(lambda)`. */
  readonly bytes: number
  /** Epoch milliseconds when the poller read it: the batching window starts there. */
  readonly readMs: number
}

export function toPendingRecord(
  input: StreamRecordInput,
  source: RecordSource,
  readMs: number,
): PendingRecord {
  const sequenceNumber = input.SequenceNumber ?? ''
  const partitionKey = input.PartitionKey ?? ''
  const arrivalMs = input.ApproximateArrivalTimestamp?.getTime() ?? readMs
  const data = input.Data ?? new Uint8Array(0)
  const lambda: KinesisStreamRecord = {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey,
      sequenceNumber,
      data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
      // Lambda sends epoch seconds with the milliseconds as a fraction.
      approximateArrivalTimestamp: arrivalMs / 1000,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${source.shardId}:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: source.invokeIdentityArn,
    awsRegion: source.region,
    eventSourceARN: source.streamArn,
  }
  return {
    lambda,
    sequenceNumber,
    partitionKey,
    arrivalMs,
    bytes: Buffer.byteLength(JSON.stringify(lambda)),
    readMs,
  }
}

/** Bytes of `{"Records":[...]}` around the records, and of each comma between two of them. */
export const EVENT_OVERHEAD_BYTES = '{"Records":[]}'.length
export const SEPARATOR_BYTES = 1

/** What a tumbling window adds to the event. */
export interface WindowProperties {
  window: { start: string; end: string }
  state: unknown
  shardId: string
  eventSourceARN: string
  isFinalInvokeForWindow: boolean
  isWindowTerminatedEarly: boolean
}

/** A Kinesis event with its tumbling-window properties when the mapping has a window. */
export type MappingEvent = KinesisStreamEvent & Partial<WindowProperties>

export function buildEvent(
  records: ReadonlyArray<PendingRecord>,
  windowProperties: WindowProperties | undefined,
): MappingEvent {
  const lambdaRecords = new Array<KinesisStreamRecord>(records.length)
  for (let i = 0; i < records.length; i++) lambdaRecords[i] = (records[i] as PendingRecord).lambda
  const event: MappingEvent = { Records: lambdaRecords }
  if (windowProperties !== undefined) Object.assign(event, windowProperties)
  // Lambda hands the function a fresh copy of JSON on every invocation, so a handler that
  // changes its event cannot change what a retry or a bisected half receives.
  return JSON.parse(JSON.stringify(event)) as MappingEvent
}
