/**
 * Orders arrive as JSON. A zod schema checks each one and turns `placedAt` into a `Date`; the
 * record handler gets the schema's output, typed, and an order that does not match fails alone,
 * with every problem listed in the log.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { z } from 'zod'

const logger = new Logger({ serviceName: 'orders-json' })

const OrderSchema = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  lines: z
    .array(
      z.object({
        sku: z.string().min(1),
        quantity: z.number().int().positive(),
        unitPrice: z.number().nonnegative(),
      }),
    )
    .min(1),
  placedAt: z.iso.datetime().transform((text) => new Date(text)),
})

const parse = jsonParse({ schema: OrderSchema })
export type Order = InferData<typeof parse>

export interface SavedOrder {
  orderId: string
  total: number
  placedAt: Date
}

/** Where the orders go; a module-level array so the test can look at it. */
export const saved: SavedOrder[] = []

async function save(order: Order): Promise<void> {
  const total = order.lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0)
  saved.push({ orderId: order.orderId, total, placedAt: order.placedAt })
}

export const handler = middy(eachRecord(parse, (record) => save(record.data)))
  .use(kinesisDecode())
  .use(parse)
  .use(partialFailures({ logger }))
