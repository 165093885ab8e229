/**
 * A consumer that never lets a poison record block its shard: records that can never succeed
 * (undecodable, or refused by the business rules with NonRetryableError) go to an SQS
 * dead-letter queue with everything needed to put them back on a stream, and the shard moves
 * on. Retryable failures are reported to Lambda as usual. `@shardwise/sqs-poison-sink` writes
 * each one as a `PoisonMessage`: the record's bytes as they were in the stream (base64), its
 * coordinates and the error.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, NonRetryableError, partialFailures } from '@shardwise/partial-failures'
import { type SqsPoisonSinkOptions, sqsPoisonSink } from '@shardwise/sqs-poison-sink'

/** `sink` defaults to the queue named by SHARDWISE_POISON_QUEUE_URL, through the Lambda's SQS client. */
export function ordersHandler(sink: SqsPoisonSinkOptions = {}, logger = new Logger()) {
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
        onPoison: sqsPoisonSink(sink),
      }),
    )
}

// @shardwise/cdk's KinesisConsumer sets SHARDWISE_POISON_QUEUE_URL when poisonQueue is on.
export const handler = ordersHandler()
