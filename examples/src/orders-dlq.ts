/**
 * A consumer that never lets a poison record block its shard: records that can never succeed
 * (undecodable, or refused by the business rules with NonRetryableError) go to an SQS
 * dead-letter queue with everything needed to put them back on a stream, and the shard moves
 * on. Retryable failures are reported to Lambda as usual.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  type KinesisRecord,
  NonRetryableError,
  partialFailures,
  type RecordError,
} from '@shardwise/partial-failures'

/** What the dead-letter queue holds: the record as it was in the stream, and why it failed. */
export interface DeadLetter {
  streamARN: string
  shardId: string
  sequenceNumber: string
  subSequenceNumber: number | null
  partitionKey: string
  explicitHashKey: string | null
  approximateArrivalTimestamp: number
  /** base64 of the record's bytes as they were in the stream. */
  data: string
  error: { name: string; message: string }
}

export function deadLetterOf(record: KinesisRecord<unknown>, error: RecordError): DeadLetter {
  return {
    streamARN: record.eventSourceARN,
    shardId: record.shardId,
    sequenceNumber: record.sequenceNumber,
    subSequenceNumber: record.subSequenceNumber ?? null,
    partitionKey: record.partitionKey,
    explicitHashKey: record.explicitHashKey ?? null,
    approximateArrivalTimestamp: record.approximateArrivalTimestamp,
    // A record whose base64 was broken has no bytes; keep the text Lambda delivered.
    data:
      record.rawData.length > 0 || record.lambdaRecord.kinesis.data === ''
        ? Buffer.from(record.rawData).toString('base64')
        : record.lambdaRecord.kinesis.data,
    error: { name: error.name, message: error.message },
  }
}

export function ordersHandler(sqs: SQSClient, queueUrl: string, logger = new Logger()) {
  const utf8 = new TextDecoder()
  return middy(
    eachRecord(async (record) => {
      let order: { id?: unknown }
      try {
        order = JSON.parse(utf8.decode(record.data))
      } catch (cause) {
        throw new NonRetryableError('the order is not JSON', { cause })
      }
      if (typeof order.id !== 'string') throw new NonRetryableError('the order has no id')
      // ...store the order; a throw here (database busy) is retried by Lambda.
    }),
  )
    .use(kinesisDecode())
    .use(
      partialFailures({
        logger,
        onPoison: (record, error) =>
          sqs.send(
            new SendMessageCommand({
              QueueUrl: queueUrl,
              MessageBody: JSON.stringify(deadLetterOf(record, error)),
              // Same shard, same group: a FIFO dead-letter queue keeps the stream's order.
              ...(queueUrl.endsWith('.fifo')
                ? {
                    MessageGroupId: record.shardId,
                    MessageDeduplicationId: `${record.sequenceNumber}:${record.subSequenceNumber ?? 0}`,
                  }
                : {}),
            }),
          ),
      }),
    )
}

export const handler = ordersHandler(
  new SQSClient({}),
  process.env.DEAD_LETTER_QUEUE_URL ??
    'https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq',
)
