/**
 * Orders arrive as Avro in the Confluent wire format. Each writer schema is fetched from the
 * schema registry once per container, and every version is read as the reader schema this
 * function was built for: older producers' orders get the new field's default.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { avroParse, confluentSchemaRegistry } from '@shardwise/avro-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'

const logger = new Logger({ serviceName: 'orders-avro' })

/** The reader schema: what this function understands. `channel` came in version 2. */
export const orderSchema = {
  type: 'record',
  name: 'Order',
  namespace: 'com.acme.orders',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'amountCents', type: 'long' },
    {
      name: 'channel',
      type: { type: 'enum', name: 'Channel', symbols: ['WEB', 'STORE'] },
      default: 'WEB',
    },
  ],
}

export interface Order {
  orderId: string
  amountCents: number
  channel: 'WEB' | 'STORE'
}

/** Where the orders go; a module-level array so the test can look at it. */
export const saved: Order[] = []

const parse = avroParse<Order>({
  registry: confluentSchemaRegistry({
    url: process.env.SCHEMA_REGISTRY_URL ?? '',
    auth: process.env.SCHEMA_REGISTRY_KEY
      ? {
          username: process.env.SCHEMA_REGISTRY_KEY,
          password: process.env.SCHEMA_REGISTRY_SECRET ?? '',
        }
      : undefined,
  }),
  readerSchema: orderSchema,
})

export const handler = middy(
  eachRecord(parse, async (record) => {
    if (record.data.amountCents < 0)
      throw new Error(`order ${record.data.orderId} has a negative amount`)
    saved.push(record.data)
  }),
)
  .use(kinesisDecode())
  .use(parse)
  .use(partialFailures({ logger }))
