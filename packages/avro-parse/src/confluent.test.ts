/**
 * Confluent framing end to end: payloads encoded by @kafkajs/confluent-schema-registry against a
 * small Confluent-compatible registry served on 127.0.0.1, decoded by avroParse through the same
 * registry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SchemaRegistry as KafkaJsRegistry, SchemaType } from '@kafkajs/confluent-schema-registry'
import { getBatch, ParseError } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import avro from 'avsc'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  bigIntLong,
  localServer,
  meterV1,
  meterV2,
  orderV1,
  orderV2,
  parseThrough,
  shardEvent,
} from './events.testkit.js'
import {
  avroParse,
  confluentSchemaRegistry,
  glueSchemaRegistry,
  SchemaRegistryError,
} from './index.js'

interface Stored {
  id: number
  subject: string
  version: number
  schema: string
  schemaType?: string
  references?: unknown[]
}

/** Just enough of the Confluent Schema Registry REST API for kafkajs to register and for us to read. */
class FakeConfluentRegistry {
  readonly byId = new Map<number, Stored>()
  readonly bySubject = new Map<string, Stored[]>()
  readonly config = new Map<string, string>()
  /** Paths of every `GET /schemas/ids/{id}`, in order. */
  readonly idRequests: string[] = []
  /** How many `GET /schemas/ids/*` were being answered at once, at most. */
  mostAtOnce = 0
  private atOnce = 0
  /** Paths of every `GET /subjects/{subject}/versions/{version}`, in order. */
  readonly versionRequests: string[] = []
  /** When set, `/schemas/ids/*` answers with this HTTP status; `'reset'` drops the connection. */
  outage: number | 'reset' | undefined
  /** Milliseconds before `/schemas/ids/*` answers. */
  delay = 0
  /** When set, `/schemas/ids/*` answers with this status and body, as a proxy might. */
  page: { status: number; type: string; body: string } | undefined
  /** When set, `/schemas/ids/*` sends its headers and part of a body, then nothing more. */
  stallBody = false
  /** When set, every request must carry this Authorization header. */
  authorization: string | undefined
  url = ''
  stop: () => Promise<void> = async () => {}

  async start() {
    const server = await localServer((request, body, response) =>
      this.handle(request, body, response),
    )
    this.url = server.url
    this.stop = server.stop
  }

  /** Stores a schema the way a producer in another language would have registered it. */
  put(subject: string, schema: string, extra: Partial<Stored> = {}): number {
    const versions = this.bySubject.get(subject) ?? []
    const same = versions.find((stored) => stored.schema === schema)
    if (same) return same.id
    const stored = {
      id: this.byId.size + 1,
      subject,
      version: versions.length + 1,
      schema,
      ...extra,
    }
    versions.push(stored)
    this.bySubject.set(subject, versions)
    this.byId.set(stored.id, stored)
    return stored.id
  }

  private async handle(request: IncomingMessage, text: string, response: ServerResponse) {
    const send = (status: number, body: unknown) =>
      response
        .writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' })
        .end(JSON.stringify(body))
    if (this.authorization !== undefined && request.headers.authorization !== this.authorization) {
      return send(401, { error_code: 401, message: 'Unauthorized' })
    }
    const body = text === '' ? {} : JSON.parse(text)
    const path = decodeURIComponent((request.url ?? '').split('?')[0] as string)

    const schemaById = path.match(/^\/schemas\/ids\/(\d+)$/)
    if (schemaById) {
      this.idRequests.push(path)
      this.mostAtOnce = Math.max(this.mostAtOnce, ++this.atOnce)
      response.once('close', () => this.atOnce--)
      if (this.delay > 0) await new Promise((resolve) => setTimeout(resolve, this.delay))
      if (this.outage === 'reset') return void request.socket.destroy()
      if (this.stallBody) return void response.writeHead(200).write('{"schema":')
      if (this.page !== undefined) {
        const { status, type, body: page } = this.page
        return void response.writeHead(status, { 'content-type': type }).end(page)
      }
      if (this.outage !== undefined)
        return send(this.outage, { error_code: 50001, message: 'Error in the backend data store' })
      const stored = this.byId.get(Number(schemaById[1]))
      if (!stored) return send(404, { error_code: 40403, message: 'Schema not found' })
      const { schema, schemaType, references } = stored
      return send(200, { schema, schemaType, references })
    }
    const config = path.match(/^\/config\/(.+)$/)
    if (config) {
      if (request.method === 'PUT') {
        this.config.set(config[1] as string, body.compatibility)
        return send(200, { compatibility: body.compatibility })
      }
      const level = this.config.get(config[1] as string)
      if (!level)
        return send(404, {
          error_code: 40408,
          message: 'Subject does not have subject-level compatibility configured',
        })
      return send(200, { compatibilityLevel: level })
    }
    const register = path.match(/^\/subjects\/(.+)\/versions$/)
    if (register && request.method === 'POST') {
      const id = this.put(register[1] as string, body.schema, {
        schemaType: body.schemaType,
        references: body.references,
      })
      return send(200, { id })
    }
    const version = path.match(/^\/subjects\/(.+)\/versions\/(\d+|latest)$/)
    if (version) {
      if (request.method === 'GET') this.versionRequests.push(path)
      const versions = this.bySubject.get(version[1] as string) ?? []
      const stored = version[2] === 'latest' ? versions.at(-1) : versions[Number(version[2]) - 1]
      if (!stored) return send(404, { error_code: 40402, message: 'Version not found' })
      return send(200, stored)
    }
    send(404, { error_code: 404, message: `no route for ${request.method} ${path}` })
  }
}

const customer = {
  type: 'record',
  name: 'Customer',
  namespace: 'com.acme',
  fields: [{ name: 'name', type: 'string' }],
}

const fake = new FakeConfluentRegistry()
let producer: KafkaJsRegistry
let v1: number
let v2: number

beforeAll(async () => {
  await fake.start()
  producer = new KafkaJsRegistry({ host: fake.url })
  v1 = (
    await producer.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(orderV1) },
      { subject: 'orders-value' },
    )
  ).id
  v2 = (
    await producer.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(orderV2) },
      { subject: 'orders-value' },
    )
  ).id
})

afterAll(() => fake.stop())

beforeEach(() => {
  fake.outage = undefined
  fake.delay = 0
  fake.stallBody = false
  fake.page = undefined
  fake.authorization = undefined
  fake.idRequests.length = 0
  fake.mostAtOnce = 0
  fake.versionRequests.length = 0
})

describe('confluentSchemaRegistry', () => {
  it('decodes payloads kafkajs encoded, each with its writer schema', async () => {
    const payloads = [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
      await producer.encode(v2, { id: 'b', quantity: 2, currency: 'USD' }),
    ]
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    const { outcomes, response } = await parseThrough(parse, payloads)
    expect(response).toEqual({ batchItemFailures: [] })
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1 },
      { id: 'b', quantity: 2, currency: 'USD' },
    ])
  })

  it('resolves every writer version to the readerSchema', async () => {
    const payloads = [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
      await producer.encode(v2, { id: 'b', quantity: 2, currency: 'USD' }),
    ]
    const registry = confluentSchemaRegistry({ url: fake.url })
    const asV2 = await parseThrough(avroParse({ registry, readerSchema: orderV2 }), payloads)
    expect(asV2.outcomes).toEqual([
      { id: 'a', quantity: 1, currency: 'EUR' },
      { id: 'b', quantity: 2, currency: 'USD' },
    ])
    const asV1 = await parseThrough(avroParse({ registry, readerSchema: orderV1 }), payloads)
    expect(asV1.outcomes).toEqual([
      { id: 'a', quantity: 1 },
      { id: 'b', quantity: 2 },
    ])
  })

  it('asks once per schema id for the life of the container, and never while it is known', async () => {
    const payloads = []
    for (let n = 0; n < 50; n++) {
      payloads.push(await producer.encode(n % 2 ? v1 : v2, { id: `o${n}`, quantity: n }))
    }
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    const first = await parseThrough(parse, payloads)
    expect(first.errors.size).toBe(0)
    expect(fake.idRequests.sort()).toEqual([`/schemas/ids/${v1}`, `/schemas/ids/${v2}`])

    await parseThrough(parse, payloads)
    expect(fake.idRequests).toHaveLength(2)

    // A batch whose schemas are all known is decoded without a promise.
    const event = shardEvent(payloads)
    kinesisDecode().before?.({ event } as never)
    expect(parse.before?.({ event } as never)).toBeUndefined()
    expect(getBatch(event)?.records[0]?.data).toEqual({ id: 'o0', quantity: 0, currency: 'EUR' })
  })

  it('shares one request among concurrent look-ups of the same id', async () => {
    fake.delay = 50
    const registry = confluentSchemaRegistry({ url: fake.url })
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    const results = await Promise.all([
      parseThrough(avroParse({ registry }), [payload, payload]),
      parseThrough(avroParse({ registry, readerSchema: orderV2 }), [payload]),
    ])
    expect(results.map((result) => result.outcomes)).toEqual([
      [
        { id: 'a', quantity: 1 },
        { id: 'a', quantity: 1 },
      ],
      [{ id: 'a', quantity: 1, currency: 'EUR' }],
    ])
    expect(fake.idRequests).toEqual([`/schemas/ids/${v1}`])
  })

  it('fails only the records whose schema the registry cannot give, and asks again next time', async () => {
    const registry = confluentSchemaRegistry({ url: fake.url })
    const parse = avroParse({ registry })
    const known = await producer.encode(v1, { id: 'known', quantity: 1 })
    await parseThrough(parse, [known])

    const unknown = await producer.encode(v2, { id: 'new', quantity: 2 })
    for (const outage of [500, 'reset'] as const) {
      fake.outage = outage
      const { outcomes, errors, response } = await parseThrough(parse, [known, unknown, known])
      expect(outcomes[0]).toEqual({ id: 'known', quantity: 1 })
      expect(outcomes[2]).toEqual({ id: 'known', quantity: 1 })
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '101' }] })
      const error = errors.get(1)
      expect(error).toBeInstanceOf(SchemaRegistryError)
      expect(error?.retryable).toBe(true)
      expect(error?.message).toContain(
        `record 101 of shardId-000000000001 (partition key "order-1"): cannot get schema ${v2} of the Confluent Schema Registry at ${fake.url}: `,
      )
      if (outage === 500) {
        expect(error?.message).toMatch(/HTTP 500: Error in the backend data store \(error 50001\)$/)
      }
    }

    fake.outage = undefined
    const requestsBefore = fake.idRequests.length
    const recovered = await parseThrough(parse, [unknown])
    expect(recovered.outcomes).toEqual([{ id: 'new', quantity: 2, currency: 'EUR' }])
    expect(fake.idRequests.length).toBe(requestsBefore + 1)
  })

  it('asks about at most 16 schemas at once, and about no more once the registry fails', async () => {
    // Bare Avro datums that start with 0x00 (a zero, an empty string) by mistake, each naming
    // another "schema id": one request each, all at once, ran the function out of sockets
    // (EMFILE), and the records that should have failed for good were retried for ever.
    const payloads = Array.from({ length: 400 }, (_, n) =>
      Buffer.concat([Buffer.of(0), Buffer.from(String(n).padStart(4, '0')), Buffer.of(0)]),
    )
    fake.delay = 10
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    const unknown = await parseThrough(parse, payloads)
    expect(fake.idRequests).toHaveLength(400)
    expect(fake.mostAtOnce).toBeLessThanOrEqual(16)
    expect([...unknown.errors.values()].every((error) => error.retryable === false)).toBe(true)
    expect(unknown.outcomes[399]).toMatch(/HTTP 404: Schema not found \(error 40403\)$/)

    fake.idRequests.length = 0
    fake.outage = 503
    const down = await parseThrough(parse, payloads)
    expect(fake.idRequests.length).toBeLessThanOrEqual(16)
    expect(down.errors.size).toBe(400)
    expect([...down.errors.values()].every((error) => error.retryable === true)).toBe(true)
    const registryName = `the Confluent Schema Registry at ${fake.url}`
    expect(down.outcomes[399]).toMatch(
      new RegExp(
        `^${escapeRegExp(`record 499 of shardId-000000000001 (partition key "order-399"): cannot get schema ${Buffer.from('0399').readUInt32BE(0)} of ${registryName}: not asked, after the look-up of schema `)}(\\d+)${escapeRegExp(` of ${registryName} failed in this batch: GET /schemas/ids/`)}\\1 answered HTTP 503: Error in the backend data store \\(error 50001\\)$`,
      ),
    )
  })

  it('fails the records when the registry does not answer in time', async () => {
    // The registry would answer after 10 s: an answer well before that is the timeout's.
    fake.delay = 10_000
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url, timeout: 50 }) })
    const started = Date.now()
    const { errors } = await parseThrough(parse, [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
    ])
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
    expect(errors.get(0)?.retryable).toBe(true)
    expect(errors.get(0)?.message).toBe(
      `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema ${v1} of the Confluent Schema Registry at ${fake.url}: GET /schemas/ids/${v1} got no answer within 50 ms (the timeout option)`,
    )
  })

  it('times out a registry that sends its headers and then stalls the body', async () => {
    fake.stallBody = true
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url, timeout: 50 }) })
    const { errors } = await parseThrough(parse, [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
    ])
    expect(errors.get(0)?.retryable).toBe(true)
    expect(errors.get(0)?.message).toMatch(
      new RegExp(`: GET /schemas/ids/${v1} got no answer within 50 ms \\(the timeout option\\)$`),
    )
  })

  it('fails the records when the registry is not there at all', async () => {
    const gone = new FakeConfluentRegistry()
    await gone.start()
    const url = gone.url
    await gone.stop()
    const parse = avroParse({ registry: confluentSchemaRegistry({ url }) })
    const { errors } = await parseThrough(parse, [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
    ])
    expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
    expect(errors.get(0)?.retryable).toBe(true)
    // undici says only "fetch failed"; the reason is in its cause.
    expect(errors.get(0)?.message).toBe(
      `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema ${v1} of the Confluent Schema Registry at ${url}: GET /schemas/ids/${v1} failed: connect ECONNREFUSED ${url.slice('http://'.length)}`,
    )
  })

  it('says what a registry or a proxy in front of it answered, and keeps the records for a retry', async () => {
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    const login = `<html><head><title>Sign in</title></head><body>${'x'.repeat(300)}</body></html>`
    const pages = [
      { status: 200, type: 'text/html', body: login },
      { status: 502, type: 'text/html', body: '<h1>502 Bad Gateway</h1>' },
      { status: 503, type: 'text/plain', body: '' },
      {
        status: 429,
        type: 'application/json',
        body: '{"error_code":42901,"message":"Too Many Requests"}',
      },
      {
        status: 401,
        type: 'application/json',
        body: '{"error_code":40101,"message":"Unauthorized"}',
      },
      { status: 200, type: 'application/json', body: '{"id":1}' },
    ]
    const answers = [
      `answered HTTP 200 with a body that is not JSON: ${login.slice(0, 200)}…`,
      'answered HTTP 502: <h1>502 Bad Gateway</h1>',
      'answered HTTP 503: (empty body)',
      'answered HTTP 429: Too Many Requests (error 42901)',
      'answered HTTP 401: Unauthorized (error 40101)',
      'answered without a schema',
    ]
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    for (const [n, page] of pages.entries()) {
      fake.page = page
      const { errors, response } = await parseThrough(parse, [payload])
      expect(response, page.body).toEqual({ batchItemFailures: [{ itemIdentifier: '100' }] })
      expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
      expect(errors.get(0)?.retryable).toBe(true)
      expect(errors.get(0)?.message).toBe(
        `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema ${v1} of the Confluent Schema Registry at ${fake.url}: GET /schemas/ids/${v1} ${answers[n]}`,
      )
    }
    fake.page = undefined
    expect((await parseThrough(parse, [payload])).outcomes).toEqual([{ id: 'a', quantity: 1 }])
    expect(fake.idRequests).toHaveLength(pages.length + 1)
  })

  it('fails for good a record whose registered schema is not JSON', async () => {
    const broken = fake.put('broken-value', '{"type": "record", name: Order}')
    const referring = fake.put('referring-value', JSON.stringify(orderV1), {
      references: [{ name: 'com.acme.Broken', subject: 'broken-value', version: 1 }],
    })
    const good = await producer.encode(v1, { id: 'a', quantity: 1 })
    const framed = (id: number) => Buffer.concat([Buffer.of(0, 0, 0, 0, id), good.subarray(5)])
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    const { outcomes, errors } = await parseThrough(parse, [framed(broken), framed(referring)])
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    expect(outcomes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${escapeRegExp(`${at(0)}: cannot get schema ${broken} of the Confluent Schema Registry at ${fake.url}: its schema is not JSON: `)}`,
        ),
      ),
      expect.stringMatching(
        new RegExp(
          `^${escapeRegExp(`${at(1)}: cannot get schema ${referring} of the Confluent Schema Registry at ${fake.url}: the schema it refers to as com.acme.Broken (subject broken-value, version 1) is not JSON: `)}`,
        ),
      ),
    ])
    expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
    expect(errors.get(0)?.retryable).toBe(false)
    expect(errors.get(1)?.retryable).toBe(false)
  })

  it('sends basic auth', async () => {
    fake.authorization = `Basic ${Buffer.from('key:secret').toString('base64')}`
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    const denied = await parseThrough(
      avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) }),
      [payload],
    )
    expect(denied.errors.get(0)?.message).toMatch(/HTTP 401: Unauthorized/)
    const registry = confluentSchemaRegistry({
      url: `${fake.url}/`,
      auth: { username: 'key', password: 'secret' },
    })
    const allowed = await parseThrough(avroParse({ registry }), [payload])
    expect(allowed.outcomes).toEqual([{ id: 'a', quantity: 1 }])
  })

  it('takes basic auth credentials from the url, as Confluent clients do, and never shows them', async () => {
    // The secret has characters that a URL must percent-encode.
    fake.authorization = `Basic ${Buffer.from('key:p@ss:w/rd').toString('base64')}`
    const url = fake.url.replace('http://', `http://key:${encodeURIComponent('p@ss:w/rd')}@`)
    const registry = confluentSchemaRegistry({ url })
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    expect((await parseThrough(avroParse({ registry }), [payload])).outcomes).toEqual([
      { id: 'a', quantity: 1 },
    ])
    const missing = Buffer.concat([Buffer.of(0, 0, 0, 0, 99), payload.subarray(5)])
    const { outcomes } = await parseThrough(avroParse({ registry }), [missing])
    expect(outcomes).toEqual([
      `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema 99 of the Confluent Schema Registry at ${fake.url}: GET /schemas/ids/99 answered HTTP 404: Schema not found (error 40403)`,
    ])
    expect(() =>
      confluentSchemaRegistry({ url, auth: { username: 'key', password: 'other' } }),
    ).toThrow(
      '@shardwise/avro-parse: confluentSchemaRegistry(): give the credentials in the url or as auth, not both',
    )
  })

  it('reads schemas that refer to named types in other subjects', async () => {
    const customerId = (
      await producer.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(customer) },
        { subject: 'customer' },
      )
    ).id
    const withCustomer = {
      type: 'record',
      name: 'OrderWithCustomer',
      namespace: 'com.acme',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'customer', type: 'com.acme.Customer' },
      ],
    }
    const { id } = await producer.register(
      {
        type: SchemaType.AVRO,
        schema: JSON.stringify(withCustomer),
        references: [{ name: 'com.acme.Customer', subject: 'customer', version: 1 }],
      },
      { subject: 'orders-with-customer' },
    )
    expect(id).not.toBe(customerId)
    // Version 2 of the subject uses the same reference and adds a field with a default.
    const withCustomerV2 = {
      ...withCustomer,
      fields: [...withCustomer.fields, { name: 'note', type: 'string', default: '' }],
    }
    const { id: idV2 } = await producer.register(
      {
        type: SchemaType.AVRO,
        schema: JSON.stringify(withCustomerV2),
        references: [{ name: 'com.acme.Customer', subject: 'customer', version: 1 }],
      },
      { subject: 'orders-with-customer' },
    )
    const payloads = [
      await producer.encode(id, { id: 'a', customer: { name: 'Zoë' } }),
      await producer.encode(idV2, { id: 'b', customer: { name: 'Jo' }, note: 'gift' }),
    ]
    fake.versionRequests.length = 0 // kafkajs reads the reference to register and encode
    const registry = confluentSchemaRegistry({ url: fake.url })
    const { outcomes } = await parseThrough(avroParse({ registry }), payloads)
    expect(outcomes).toEqual([
      { id: 'a', customer: { name: 'Zoë' } },
      { id: 'b', customer: { name: 'Jo' }, note: 'gift' },
    ])
    // The two writer schemas share their reference: it is fetched once.
    expect(fake.versionRequests).toEqual(['/subjects/customer/versions/1'])

    // A reader schema stands alone: it defines the referenced type itself.
    const reader = {
      ...withCustomerV2,
      fields: [
        withCustomerV2.fields[0],
        { name: 'customer', type: customer },
        withCustomerV2.fields[2],
      ],
    }
    const resolved = await parseThrough(avroParse({ registry, readerSchema: reader }), payloads)
    expect(resolved.outcomes).toEqual([
      { id: 'a', customer: { name: 'Zoë' }, note: '' },
      { id: 'b', customer: { name: 'Jo' }, note: 'gift' },
    ])
    expect(fake.versionRequests).toHaveLength(1)
  })

  it('reads longs as BigInt with the long of typeOptions.registry, also with a readerSchema', async () => {
    const id = fake.put('meters-value', JSON.stringify(meterV1))
    const Meter = avro.Type.forSchema(meterV1 as avro.Schema, { registry: { long: bigIntLong } })
    const payload = Buffer.concat([
      Buffer.of(0, 0, 0, 0, id),
      Meter.toBuffer({ micros: 1234567890123456789n }),
    ])
    const registry = confluentSchemaRegistry({ url: fake.url })
    const typeOptions = { registry: { long: bigIntLong } }
    const plain = await parseThrough(avroParse({ registry, typeOptions }), [payload])
    expect(plain.outcomes).toEqual([{ micros: 1234567890123456789n }])
    const resolved = avroParse({ registry, readerSchema: meterV2, typeOptions })
    expect((await parseThrough(resolved, [payload])).outcomes).toEqual([
      { micros: 1234567890123456789n, unit: 'us' },
    ])
  })

  it('reads the datum in place after the header, and counts only its bytes in messages', async () => {
    // bytes and fixed values are read out of the payload, so they show where reading starts.
    const blob = {
      type: 'record',
      name: 'Blob',
      namespace: 'com.acme',
      fields: [
        { name: 'tag', type: { type: 'fixed', name: 'Tag', size: 2 } },
        { name: 'body', type: 'bytes' },
        { name: 'parts', type: { type: 'array', items: 'int' } },
      ],
    }
    const blobV2 = {
      ...blob,
      fields: [...blob.fields, { name: 'note', type: 'string', default: '' }],
    }
    const id = fake.put('blob-value', JSON.stringify(blob))
    const value = { tag: Buffer.from('ab'), body: Buffer.from('payload'), parts: [1, 2, 3] }
    const datum = avro.Type.forSchema(blob as avro.Schema).toBuffer(value)
    const header = Buffer.of(0, 0, 0, 0, id)
    const hostile = Buffer.concat([
      Buffer.from('ab'),
      Buffer.of(0),
      avro.Type.forSchema('long').toBuffer(50_000_000),
    ])
    const payloads = [
      Buffer.concat([header, datum]),
      Buffer.concat([header, datum.subarray(0, -2)]),
      Buffer.concat([header, datum, Buffer.of(7, 7)]),
      header,
      Buffer.concat([header, hostile]),
    ]
    const name = `schema ${id} of the Confluent Schema Registry at ${fake.url}`
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    const failures = [
      `${at(1)}: is not a valid Avro datum of ${name}: it ends early, after ${datum.length - 2} bytes`,
      `${at(2)}: has 2 trailing bytes after the Avro datum of ${name}`,
      `${at(3)}: is not a valid Avro datum of ${name}: it ends early, after 0 bytes`,
      `${at(4)}: is not a valid Avro datum of ${name}: a block claims 50000000 items, more than a datum of ${hostile.length} bytes can hold`,
    ]
    const registry = confluentSchemaRegistry({ url: fake.url })
    const plain = avroParse({ registry })
    const resolved = avroParse({ registry, readerSchema: blobV2 })
    // The first batch waits for the look-up, the second decodes with the schema it has.
    for (const batch of [1, 2]) {
      expect((await parseThrough(plain, payloads)).outcomes, `batch ${batch}`).toEqual([
        value,
        ...failures,
      ])
      expect((await parseThrough(resolved, payloads)).outcomes, `batch ${batch}`).toEqual([
        { ...value, note: '' },
        ...failures,
      ])
    }
    expect(fake.idRequests).toEqual([`/schemas/ids/${id}`])
  })

  it('fails bad framing, a schema that is not Avro, and an unknown id alone', async () => {
    const protobufId = fake.put('proto-value', 'syntax = "proto3"; message M { string a = 1; }', {
      schemaType: 'PROTOBUF',
    })
    const good = await producer.encode(v1, { id: 'a', quantity: 1 })
    const framed = (id: number) => Buffer.concat([Buffer.of(0, 0, 0, 0, id), good.subarray(5)])
    const payloads = [
      good,
      Buffer.of(0, 0, 0),
      Buffer.from('{"id":"a"}'),
      framed(protobufId),
      framed(99),
      good,
    ]
    const parse = avroParse({ registry: confluentSchemaRegistry({ url: fake.url }) })
    const { outcomes, errors } = await parseThrough(parse, payloads)
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1 },
      `${at(1)}: is too short for the Confluent wire format: 3 bytes, where the header alone takes 5`,
      `${at(2)}: is not in the Confluent wire format: it starts with byte 0x7b, not the magic byte 0x00`,
      `${at(3)}: cannot get schema ${protobufId} of the Confluent Schema Registry at ${fake.url}: it is a PROTOBUF schema, not Avro`,
      `${at(4)}: cannot get schema 99 of the Confluent Schema Registry at ${fake.url}: GET /schemas/ids/99 answered HTTP 404: Schema not found (error 40403)`,
      { id: 'a', quantity: 1 },
    ])
    expect(errors.get(1)).toBeInstanceOf(ParseError)
    expect(errors.get(2)).toBeInstanceOf(ParseError)
    expect(errors.get(3)?.retryable).toBe(false)
    expect(errors.get(4)?.retryable).toBe(false)
  })

  it('refuses wrong options when built', () => {
    expect(() => confluentSchemaRegistry({} as never)).toThrow(
      "@shardwise/avro-parse: confluentSchemaRegistry(): Missing required option 'url'",
    )
    expect(() => confluentSchemaRegistry({ url: 'registry:8081' })).toThrow(/url/)
    expect(() => confluentSchemaRegistry({ url: 'http://' })).toThrow(
      "@shardwise/avro-parse: confluentSchemaRegistry(): Option 'url' must be a URL",
    )
    expect(() =>
      confluentSchemaRegistry({ url: fake.url, auth: { username: 'x' } } as never),
    ).toThrow(/password/)
    expect(() => confluentSchemaRegistry({ url: fake.url, timeout: 0 })).toThrow(/timeout/)
    // Past 2^31 - 1 ms Node runs the timer after 1 ms: every look-up would time out at once.
    expect(() => confluentSchemaRegistry({ url: fake.url, timeout: 2 ** 31 })).toThrow(
      "@shardwise/avro-parse: confluentSchemaRegistry(): Option 'timeout' must be <= 2147483647",
    )
    expect(() => glueSchemaRegistry({ timeout: 2 ** 31 })).toThrow(
      "@shardwise/avro-parse: glueSchemaRegistry(): Option 'timeout' must be <= 2147483647",
    )
    // fetch would refuse them on every request, failing every record for a typo.
    const allowed = 'has a name or value that HTTP does not allow'
    expect(() => confluentSchemaRegistry({ url: fake.url, headers: { 'x api key': 'k' } })).toThrow(
      `@shardwise/avro-parse: confluentSchemaRegistry(): Option 'headers' cannot be sent: header "x api key" ${allowed}`,
    )
    const badToken = () =>
      confluentSchemaRegistry({ url: fake.url, headers: { authorization: 'Bearer s3cr3t\nX' } })
    expect(badToken).toThrow(`header "authorization" ${allowed}`)
    expect(badToken).not.toThrow(/s3cr3t/)
  })
})

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
