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
  /** Absent when the records were discarded without an invocation (too old). */
  responseContext?: {
    statusCode: number
    executedVersion: string
    functionError: string
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
  const record: InvocationRecord = {
    requestContext: {
      requestId: at.requestId,
      functionArn: at.functionArn,
      condition: discard.condition,
      approximateInvokeCount: discard.invokeCount,
    },
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
  if (discard.failure !== undefined) {
    record.responseContext = {
      statusCode: 200,
      executedVersion: '$LATEST',
      functionError: discard.failure.functionError,
    }
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
