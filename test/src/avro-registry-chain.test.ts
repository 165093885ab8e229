/**
 * Confluent-framed Avro in the whole chain: user records encoded by
 * @kafkajs/confluent-schema-registry, some inside KPL aggregates (built by aws-kinesis-agg),
 * decoded by kinesisDecode + avroParse with schemas from a registry served on 127.0.0.1. A
 * schema the registry cannot give for a while holds back its records, and only until it can.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { SchemaRegistry as KafkaJsRegistry } from '@kafkajs/confluent-schema-registry'
import middy from '@middy/core'
import { avroParse, confluentSchemaRegistry, SchemaRegistryError } from '@shardwise/avro-parse'
import { getBatch } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

interface Aggregator {
  addUserRecord(record: { partitionKey: string; data: Buffer }): void
  build(): { data: Buffer }
}
const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => Aggregator
}

const paymentV1 = {
  type: 'record',
  name: 'Payment',
  namespace: 'com.acme.payments',
  fields: [
    { name: 'paymentId', type: 'string' },
    { name: 'cents', type: 'int' },
  ],
}
/** Adds a field with a default and widens cents to long: v1 data reads as v2. */
const paymentV2 = {
  ...paymentV1,
  fields: [
    { name: 'paymentId', type: 'string' },
    { name: 'cents', type: 'long' },
    {
      name: 'method',
      type: { type: 'enum', name: 'Method', symbols: ['CARD', 'SEPA'] },
      default: 'CARD',
    },
  ],
}
const schemas = new Map<number, object>([
  [1, paymentV1],
  [2, paymentV2],
])

/** GET /schemas/ids/{id}, the one call both kafkajs' encode and avroParse make. */
const requests: number[] = []
const unavailable = new Set<number>()
const server = createServer((request, response) => {
  const id = Number(/^\/schemas\/ids\/(\d+)$/.exec(request.url ?? '')?.[1])
  const schema = schemas.get(id)
  response.setHeader('content-type', 'application/vnd.schemaregistry.v1+json')
  if (schema === undefined) {
    response.statusCode = 404
    response.end(JSON.stringify({ error_code: 40403, message: 'Schema not found' }))
    return
  }
  requests.push(id)
  if (unavailable.has(id)) {
    response.statusCode = 503
    response.end(JSON.stringify({ error_code: 50302, message: 'Leader not known' }))
    return
  }
  response.end(JSON.stringify({ schema: JSON.stringify(schema) }))
})
let url = ''

beforeAll(async () => {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
})

function aggregate(payloads: Buffer[]): Buffer {
  const aggregator = new RecordAggregator()
  for (const [n, data] of payloads.entries()) {
    aggregator.addUserRecord({ partitionKey: `payer-${n}`, data })
  }
  return aggregator.build().data
}

describe('Confluent-framed Avro through the chain', () => {
  it('decodes what kafkajs encoded, holds back what waits for its schema, and loses nothing', async () => {
    const producer = new KafkaJsRegistry({ host: url })
    const v1 = (paymentId: string) => producer.encode(1, { paymentId, cents: 100 })
    const v2 = (paymentId: string) =>
      producer.encode(2, { paymentId, cents: 2 ** 40, method: 'SEPA' })
    const records = [
      { data: await v1('p0') },
      { data: aggregate([await v1('a0'), await v2('a1'), await v1('a2')]) },
      { data: await v2('p4') },
    ]
    requests.length = 0

    // Module level in a handler file: one registry for the life of the container.
    const registry = confluentSchemaRegistry({ url, timeout: 1000 })
    const handled: unknown[] = []
    const handler = middy(eachRecord((record) => void handled.push(record.data)))
      .use(kinesisDecode())
      .use(avroParse({ registry, readerSchema: paymentV2 }))
      .use(partialFailures({ logger: false }))

    unavailable.add(2)
    const first = kinesisEvent(records)
    const carrier = first.Records[1]?.kinesis.sequenceNumber as string
    expect(await handler(first, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: carrier }],
    })
    const asV2 = (paymentId: string) => ({ paymentId, cents: 100, method: 'CARD' })
    expect(handled).toEqual([asV2('p0'), asV2('a0')])
    const error = getBatch(first)?.errors.get(2)
    expect(error).toBeInstanceOf(SchemaRegistryError)
    expect(error?.retryable).toBe(true)
    expect(error?.message).toBe(
      `record ${carrier} sub-record 1 of shardId-000000000006 (partition key "payer-1"): cannot get schema 2 of the Confluent Schema Registry at ${url}: GET /schemas/ids/2 answered HTTP 503: Leader not known (error 50302)`,
    )

    // Lambda redelivers from the carrier on; the registry is back.
    unavailable.delete(2)
    handled.length = 0
    const again = kinesisEvent(records.slice(1))
    expect(await handler(again, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(handled).toEqual([
      asV2('a0'),
      { paymentId: 'a1', cents: 2 ** 40, method: 'SEPA' },
      asV2('a2'),
      { paymentId: 'p4', cents: 2 ** 40, method: 'SEPA' },
    ])
    // Schema 1 once for both invocations; schema 2 once failed, then once.
    expect(requests.sort()).toEqual([1, 2, 2])
  })
})
