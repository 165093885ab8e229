/**
 * The on-failure destination. Lambda sends an SQS queue or SNS topic "a JSON document with
 * metadata about the failed invocation" (AWS docs, "kinesis-on-failure-destination"): the
 * request and response context and `KinesisBatchInfo` (shard, first and last sequence number,
 * arrival times, batch size, stream ARN), never the records. Here each document is one line of
 * a JSON-lines file; read the records back with `GetShardIterator` `AT_SEQUENCE_NUMBER`.
 */
import { appendFile } from 'node:fs/promises'
import type { PendingRecord } from './event.js'
import type { Discard } from './lane.js'

export interface InvocationRecord {
  requestContext: {
    requestId: string
    functionArn: string
    condition: Discard['condition']
    approximateInvokeCount: number
  }
  /** Only for `RetryAttemptsExhausted`: AWS writes none for `RecordAgeExceeded`. */
  responseContext?: {
    statusCode: number
    executedVersion: string
    /** `Unhandled` for a thrown error or a timeout, `null` for an answer Lambda did not take. */
    functionError: string | null
  }
  version: '1.0'
  timestamp: string
  KinesisBatchInfo: {
    shardId: string
    startSequenceNumber: string
    endSequenceNumber: string
    approximateArrivalOfFirstRecord: string
    approximateArrivalOfLastRecord: string
    batchSize: number
    streamArn: string
  }
}

export function invocationRecord(
  discard: Discard,
  at: { shardId: string; streamArn: string; functionArn: string; requestId: string; nowMs: number },
): InvocationRecord {
  const first = discard.records[0] as PendingRecord
  const last = discard.records[discard.records.length - 1] as PendingRecord
  // The fields in AWS's order (kinesis-esm-recorded-on-aws.json), responseContext in its place.
  const record: InvocationRecord = {
    requestContext: {
      requestId: at.requestId,
      functionArn: at.functionArn,
      condition: discard.condition,
      // AWS counts 1 for records too old before any invocation (the recording's
      // expire-before-ingestion case), and the invocations otherwise.
      approximateInvokeCount: Math.max(1, discard.invokeCount),
    },
    ...(discard.condition === 'RetryAttemptsExhausted' && discard.failure !== undefined
      ? {
          responseContext: {
            statusCode: 200,
            executedVersion: '$LATEST',
            functionError: discard.failure.functionError,
          },
        }
      : {}),
    version: '1.0',
    timestamp: new Date(at.nowMs).toISOString(),
    KinesisBatchInfo: {
      shardId: at.shardId,
      startSequenceNumber: first.sequenceNumber,
      endSequenceNumber: last.sequenceNumber,
      approximateArrivalOfFirstRecord: new Date(first.arrivalMs).toISOString(),
      approximateArrivalOfLastRecord: new Date(last.arrivalMs).toISOString(),
      batchSize: discard.records.length,
      streamArn: at.streamArn,
    },
  }
  return record
}

/** Where discarded batches go. */
export interface Destination {
  send(record: InvocationRecord): Promise<void>
}

/** Appends one JSON document per line; writes are chained so lines never interleave. */
export function jsonLinesDestination(path: string): Destination {
  let last: Promise<void> = Promise.resolve()
  return {
    send(record) {
      last = last.then(() => appendFile(path, `${JSON.stringify(record)}\n`))
      return last
    },
  }
}
