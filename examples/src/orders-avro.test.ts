import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import avro from 'avsc'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type * as OrdersAvro from './orders-avro.js'

// Version 1, before `channel`; version 2 is the reader schema itself.
const orderV1 = {
  type: 'record',
  name: 'Order',
  namespace: 'com.acme.orders',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'amountCents', type: 'long' },
  ],
}

let registry: Server
let orders: typeof OrdersAvro
const schemas = new Map<number, object>()

/**
 * A producer's record: Confluent framing (magic byte 0, then the schema id) around the datum
 * written with schema `writer`; `id` differs only to frame it with an id the registry lacks.
 */
function framed(writer: number, value: object, id = writer): Buffer {
  const header = Buffer.alloc(5)
  header.writeUInt32BE(id, 1)
  const type = avro.Type.forSchema(schemas.get(writer) as avro.Schema)
  return Buffer.concat([header, type.toBuffer(value)])
}

beforeAll(async () => {
  // Only the look-up the handler makes: GET /schemas/ids/{id}.
  registry = createServer((request, response) => {
    const schema = schemas.get(Number(request.url?.match(/^\/schemas\/ids\/(\d+)$/)?.[1]))
    if (!schema)
      return void response.writeHead(404).end('{"error_code":40403,"message":"Schema not found"}')
    response.writeHead(200, { 'content-type': 'application/vnd.schemaregistry.v1+json' })
    response.end(JSON.stringify({ schema: JSON.stringify(schema) }))
  })
  registry.listen(0, '127.0.0.1')
  await once(registry, 'listening')
  process.env.SCHEMA_REGISTRY_URL = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`
  // The handler reads its configuration when the module loads, as it would in a cold start.
  orders = await import('./orders-avro.js')
  schemas.set(1, orderV1)
  schemas.set(2, orders.orderSchema)
})

afterAll(async () => {
  registry.closeAllConnections()
  registry.close()
  await once(registry, 'close')
})

beforeEach(() => {
  orders.saved.length = 0
})

describe('the Avro orders handler', () => {
  it('reads orders of both schema versions as the current one', async () => {
    const event = kinesisEvent([
      { data: framed(1, { orderId: 'o-1', amountCents: 1250 }) },
      { data: framed(2, { orderId: 'o-2', amountCents: 990, channel: 'STORE' }) },
    ])
    const response = await orders.handler(event, lambdaContext(60_000, 'orders-avro'))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(orders.saved).toEqual([
      { orderId: 'o-1', amountCents: 1250, channel: 'WEB' },
      { orderId: 'o-2', amountCents: 990, channel: 'STORE' },
    ])
  })

  it('reports the first record it cannot read, and saves the ones before it', async () => {
    const event = kinesisEvent([
      { data: framed(2, { orderId: 'o-1', amountCents: 100, channel: 'WEB' }) },
      { data: framed(1, { orderId: 'o-2', amountCents: 100 }, 9) },
      { data: '{"orderId":"o-3"}' },
    ])
    const response = await orders.handler(event, lambdaContext(60_000, 'orders-avro'))
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]?.kinesis.sequenceNumber }],
    })
    expect(orders.saved.map((order) => order.orderId)).toEqual(['o-1'])
  })
})
