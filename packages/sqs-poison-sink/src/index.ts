/**
 * A poison sink for `partialFailures({ onPoison })` that sends each record that can never
 * succeed to an SQS queue, with its bytes as they were in the stream and the error that failed
 * it, so that it can be put back on a stream as it was once the cause is fixed.
 *
 * The sink resolves once SQS has the message, so the shard moves past the record; when the send
 * fails it rejects, and the record holds its shard like any failure: nothing is lost.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import {
  ConfigurationError,
  checkOptions,
  type KinesisRecord,
  messageOf,
  type OptionRules,
  option,
  type PoisonSink,
  type RecordError,
} from '@shardwise/core'

/** The environment variable the sink reads the queue URL from; `@shardwise/cdk` sets it. */
export const POISON_QUEUE_URL_ENV = 'SHARDWISE_POISON_QUEUE_URL'

/** What the queue holds: the record as it was in the stream, and why it failed. */
export interface PoisonMessage {
  streamARN: string
  shardId: string
  sequenceNumber: string
  /** Position inside a KPL aggregate; `null` for a record that was not aggregated. */
  subSequenceNumber: number | null
  partitionKey: string
  explicitHashKey: string | null
  /** Epoch seconds with a fraction, as Lambda sent it. */
  approximateArrivalTimestamp: number
  /** base64 of the user record's bytes as they were in the stream (before decompression). */
  data: string
  error: {
    name: string
    message: string
    /** The message of the error's cause (the schema's issues, the handler's own error), if any. */
    cause: string | null
  }
}

export interface SqsPoisonSinkOptions {
  /** Where the records go. Default: `process.env.SHARDWISE_POISON_QUEUE_URL`. */
  queueUrl?: string
  /** Default: `new SQSClient({})`, which takes the region and credentials of the Lambda. */
  client?: SQSClient
}

const PACKAGE = '@shardwise/sqs-poison-sink'

/**
 * Builds the sink. A missing queue URL throws a `ConfigurationError` here, when the handler
 * module loads, rather than at the first poison record.
 *
 * @example
 * export const handler = middy(eachRecord(save))
 *   .use(kinesisDecode())
 *   .use(partialFailures({ onPoison: sqsPoisonSink() }))
 */
const optionRules: OptionRules = {
  queueUrl: option.string,
  client: option.that(
    (client) => typeof (client as Partial<SQSClient> | null)?.send === 'function',
    'an SQSClient',
  ),
}

export function sqsPoisonSink(options: SqsPoisonSinkOptions = {}): PoisonSink {
  const checked = checkOptions(PACKAGE, optionRules, options)
  const queueUrl = checked.queueUrl ?? process.env[POISON_QUEUE_URL_ENV]
  if (typeof queueUrl !== 'string' || queueUrl === '') {
    throw new ConfigurationError(
      checked.queueUrl === undefined
        ? `${PACKAGE}: no queue URL: set the environment variable ${POISON_QUEUE_URL_ENV} (the KinesisConsumer construct of @shardwise/cdk does when poisonQueue is on) or pass the option 'queueUrl'`
        : `${PACKAGE}: Option 'queueUrl' must be a non-empty string`,
    )
  }
  const client = checked.client ?? new SQSClient({})
  // Same shard, same group: a FIFO queue keeps the stream's order, and a record delivered twice
  // (Lambda delivers at least once) is kept once within SQS's deduplication interval.
  const fifo = queueUrl.endsWith('.fifo')
  return (record, error) =>
    client.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(poisonMessageOf(record, error)),
        ...(fifo
          ? {
              MessageGroupId: record.shardId,
              MessageDeduplicationId: `${record.sequenceNumber}:${record.subSequenceNumber ?? 0}`,
            }
          : {}),
      }),
    )
}

/** The message the sink sends for a record; exported for sinks of other kinds and for tests. */
export function poisonMessageOf(record: KinesisRecord<unknown>, error: RecordError): PoisonMessage {
  return {
    streamARN: record.eventSourceARN,
    shardId: record.shardId,
    sequenceNumber: record.sequenceNumber,
    subSequenceNumber: record.subSequenceNumber ?? null,
    partitionKey: record.partitionKey,
    explicitHashKey: record.explicitHashKey ?? null,
    approximateArrivalTimestamp: record.approximateArrivalTimestamp,
    data: rawBase64(record),
    error: {
      name: error.name,
      message: error.message,
      cause: error.cause === undefined ? null : messageOf(error.cause),
    },
  }
}

/** A record whose base64 was broken has no bytes: keep the text Lambda delivered instead. */
function rawBase64(record: KinesisRecord<unknown>): string {
  const delivered = record.lambdaRecord.kinesis.data
  // Read once: a record that kinesisDecode decodes at its turn decodes its rawData at each read.
  const raw = record.rawData
  return raw.length > 0 || delivered === ''
    ? Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64')
    : delivered
}
