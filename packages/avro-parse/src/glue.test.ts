/**
 * Glue framing end to end: payloads encoded by @meinestadt.de/glue-schema-registry, writer schemas
 * looked up by a real GlueClient, both pointed at a local endpoint that answers GetSchemaVersion
 * in the AWS JSON 1.1 protocol.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { deflateSync, inflateSync } from 'node:zlib'
import { GlueClient } from '@aws-sdk/client-glue'
import { GlueSchemaRegistry as MeinestadtGlueRegistry } from '@meinestadt.de/glue-schema-registry'
import { DecodeError, ParseError } from '@shardwise/core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { localServer, orderV1, orderV2, parseThrough } from './events.testkit.js'
import { avroParse, type FrameBatch, glueSchemaRegistry, SchemaRegistryError } from './index.js'

/** Glue's GetSchemaVersion and nothing else, as the AWS SDK speaks it. */
class FakeGlue {
  readonly versions = new Map<string, { definition: string; format: string }>()
  /** SchemaVersionId of every GetSchemaVersion, in order. */
  readonly lookUps: string[] = []
  outage: 'throttle' | 'reset' | undefined
  /** Called as each GetSchemaVersion arrives, while the parser waits for the answer. */
  whileLookingUp: (() => void | Promise<void>) | undefined
  /** When set, GetSchemaVersion answers with this status and body, as a proxy might. */
  page: { status: number; type: string; body: string } | undefined
  delay = 0
  url = ''
  stop: () => Promise<void> = async () => {}

  async start() {
    const server = await localServer((request, body, response) =>
      this.handle(request, body, response),
    )
    this.url = server.url
    this.stop = server.stop
  }

  /** A schema version; a string is stored as it is, as Glue stores what it was given. */
  add(definition: object | string, format = 'AVRO'): string {
    const id = randomUUID()
    const text = typeof definition === 'string' ? definition : JSON.stringify(definition)
    this.versions.set(id, { definition: text, format })
    return id
  }

  private async handle(request: IncomingMessage, text: string, response: ServerResponse) {
    const send = (status: number, body: unknown) =>
      response
        .writeHead(status, { 'content-type': 'application/x-amz-json-1.1' })
        .end(JSON.stringify(body))
    if (request.headers['x-amz-target'] !== 'AWSGlue.GetSchemaVersion') {
      return send(400, {
        __type: 'UnknownOperationException',
        message: String(request.headers['x-amz-target']),
      })
    }
    if (
      !String(request.headers.authorization).startsWith('AWS4-HMAC-SHA256 Credential=AKIDLOCAL/')
    ) {
      return send(403, { __type: 'AccessDeniedException', Message: 'unsigned request' })
    }
    const { SchemaVersionId } = JSON.parse(text) as { SchemaVersionId: string }
    this.lookUps.push(SchemaVersionId)
    await this.whileLookingUp?.()
    if (this.delay > 0) await new Promise((resolve) => setTimeout(resolve, this.delay))
    if (this.outage === 'reset') return void request.socket.destroy()
    if (this.page !== undefined) {
      const { status, type, body: page } = this.page
      return void response.writeHead(status, { 'content-type': type }).end(page)
    }
    if (this.outage === 'throttle') {
      return send(400, { __type: 'ThrottlingException', Message: 'Rate exceeded' })
    }
    const version = this.versions.get(SchemaVersionId)
    if (!version) {
      return send(400, {
        __type: 'EntityNotFoundException',
        Message: 'Schema version is not found.',
      })
    }
    send(200, {
      SchemaVersionId,
      SchemaDefinition: version.definition,
      DataFormat: version.format,
      SchemaArn: 'arn:aws:glue:eu-west-1:123456789012:schema/registry/orders',
      VersionNumber: 1,
      Status: 'AVAILABLE',
      CreatedTime: '2026-11-25T10:00:00.000Z',
    })
  }
}

const fake = new FakeGlue()
const credentials = { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret' }
const config = { endpoint: '', region: 'eu-west-1', credentials, maxAttempts: 1 }
let producer: MeinestadtGlueRegistry
let client: GlueClient
let v1: string
let v2: string

beforeAll(async () => {
  await fake.start()
  config.endpoint = fake.url
  producer = new MeinestadtGlueRegistry('orders', config)
  client = new GlueClient(config)
  v1 = fake.add(orderV1)
  v2 = fake.add(orderV2)
})

afterAll(() => fake.stop())

beforeEach(() => {
  fake.outage = undefined
  fake.page = undefined
  fake.whileLookingUp = undefined
  fake.delay = 0
  fake.lookUps.length = 0
})

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('glueSchemaRegistry', () => {
  it('decodes payloads the Glue serde encoded, compressed or not, each with its writer schema', async () => {
    const payloads = [
      await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: false }),
      await producer.encode(v2, { id: 'b', quantity: 2, currency: 'USD' }, { compress: true }),
    ]
    expect(payloads.map((payload) => payload[1])).toEqual([0, 5])
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { outcomes, response } = await parseThrough(parse, payloads)
    expect(response).toEqual({ batchItemFailures: [] })
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1 },
      { id: 'b', quantity: 2, currency: 'USD' },
    ])
  })

  it("reads the frame as the AWS Java serde's SerializationDataEncoder writes it", async () => {
    // Header version 3, compression byte 0 or 5, then the UUID as Java's ByteBuffer puts it:
    // getMostSignificantBits() then getLeastSignificantBits(), each big-endian; a body that
    // java.util.zip.Deflater compressed with its defaults is a zlib stream (0x78 0x9c).
    const id = 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'
    fake.versions.set(id, { definition: JSON.stringify(orderV1), format: 'AVRO' })
    const uuid = Buffer.alloc(16)
    uuid.writeBigUInt64BE(0xf81d4fae7dec11d0n, 0)
    uuid.writeBigUInt64BE(0xa76500a0c91e6bf6n, 8)
    const datum = Buffer.from([0x02, 0x61, 0x54]) // { id: 'a', quantity: 42 }
    const deflated = deflateSync(datum)
    expect(deflated.subarray(0, 2)).toEqual(Buffer.of(0x78, 0x9c))
    const payloads = [
      Buffer.concat([Buffer.of(3, 0), uuid, datum]),
      Buffer.concat([Buffer.of(3, 5), uuid, deflated]),
    ]
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { outcomes } = await parseThrough(parse, payloads)
    expect(outcomes).toEqual([
      { id: 'a', quantity: 42 },
      { id: 'a', quantity: 42 },
    ])
    expect(fake.lookUps).toEqual([id])
  })

  it('resolves every writer version to the readerSchema', async () => {
    const payloads = [
      await producer.encode(v1, { id: 'a', quantity: 1 }),
      await producer.encode(v2, { id: 'b', quantity: 2, currency: 'USD' }),
    ]
    const parse = avroParse({ registry: glueSchemaRegistry({ client }), readerSchema: orderV2 })
    const { outcomes } = await parseThrough(parse, payloads)
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1, currency: 'EUR' },
      { id: 'b', quantity: 2, currency: 'USD' },
    ])
  })

  it('asks Glue once per schema version, concurrent look-ups included', async () => {
    fake.delay = 30
    const registry = glueSchemaRegistry({ client })
    const payloads = []
    for (let n = 0; n < 40; n++)
      payloads.push(await producer.encode(n % 2 ? v1 : v2, { id: `o${n}`, quantity: n }))
    await Promise.all([
      parseThrough(avroParse({ registry }), payloads),
      parseThrough(avroParse({ registry, readerSchema: orderV1 }), payloads),
    ])
    const again = await parseThrough(avroParse({ registry }), payloads)
    expect(again.errors.size).toBe(0)
    expect(fake.lookUps.sort()).toEqual([v1, v2].sort())
  })

  it('fails only the records whose schema Glue cannot give, and asks again next time', async () => {
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const known = await producer.encode(v1, { id: 'known', quantity: 1 })
    await parseThrough(parse, [known])
    const unknown = await producer.encode(v2, { id: 'new', quantity: 2 })

    for (const outage of ['throttle', 'reset'] as const) {
      fake.outage = outage
      const { outcomes, errors } = await parseThrough(parse, [known, unknown, known])
      expect(outcomes[0]).toEqual({ id: 'known', quantity: 1 })
      expect(outcomes[2]).toEqual({ id: 'known', quantity: 1 })
      expect(errors.get(1)).toBeInstanceOf(SchemaRegistryError)
      expect(errors.get(1)?.retryable).toBe(true)
      expect(errors.get(1)?.message).toContain(
        `record 101 of shardId-000000000001 (partition key "order-1"): cannot get schema version ${v2} of the AWS Glue Schema Registry: `,
      )
      if (outage === 'throttle') {
        expect(errors.get(1)?.message).toMatch(
          /: GetSchemaVersion answered HTTP 400: ThrottlingException: Rate exceeded$/,
        )
      }
    }

    fake.outage = undefined
    const recovered = await parseThrough(parse, [unknown])
    expect(recovered.outcomes).toEqual([{ id: 'new', quantity: 2, currency: 'EUR' }])
  })

  it('says what Glue or a proxy in front of it answered, and keeps the records for a retry', async () => {
    const json = 'application/x-amz-json-1.1'
    const pages = [
      { status: 200, type: 'text/html', body: '<html>Sign in</html>' },
      { status: 502, type: 'text/html', body: '<h1>502 Bad Gateway</h1>' },
      { status: 503, type: 'text/plain', body: '' },
      {
        status: 400,
        type: json,
        body: '{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/consumer is not authorized to perform: glue:GetSchemaVersion"}',
      },
      {
        status: 500,
        type: json,
        body: '{"__type":"InternalServiceException","Message":"Internal service error"}',
      },
    ]
    const answers = [
      'answered HTTP 200 with a body that is not JSON',
      'answered HTTP 502 with a body that is not JSON',
      'answered HTTP 503 with no error in its body',
      'answered HTTP 400: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/consumer is not authorized to perform: glue:GetSchemaVersion',
      'answered HTTP 500: InternalServiceException: Internal service error',
    ]
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    for (const [n, page] of pages.entries()) {
      fake.page = page
      const { errors, response } = await parseThrough(parse, [payload])
      expect(response, page.body).toEqual({ batchItemFailures: [{ itemIdentifier: '100' }] })
      expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
      expect(errors.get(0)?.retryable).toBe(true)
      expect(errors.get(0)?.message).toBe(
        `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema version ${v1} of the AWS Glue Schema Registry: GetSchemaVersion ${answers[n]}`,
      )
    }
    fake.page = undefined
    fake.whileLookingUp = undefined
    expect((await parseThrough(parse, [payload])).outcomes).toEqual([{ id: 'a', quantity: 1 }])

    const gone = new FakeGlue()
    await gone.start()
    await gone.stop()
    const unreachable = new GlueClient({ ...config, endpoint: gone.url })
    const refused = await parseThrough(
      avroParse({ registry: glueSchemaRegistry({ client: unreachable }) }),
      [payload],
    )
    expect(refused.errors.get(0)?.retryable).toBe(true)
    expect(refused.errors.get(0)?.message).toBe(
      `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema version ${v1} of the AWS Glue Schema Registry: GetSchemaVersion failed: connect ECONNREFUSED ${gone.url.slice('http://'.length)}`,
    )
  })

  it('fails the records when Glue does not answer in time, as from a VPC without a route to it', async () => {
    // Glue would answer after 10 s: an answer well before that is the timeout's.
    fake.delay = 10_000
    // The SDK's retries are inside the timeout too.
    const retrying = new GlueClient({ ...config, maxAttempts: 3 })
    const parse = avroParse({ registry: glueSchemaRegistry({ client: retrying, timeout: 2000 }) })
    const known = await producer.encode(v1, { id: 'a', quantity: 1 })
    const started = Date.now()
    const { errors, response } = await parseThrough(parse, [known])
    expect(Date.now() - started).toBeLessThan(8_000)
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '100' }] })
    expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
    expect(errors.get(0)?.retryable).toBe(true)
    expect(errors.get(0)?.message).toBe(
      `record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema version ${v1} of the AWS Glue Schema Registry: GetSchemaVersion got no answer within 2000 ms (the timeout option)`,
    )
    fake.delay = 0
    expect((await parseThrough(parse, [known])).outcomes).toEqual([{ id: 'a', quantity: 1 }])
  })

  it('fails bad headers, bad zlib, unknown and non-Avro schema versions alone', async () => {
    const good = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: false })
    const header = (version: number, compression: number, id = v1) =>
      Buffer.concat([Buffer.of(version, compression), Buffer.from(id.replaceAll('-', ''), 'hex')])
    const datum = good.subarray(18)
    const jsonId = fake.add({ type: 'object' }, 'JSON')
    const missing = randomUUID()
    const payloads = [
      good,
      good.subarray(0, 10),
      Buffer.concat([header(2, 0), datum]),
      Buffer.concat([header(3, 1), datum]),
      Buffer.concat([header(3, 5), Buffer.from('not zlib')]),
      Buffer.concat([header(3, 5), deflateSync(Buffer.concat([datum, Buffer.of(7)]))]),
      Buffer.concat([header(3, 0, jsonId), datum]),
      Buffer.concat([header(3, 0, missing), datum]),
      good,
    ]
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { outcomes, errors } = await parseThrough(parse, payloads)
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1 },
      `${at(1)}: is too short for the Glue Schema Registry wire format: 10 bytes, where the header alone takes 18`,
      `${at(2)}: is not in the Glue Schema Registry wire format: it starts with byte 0x02, not the header version 0x03`,
      `${at(3)}: has compression byte 0x01 in its Glue Schema Registry header; only 0x00 (none) and 0x05 (zlib) exist`,
      expect.stringMatching(
        new RegExp(`^${escapeRegExp(at(4))}: has a zlib-compressed body that does not inflate: `),
      ),
      `${at(5)}: has 1 trailing byte after the Avro datum of schema version ${v1} of the AWS Glue Schema Registry`,
      `${at(6)}: cannot get schema version ${jsonId} of the AWS Glue Schema Registry: it is a JSON schema, not Avro`,
      `${at(7)}: cannot get schema version ${missing} of the AWS Glue Schema Registry: GetSchemaVersion answered HTTP 400: EntityNotFoundException: Schema version is not found.`,
      { id: 'a', quantity: 1 },
    ])
    for (const n of [1, 2, 3, 4, 5]) expect(errors.get(n)).toBeInstanceOf(ParseError)
    expect(errors.get(6)?.retryable).toBe(false)
    expect(errors.get(7)?.retryable).toBe(true)
  })

  it('fails for good a record whose schema version is not JSON', async () => {
    const broken = fake.add('{"type": "record", name: Order}')
    const good = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: false })
    const framed = Buffer.concat([
      good.subarray(0, 2),
      Buffer.from(broken.replaceAll('-', ''), 'hex'),
      good.subarray(18),
    ])
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { errors } = await parseThrough(parse, [framed])
    expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
    expect(errors.get(0)?.retryable).toBe(false)
    expect(errors.get(0)?.message).toMatch(
      new RegExp(
        `^${escapeRegExp(`record 100 of shardId-000000000001 (partition key "order-0"): cannot get schema version ${broken} of the AWS Glue Schema Registry: its SchemaDefinition is not JSON: `)}`,
      ),
    )
  })

  it('fails alone a compressed datum that inflates past 64 MiB', async () => {
    const good = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: true })
    // 64 KiB of zlib that inflates to 64 MiB and one byte: a bomb, or a datum too big to read.
    const bomb = deflateSync(Buffer.alloc(64 * 1024 * 1024 + 1), { level: 9 })
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { outcomes, errors } = await parseThrough(parse, [
      good,
      Buffer.concat([good.subarray(0, 18), bomb]),
      good,
    ])
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1 },
      'record 101 of shardId-000000000001 (partition key "order-1"): has a zlib-compressed body that inflates to more than 64 MiB, the most a datum may take',
      { id: 'a', quantity: 1 },
    ])
    expect(errors.get(1)).toBeInstanceOf(ParseError)
  })

  it('stops a batch of zlib datums at maxBatchInflatedBytes: the records past it fail alone, retryable', async () => {
    const order = { id: 'x'.repeat(1000), quantity: 1 }
    const payload = await producer.encode(v1, order, { compress: true })
    const inflated = inflateSync(payload.subarray(18)).length
    const limit = 2 * inflated + Math.floor(inflated / 2)
    const parse = avroParse({
      registry: glueSchemaRegistry({ client, maxBatchInflatedBytes: limit }),
    })
    const { outcomes, errors, response } = await parseThrough(parse, [
      payload,
      payload,
      payload,
      payload,
    ])
    const refused = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}"): its zlib-compressed Glue datum does not fit in what is left of maxBatchInflatedBytes (${limit}), the most one invocation inflates; Lambda delivers it again, in a later invocation with a fresh budget`
    expect(outcomes).toEqual([order, order, refused(2), refused(3)])
    expect(errors.get(2)).toBeInstanceOf(DecodeError)
    expect(errors.get(2)?.retryable).toBe(true)
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '102' }] })
    // Lambda delivers from record 2 again, in a batch of its own budget.
    expect((await parseThrough(parse, [payload, payload])).outcomes).toEqual([order, order])
  })

  it('fails for good, naming it, a datum that alone inflates past maxBatchInflatedBytes', async () => {
    const order = { id: 'x'.repeat(1000), quantity: 1 }
    const big = await producer.encode(v1, order, { compress: true })
    const small = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: false })
    const limit = inflateSync(big.subarray(18)).length - 1
    const parse = avroParse({
      registry: glueSchemaRegistry({ client, maxBatchInflatedBytes: limit }),
    })
    // Once the schema is known, records decode before the record loop, which stops at the first.
    await parseThrough(parse, [small])
    const { outcomes, errors } = await parseThrough(parse, [big, small])
    expect(outcomes).toEqual([
      `record 100 of shardId-000000000001 (partition key "order-0"): its zlib-compressed Glue datum does not fit in what is left of maxBatchInflatedBytes (${limit}), the most one invocation inflates; its Kinesis record alone inflates to more than that, so no invocation can inflate it`,
      { id: 'a', quantity: 1 },
    ])
    expect(errors.get(0)).toBeInstanceOf(DecodeError)
    expect(errors.get(0)?.retryable).toBe(false)
  })

  it('charges a datum that does not inflate what its bytes could produce, not the 64 MiB limit', async () => {
    const good = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: true })
    // A zlib header and a block of the reserved type: 3 bytes, at most 3096 inflated.
    const corrupt = Buffer.concat([good.subarray(0, 18), Buffer.of(0x78, 0x9c, 0xff)])
    const payloads = [...Array.from({ length: 16 }, () => corrupt), good]
    const parse = avroParse({
      registry: glueSchemaRegistry({ client, maxBatchInflatedBytes: 64 * 1024 }),
    })
    await parseThrough(parse, [good])
    const { outcomes } = await parseThrough(parse, payloads)
    expect(outcomes.slice(0, 16)).toEqual(
      Array.from({ length: 16 }, (_, n) =>
        expect.stringMatching(
          new RegExp(
            `^record ${100 + n} .*: has a zlib-compressed body that does not inflate: invalid block type$`,
          ),
        ),
      ),
    )
    expect(outcomes[16]).toEqual({ id: 'a', quantity: 1 })
  })

  it('reads a waiting datum again after the look-up, charging the batch budget once', async () => {
    const order = { id: 'a', quantity: 1 }
    const payload = await producer.encode(v1, order, { compress: true })
    const inflatedLength = inflateSync(payload.subarray(18)).length
    fake.lookUps.length = 0 // the serde's own, as it encoded
    // Room for the three datums exactly: a read again charged to the same budget would not fit.
    const glue = glueSchemaRegistry({ client, maxBatchInflatedBytes: 3 * inflatedLength })
    let framesRead = 0
    const registry = {
      ...glue,
      readFrame(bytes: Buffer, batch: FrameBatch) {
        framesRead++
        return glue.readFrame(bytes, batch)
      },
    }
    const { outcomes } = await parseThrough(avroParse({ registry }), [payload, payload, payload])
    expect(fake.lookUps).toEqual([v1])
    expect(outcomes).toEqual([order, order, order])
    expect(framesRead).toBe(6)
  })

  it('reads a waiting datum again when Node pooled it with its payload, as Node 24 does', async () => {
    // Node hands out every buffer under half its pool size from one shared slab: under 32 KiB on
    // Node 24, zlib's 16 KiB output chunks included, so an inflated datum can share its payload's
    // ArrayBuffer (on Node 22, under 4 KiB). A fresh slab of 256 KiB, half of it taken, holds the
    // payloads and the chunks here on either: the old slab (8 or 64 KiB) cannot hold 128 KiB.
    const order = { id: 'a', quantity: 1 }
    const payload = await producer.encode(v1, order, { compress: true })
    fake.lookUps.length = 0
    const glue = glueSchemaRegistry({ client })
    let framesRead = 0
    let pooledWithPayload = 0
    const registry = {
      ...glue,
      readFrame(bytes: Buffer, batch: FrameBatch) {
        framesRead++
        const frame = glue.readFrame(bytes, batch)
        if (typeof frame === 'object' && 'bytes' in frame && frame.bytes.buffer === bytes.buffer)
          pooledWithPayload++
        return frame
      },
    }
    const poolSize = Buffer.poolSize
    try {
      Buffer.poolSize = 256 * 1024
      Buffer.allocUnsafe(128 * 1024 - 8)
      const { outcomes } = await parseThrough(avroParse({ registry }), [payload, payload])
      expect(outcomes).toEqual([order, order])
    } finally {
      Buffer.poolSize = poolSize
    }
    expect(pooledWithPayload).toBeGreaterThan(0)
    // Each datum is read, dropped while its record waits, and read again after the look-up.
    expect(framesRead).toBe(4)
  })

  it('holds no inflated datum while the records wait for their schema', async () => {
    // Each 8 KiB of zlib inflates to 8 MiB: 24 of them waiting would hold 192 MiB, and a batch
    // of real bombs (64 KiB to 64 MiB each, 90 in a 6 MB event) would take the function down.
    const inflated = 8 * 1024 * 1024
    const datum = Buffer.concat([Buffer.from([0x02, 0x61]), Buffer.alloc(inflated - 2)])
    const body = deflateSync(datum, { level: 9 })
    const unknown = randomUUID()
    const header = Buffer.concat([Buffer.of(3, 5), Buffer.from(unknown.replaceAll('-', ''), 'hex')])
    const payloads = Array.from({ length: 24 }, () => Buffer.concat([header, body]))
    const gc = collector()
    const before = await arrayBuffersHeld(gc)
    let during = 0
    fake.whileLookingUp = async () => {
      during = (await arrayBuffersHeld(gc)) - before
    }
    const parse = avroParse({ registry: glueSchemaRegistry({ client }) })
    const { errors } = await parseThrough(parse, payloads)
    expect(errors.get(23)?.message).toMatch(/Schema version is not found\.$/)
    expect(during).toBeLessThan(2 * inflated)
  })

  it('reads an uncompressed datum in place after the header, and counts only its bytes', async () => {
    const good = await producer.encode(v1, { id: 'a', quantity: 1 }, { compress: false })
    const datumLength = good.length - 18
    const payloads = [
      good,
      good.subarray(0, -1),
      Buffer.concat([good, Buffer.of(7, 7)]),
      good.subarray(0, 18),
    ]
    const name = `schema version ${v1} of the AWS Glue Schema Registry`
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    const failures = [
      `${at(1)}: is not a valid Avro datum of ${name}: it ends early, after ${datumLength - 1} bytes`,
      `${at(2)}: has 2 trailing bytes after the Avro datum of ${name}`,
      `${at(3)}: is not a valid Avro datum of ${name}: it ends early, after 0 bytes`,
    ]
    const parse = avroParse({ registry: glueSchemaRegistry({ client }), readerSchema: orderV2 })
    // The first batch waits for the look-up, the second decodes with the schema it has.
    for (const batch of [1, 2]) {
      expect((await parseThrough(parse, payloads)).outcomes, `batch ${batch}`).toEqual([
        { id: 'a', quantity: 1, currency: 'EUR' },
        ...failures,
      ])
    }
    expect(fake.lookUps).toEqual([v1])
  })

  it('builds a GlueClient from the environment when given none', async () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1')
    vi.stubEnv('AWS_ACCESS_KEY_ID', credentials.accessKeyId)
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', credentials.secretAccessKey)
    vi.stubEnv('AWS_ENDPOINT_URL_GLUE', fake.url)
    const payload = await producer.encode(v1, { id: 'a', quantity: 1 })
    const { outcomes } = await parseThrough(avroParse({ registry: glueSchemaRegistry() }), [
      payload,
    ])
    expect(outcomes).toEqual([{ id: 'a', quantity: 1 }])
    expect(fake.lookUps).toEqual([v1])
  })

  it('refuses a client that is no GlueClient when built', () => {
    expect(() => glueSchemaRegistry({ client: {} as never })).toThrow(
      "@shardwise/avro-parse: glueSchemaRegistry's client must be a GlueClient",
    )
    expect(() => glueSchemaRegistry({ client, timeout: 0 })).toThrow(/timeout/)
    expect(() => glueSchemaRegistry({ region: 'eu-west-1' } as never)).toThrow(
      /@shardwise\/avro-parse/,
    )
  })
})

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The bytes of array buffers still reachable. V8 frees a collected buffer's memory on a
 * background thread, so one reading right after a collection may still count garbage, the more
 * so on a busy machine: the least of a few readings, each after a collection and a turn of the
 * event loop, counts only what is held.
 */
async function arrayBuffersHeld(gc: () => void): Promise<number> {
  let least = Number.POSITIVE_INFINITY
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 10))
    least = Math.min(least, process.memoryUsage().arrayBuffers)
  }
  return least
}

/** V8's garbage collector, to measure what is still held rather than what is not yet freed. */
function collector(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
