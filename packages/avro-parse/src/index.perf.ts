/**
 * Decode speed against the hand-written avsc loop and against @kafkajs/confluent-schema-registry's
 * `decode`, the Confluent framing decoder most Node consumers use.
 * Run with `npx -y pnpm@12.4.2 --filter @shardwise/avro-parse bench` (after a build: it measures `dist`).
 *
 * One Lambda batch: 10,000 records of one order schema (~60-byte datums); only the decode step is
 * timed, with the writer schema already fetched (a warm container).
 */

import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { avroParse, confluentSchemaRegistry } from '@shardwise/avro-parse'
import { getBatch, type KinesisRecord, type RecordBatch } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { printMedians } from '@shardwise/test-internals'
import { kinesisEvent } from '@shardwise/testing'
import avro from 'avsc'
import { Bench } from 'tinybench'

const RECORDS = 10_000
const SCHEMA_ID = 1

const schema = {
  type: 'record',
  name: 'Order',
  namespace: 'com.acme',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'customer', type: 'string' },
    { name: 'amount', type: 'long' },
    { name: 'currency', type: { type: 'enum', name: 'Currency', symbols: ['EUR', 'USD'] } },
    { name: 'at', type: 'string' },
  ],
}
const Order = avro.Type.forSchema(schema as avro.Schema)

// Serves the one schema, for kafkajs' and confluentSchemaRegistry's first look-up.
const server = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/vnd.schemaregistry.v1+json' })
  response.end(JSON.stringify({ schema: JSON.stringify(schema) }))
})
server.listen(0, '127.0.0.1')
await once(server, 'listening')
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

/** A decoded batch whose records can be put back to their bytes before each iteration. */
function decodedBatch(payloads: Buffer[]) {
  const event = kinesisEvent(payloads.map((data) => ({ data })))
  kinesisDecode().before?.({ event } as never)
  const batch = getBatch(event) as RecordBatch<unknown>
  const bytes = batch.records.map((record) => record.data as Buffer)
  const reset = () => {
    const { records } = batch
    for (let i = 0; i < records.length; i++) (records[i] as KinesisRecord<unknown>).data = bytes[i]
    batch.status.fill(0)
    batch.errors.clear()
  }
  return { event, batch, reset }
}

const orders = Array.from({ length: RECORDS }, (_, i) => ({
  orderId: `order-${i.toString().padStart(8, '0')}`,
  customer: `customer-${i % 997}`,
  amount: (i * 7919) % 100_000,
  currency: 'EUR',
  at: '2026-11-25T12:00:00.000Z',
}))
const bare = decodedBatch(orders.map((order) => Order.toBuffer(order)))
const framed = decodedBatch(
  orders.map((order) => {
    const header = Buffer.alloc(5)
    header.writeUInt32BE(SCHEMA_ID, 1)
    return Buffer.concat([header, Order.toBuffer(order)])
  }),
)

const kafkajs = new SchemaRegistry({ host: url })
const inline = avroParse({ schema: Order })
const registry = avroParse({ registry: confluentSchemaRegistry({ url }) })
// Warm both registries' caches, as a container after its first batch.
await kafkajs.decode(framed.batch.records[0]?.data as Buffer)
await registry.before?.({ event: framed.event } as never)

let sink = 0

function handLoop() {
  for (const record of bare.batch.records) {
    try {
      record.data = Order.fromBuffer(record.data as Buffer)
    } catch {
      sink--
    }
  }
  sink++
}

async function kafkajsLoop() {
  for (const record of framed.batch.records) {
    try {
      record.data = await kafkajs.decode(record.data as Buffer)
    } catch {
      sink--
    }
  }
  sink++
}

const bench = new Bench({ time: 2000, warmup: true })
bench
  .add('hand loop: avsc fromBuffer', handLoop, { beforeEach: bare.reset })
  .add('avroParse({ schema })', () => void inline.before?.({ event: bare.event } as never), {
    beforeEach: bare.reset,
  })
  .add('@kafkajs/confluent-schema-registry decode', kafkajsLoop, { beforeEach: framed.reset })
  .add(
    'avroParse({ registry: confluentSchemaRegistry })',
    () => void registry.before?.({ event: framed.event } as never),
    { beforeEach: framed.reset },
  )

await bench.run()
server.close()

console.log(`${RECORDS} records of ~60-byte Avro datums per batch (${process.version})`)
printMedians(bench, RECORDS)
if (sink === 0) console.log('nothing decoded')
