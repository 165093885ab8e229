/**
 * Test helpers: Kinesis events around payloads, the whole chain around a parser, a local HTTP
 * server for the registries' fakes, and the schemas the tests share.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import middy from '@middy/core'
import { type Context, getBatch, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent } from '@shardwise/testing'
import avro from 'avsc'
import type { AvroParser } from './index.js'

/** Kinesis records of shard 1 carrying the given payloads, numbered from sequence 100. */
export function shardEvent(payloads: Uint8Array[]): KinesisStreamEvent {
  const specs = payloads.map((data, n) => ({
    data,
    partitionKey: `order-${n}`,
    sequenceNumber: String(100 + n),
  }))
  return kinesisEvent(specs, 'shardId-000000000001')
}

/** Runs kinesisDecode, the parser and eachRecord; returns what each record became. */
export async function parseThrough<T>(parser: AvroParser<T>, payloads: Uint8Array[]) {
  const event = shardEvent(payloads)
  const handled: T[] = []
  const handler = middy(eachRecord<T>((record) => void handled.push(record.data)))
    .use(kinesisDecode())
    .use(parser)
    .use(partialFailures({ logger: false }))
  const response = await handler(event, { functionName: 'avro-parse-test' } as Context)
  const batch = getBatch<T>(event)
  if (batch === undefined) throw new Error('kinesisDecode attaches the batch')
  return {
    response,
    handled,
    errors: batch.errors,
    status: batch.status,
    /** Each record's data, or its error's message. */
    outcomes: batch.records.map((record, i) => batch.errors.get(i)?.message ?? record.data),
  }
}

/** An HTTP server on 127.0.0.1 and a free port; `stop()` ends it and every open connection. */
export async function localServer(
  handle: (request: IncomingMessage, body: string, response: ServerResponse) => Promise<unknown>,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = createServer(async (request, response) => {
    try {
      let body = ''
      for await (const chunk of request) body += chunk
      await handle(request, body, response)
    } catch (error) {
      response.writeHead(500).end(String(error))
    }
  })
  // Idle connections stay open until stop(): with Node's 5 s keep-alive timeout, a client that
  // reused one as the server closed it met ECONNRESET, which a client with maxAttempts: 1 does
  // not retry (a Glue test failed so on a busy machine, after a slow 64 MiB deflate).
  server.keepAliveTimeout = 0
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** Version 1 of the orders' schema, as JSON. */
export const orderV1 = {
  type: 'record',
  name: 'Order',
  namespace: 'com.acme',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'quantity', type: 'int' },
  ],
}

/** Version 2 adds a field with a default: each version can read the other's data. */
export const orderV2 = {
  ...orderV1,
  fields: [...orderV1.fields, { name: 'currency', type: 'string', default: 'EUR' }],
}

/** A meter reading in microseconds: a long that needs 64 bits. */
export const meterV1 = {
  type: 'record',
  name: 'Meter',
  namespace: 'com.acme',
  fields: [{ name: 'micros', type: 'long' }],
}

/** Version 2 adds a field with a default. */
export const meterV2 = {
  ...meterV1,
  fields: [...meterV1.fields, { name: 'unit', type: 'string', default: 'us' }],
}

/** avsc's documented way to read longs as BigInt: `typeOptions: { registry: { long: bigIntLong } }`. */
export const bigIntLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8)
    buf.writeBigInt64LE(n)
    return buf
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
})
