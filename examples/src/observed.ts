/**
 * An orders consumer its owner can watch: one EMF line of metrics per invocation (records by
 * outcome and failing stage, iterator ages), every log line written for a record naming it
 * (shard, sequence number, partition key) while the keys run in parallel, and one span per
 * record, linked to the producer's trace when the order carries a `traceparent`. Spans reach a
 * backend only when the function registers an OpenTelemetry SDK (the ADOT Lambda layer does).
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import { trace } from '@opentelemetry/api'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { batchMetrics, recordLogContext, recordTracing } from '@shardwise/observe'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { z } from 'zod'

export const logger = new Logger({ serviceName: 'orders' })
const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
const tracer = trace.getTracer('orders')

const parse = jsonParse({
  schema: z.object({
    orderId: z.string().min(1),
    amount: z.number().nonnegative(),
    traceparent: z.string().optional(),
  }),
})
export type Order = InferData<typeof parse>

/** Where the orders go; the test looks at it, and makes it fail. */
export const store = {
  saved: [] as string[],
  async save(order: Order): Promise<void> {
    this.saved.push(order.orderId)
  },
}

export const handler = middy(
  eachRecord(
    parse,
    async (record) => {
      logger.info('saving the order', { orderId: record.data.orderId })
      // A child of the record's span: the record's span is the active one here.
      await tracer.startActiveSpan('save order', async (span) => {
        try {
          await store.save(record.data)
        } finally {
          span.end()
        }
      })
    },
    { ordering: 'partitionKey', concurrency: 4 },
  ),
)
  .use(batchMetrics({ metrics }))
  .use(kinesisDecode())
  .use(parse)
  .use(recordLogContext({ logger }))
  .use(recordTracing())
  .use(partialFailures({ logger }))
