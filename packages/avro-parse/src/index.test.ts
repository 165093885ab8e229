import middy from '@middy/core'
import {
  ConfigurationError,
  type Context,
  DecodeError,
  getBatch,
  ParseError,
  type PoisonSink,
  RecordStatus,
} from '@shardwise/core'
import { DEFER_FROM, kinesisDecode } from '@shardwise/kinesis-decode'
import { type BatchHandler, eachRecord, partialFailures } from '@shardwise/partial-failures'
import { hostileThrownValues } from '@shardwise/test-internals'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import avro from 'avsc'
import { describe, expect, it, vi } from 'vitest'
import {
  bigIntLong,
  meterV1,
  meterV2,
  orderV1,
  parseThrough,
  shardEvent,
} from './events.testkit.js'
import {
  type AvroParser,
  avroParse,
  FinalAnswerError,
  type Frame,
  glueSchemaRegistry,
  type SchemaId,
  type SchemaRegistry,
  SchemaRegistryError,
} from './index.js'

/**
 * CPU time this process spent, in ms: what "at once" means for a parse that does no I/O. Wall
 * time also counts the seconds a busy machine gives to other processes (1.5 s seen at a load
 * average of 40 for parses that take milliseconds); CPU time does not, while avsc reading a
 * hostile count still spends seconds of it (2.1 and 4.8 s with the bound taken out; 57 ms at most
 * with it, at a load average of 30).
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

const withStatus = {
  ...orderV1,
  fields: [
    ...orderV1.fields,
    { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID'] } },
  ],
}
const OrderV1 = avro.Type.forSchema(withStatus as avro.Schema)

// v2 adds a field with a default: a reader of v2 can read v1 data, and a reader of v1 can read
// v2 data, skipping the field it does not know.
const OrderV2 = avro.Type.forSchema({
  ...withStatus,
  fields: [...withStatus.fields, { name: 'currency', type: 'string', default: 'EUR' }],
} as avro.Schema)

// A readerSchema without tags and scores makes avsc skip those fields instead of reading them.
const Tagged = avro.Type.forSchema({
  type: 'record',
  name: 'Tagged',
  fields: [
    { name: 'tags', type: { type: 'array', items: 'null' } },
    { name: 'scores', type: { type: 'map', values: 'int' } },
    { name: 'id', type: 'string' },
  ],
})
const untagged = { type: 'record', name: 'Tagged', fields: [{ name: 'id', type: 'string' }] }

/** A datum written by hand: each number a long (a block count or size), each Buffer as it is. */
function datum(...parts: Array<number | Buffer>): Buffer {
  const long = avro.Type.forSchema('long')
  return Buffer.concat(parts.map((part) => (Buffer.isBuffer(part) ? part : long.toBuffer(part))))
}

/** Tagged datums: two valid, then hostile counts or sizes in tags or scores. */
const idA = Buffer.of(2, 0x61)
const taggedPayloads = [
  Tagged.toBuffer({ tags: [null, null], scores: { x: 1 }, id: 'a' }),
  // Blocks with a negative count carry their size in bytes: 2 nulls in 0 bytes, then "x" => 1.
  datum(-2, 0, 0, -1, 3, Buffer.of(2, 0x78, 2), 0, idA),
  datum(50_000_000, 0, 0, idA),
  datum(0, 50_000_000, idA),
  datum(-50_000_000, 0, 0, 0, idA),
  datum(-2, -1e15, 0, 0, idA),
]

describe('avroParse with an inline schema', () => {
  it('decodes each record with the schema', async () => {
    const orders = [
      { id: 'a', quantity: 1, status: 'NEW' },
      { id: 'b', quantity: 2, status: 'PAID' },
    ]
    const { response, handled } = await parseThrough(
      avroParse({ schema: OrderV1 }),
      orders.map((order) => OrderV1.toBuffer(order)),
    )
    expect(response).toEqual({ batchItemFailures: [] })
    expect(handled).toEqual(orders)
  })

  it('accepts the schema as JSON, and avsc type options', async () => {
    const schema = { type: 'long', logicalType: 'timestamp-millis' } as const
    class DateType extends avro.types.LogicalType {
      override _fromValue(value: number) {
        return new Date(value)
      }
      override _toValue(date: Date) {
        return date.getTime()
      }
    }
    const type = avro.Type.forSchema(schema, { logicalTypes: { 'timestamp-millis': DateType } })
    const when = new Date('2026-11-25T10:00:00Z')
    const parse = avroParse({
      schema,
      typeOptions: { logicalTypes: { 'timestamp-millis': DateType } },
    })
    const { handled } = await parseThrough(parse, [type.toBuffer(when)])
    expect(handled).toEqual([when])
  })

  it('reads longs as BigInt with the long of typeOptions.registry, also with a readerSchema', async () => {
    const registry = { long: bigIntLong }
    const Meter = avro.Type.forSchema(meterV1 as avro.Schema, { registry: { ...registry } })
    const payload = Meter.toBuffer({ micros: 1234567890123456789n })
    const plain = avroParse({ schema: meterV1, typeOptions: { registry } })
    expect((await parseThrough(plain, [payload])).outcomes).toEqual([
      { micros: 1234567890123456789n },
    ])
    const resolved = avroParse({
      schema: meterV1,
      readerSchema: meterV2,
      typeOptions: { registry },
    })
    expect((await parseThrough(resolved, [payload])).outcomes).toEqual([
      { micros: 1234567890123456789n, unit: 'us' },
    ])
    // Each schema was compiled into a copy, so the named types went there, not into yours.
    expect(registry).toEqual({ long: bigIntLong })
  })

  it('reads old data with a newer reader schema, and new data with an older one', async () => {
    const v1 = { id: 'a', quantity: 3, status: 'PAID' }
    const newer = await parseThrough(avroParse({ schema: OrderV1, readerSchema: OrderV2 }), [
      OrderV1.toBuffer(v1),
    ])
    expect(newer.handled).toEqual([{ ...v1, currency: 'EUR' }])

    const v2 = { id: 'b', quantity: 4, status: 'NEW', currency: 'USD' }
    const older = await parseThrough(avroParse({ schema: OrderV2, readerSchema: OrderV1 }), [
      OrderV2.toBuffer(v2),
    ])
    expect(older.handled).toEqual([{ id: 'b', quantity: 4, status: 'NEW' }])
  })

  it('fails a truncated datum, trailing bytes and a bad enum index alone, naming the record', async () => {
    const good = OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'NEW' })
    const payloads = [
      good,
      good.subarray(0, good.length - 2),
      Buffer.concat([good, Buffer.of(1, 2)]),
      Buffer.concat([good.subarray(0, good.length - 1), Buffer.of(0x0e)]),
      Buffer.alloc(0),
      good,
    ]
    const { outcomes, errors, response } = await parseThrough(
      avroParse({ schema: OrderV1 }),
      payloads,
    )
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '101' }] })
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    expect(outcomes).toEqual([
      { id: 'a', quantity: 1, status: 'NEW' },
      `${at(1)}: is not a valid Avro datum of the schema: it ends early, after ${good.length - 2} bytes`,
      `${at(2)}: has 2 trailing bytes after the Avro datum of the schema`,
      `${at(3)}: is not a valid Avro datum of the schema: invalid com.acme.Status enum index: 7`,
      `${at(4)}: is not a valid Avro datum of the schema: it ends early, after 0 bytes`,
      { id: 'a', quantity: 1, status: 'NEW' },
    ])
    for (const n of [1, 2, 3, 4]) {
      expect(errors.get(n)).toBeInstanceOf(ParseError)
      expect(errors.get(n)?.retryable).toBe(false)
    }
  })

  it('leaves records that failed earlier in the chain alone', async () => {
    const event = shardEvent([
      OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'NEW' }),
      Buffer.of(1),
    ])
    const second = event.Records[1]
    if (second) second.kinesis.data = '%%%'
    kinesisDecode().before?.({ event } as never)
    const batch = getBatch(event)
    if (batch === undefined) throw new Error('decoded')
    avroParse({ schema: OrderV1 }).before?.({ event } as never)
    expect(batch.records[0]?.data).toEqual({ id: 'a', quantity: 1, status: 'NEW' })
    expect(batch.errors.get(1)).toBeInstanceOf(DecodeError)
    expect(batch.status[1]).toBe(RecordStatus.Failed)
  })

  it('decodes a batch synchronously', () => {
    const event = shardEvent([OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'NEW' })])
    kinesisDecode().before?.({ event } as never)
    expect(avroParse({ schema: OrderV1 }).before?.({ event } as never)).toBeUndefined()
  })
})

describe('hostile arrays and maps', () => {
  const long = avro.Type.forSchema('long')

  it('fails a record whose block claims more items than its bytes can hold, at once', async () => {
    const Nulls = avro.Type.forSchema({ type: 'array', items: 'null' })
    const Strings = avro.Type.forSchema({ type: 'map', values: 'string' })
    const Nested = avro.Type.forSchema({ type: 'array', items: { type: 'array', items: 'null' } })
    // Five bytes claiming fifty million items; avsc alone spends seconds and gigabytes on each.
    const claim = long.toBuffer(50_000_000)
    // Many inner arrays each just under the allowance still exceed it together.
    const inner = Buffer.concat([long.toBuffer(900_000), Buffer.of(0)])
    const nested = Buffer.concat([long.toBuffer(3), inner, inner, inner, Buffer.of(0)])
    const started = cpuMs()
    const outcomes = await Promise.all([
      parseThrough(avroParse({ schema: Nulls.schema() }), [
        claim,
        Nulls.toBuffer(new Array(1000).fill(null)),
      ]),
      parseThrough(avroParse({ schema: Strings.schema() }), [claim]),
      parseThrough(avroParse({ schema: Nested.schema() }), [nested]),
    ])
    expect(cpuMs() - started).toBeLessThan(500)
    const [nulls, strings, nestedNulls] = outcomes
    expect(nulls?.errors.get(0)?.message).toMatch(
      /: is not a valid Avro datum of the schema: a block claims 50000000 items, more than a datum of 4 bytes can hold$/,
    )
    expect(nulls?.outcomes[1]).toHaveLength(1000)
    expect(strings?.errors.get(0)).toBeInstanceOf(ParseError)
    expect(nestedNulls?.errors.get(0)?.message).toMatch(/a block claims 900000 items/)
  })

  it('fails a hostile count or size in a field the readerSchema skips, at once, as when read', async () => {
    const started = cpuMs()
    const read = await parseThrough(avroParse({ schema: Tagged.schema() }), taggedPayloads)
    const skipped = await parseThrough(
      avroParse({ schema: Tagged.schema(), readerSchema: untagged }),
      taggedPayloads,
    )
    expect(cpuMs() - started).toBeLessThan(500)
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}"): is not a valid Avro datum of the schema`
    const tooMany = (n: number) =>
      `${at(n)}: a block claims 50000000 items, more than a datum of ${taggedPayloads[n]?.length} bytes can hold`
    const failures = [
      tooMany(2),
      tooMany(3),
      tooMany(4),
      `${at(5)}: a block gives its size as -1000000000000000 bytes`,
    ]
    const whole = { tags: [null, null], scores: { x: 1 }, id: 'a' }
    expect(skipped.outcomes).toEqual([{ id: 'a' }, { id: 'a' }, ...failures])
    expect(read.outcomes).toEqual([whole, whole, ...failures])
    for (const n of [2, 3, 4, 5]) expect(skipped.errors.get(n)).toBeInstanceOf(ParseError)
  })

  it('fails a datum with a "__proto__" map key alone, and touches no prototype', async () => {
    const Tags = avro.Type.forSchema({ type: 'map', values: { type: 'map', values: 'string' } })
    // Written by hand: avsc's encoder cannot see a "__proto__" key on a plain object either.
    const evil = Buffer.concat([
      Buffer.of(0x02, 0x12),
      Buffer.from('__proto__'),
      Buffer.of(0x02, 0x0c),
      Buffer.from('pollut'),
      Buffer.of(0x08),
      Buffer.from('true'),
      Buffer.of(0x00, 0x00),
    ])
    const parse = avroParse({ schema: Tags, readerSchema: Tags.schema() })
    const { outcomes, errors } = await parseThrough(parse, [Tags.toBuffer({ a: { b: 'c' } }), evil])
    expect(outcomes[0]).toEqual({ a: { b: 'c' } })
    expect(errors.get(1)).toBeInstanceOf(ParseError)
    expect(errors.get(1)?.message).toMatch(
      /: is not a valid Avro datum of the schema: it has a map key "__proto__", which a JavaScript object cannot hold as a key$/,
    )
    expect(({} as Record<string, unknown>).pollut).toBeUndefined()
  })

  it('lets "__proto__" through as a value, and as a key of a schema without maps', async () => {
    const Note = avro.Type.forSchema({
      type: 'record',
      name: 'Note',
      fields: [
        { name: 'text', type: 'string' },
        { name: 'tags', type: { type: 'map', values: 'string' } },
      ],
    })
    const value = { text: '__proto__', tags: { kind: '__proto__' } }
    const { outcomes } = await parseThrough(avroParse({ schema: Note.schema() }), [
      Note.toBuffer(value),
    ])
    expect({ ...(outcomes[0] as object) }).toEqual(value)
  })
})

describe('a registry of your own', () => {
  // Byte 0 names the writer schema; with byte 1 = 0 the datum follows as it is, with byte 1 = 1
  // it follows reversed (a stand-in for a compressed datum), so the frame gives a new buffer.
  const schemas: Record<number, object> = { 1: withStatus, 3: Tagged.schema() as object }
  const registry: SchemaRegistry = {
    readFrame(payload) {
      if (payload.length < 2) return `has ${payload.length} bytes, where the header alone takes 2`
      const id = payload[0] as number
      if (payload[1] === 0) return { id, bytes: payload, start: 2 }
      return { id, bytes: Buffer.from(payload.subarray(2)).reverse(), start: 0 }
    },
    async lookUp(id) {
      const definition = schemas[id as number]
      if (definition === undefined) throw new Error(`no schema ${id}`)
      return { definition, references: [] }
    },
    describe: (id) => `my schema ${id}`,
  }

  it.each(hostileThrownValues)(
    'fails the records whose look-up rejects with %s, naming them',
    async (_name, make) => {
      const datum = OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'PAID' })
      const parse = avroParse({
        registry: {
          ...registry,
          lookUp: async () => {
            throw make()
          },
        },
      })
      const { errors } = await parseThrough(parse, [Buffer.concat([Buffer.of(1, 0), datum])])
      expect(errors.get(0)).toBeInstanceOf(SchemaRegistryError)
      expect(errors.get(0)?.message).toMatch(
        /^record 100 of shardId-000000000001 \(partition key "order-0"\): cannot get my schema 1: ./,
      )
    },
  )

  it('answers before the deadline when a look-up never settles, with the records handled', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    try {
      // Schema 1 answers; schema 2's look-up never settles (a registry of your own, no timeout).
      const slow: SchemaRegistry = {
        ...registry,
        lookUp: (id) => (id === 2 ? new Promise(() => {}) : registry.lookUp(id)),
      }
      const handled: string[] = []
      const lambda = middy(
        eachRecord<unknown>((record) => void handled.push(record.sequenceNumber)),
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(avroParse({ registry: slow }))
        .use(partialFailures({ logger: false }))
      const datum = OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'PAID' })
      const one = Buffer.concat([Buffer.of(1, 0), datum])
      const two = Buffer.concat([Buffer.of(2, 0), datum])
      // The first batch learns schema 1; in the second, records 0 and 1 decode at once and
      // record 2 waits for its look-up at its turn, under the guard.
      await lambda(shardEvent([one]), lambdaContext(60_000))
      handled.length = 0
      let answer: unknown
      void lambda(shardEvent([one, one, two, one]), lambdaContext(1500)).then((a) => {
        answer = a
      })
      // The guard fires 1,000 ms before the deadline.
      await vi.advanceTimersByTimeAsync(500)
      expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: '102' }] })
      expect(handled).toEqual(['100', '101'])
    } finally {
      vi.useRealTimers()
    }
  })

  it('reads each datum where its frame says it starts', async () => {
    const datum = OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'PAID' })
    const payloads = [
      Buffer.concat([Buffer.of(1, 0), datum]),
      Buffer.concat([Buffer.of(1, 1), Buffer.from(datum).reverse()]),
      Buffer.concat([Buffer.of(1, 0), datum, Buffer.of(0)]),
      Buffer.concat([Buffer.of(1, 1), Buffer.from(datum.subarray(0, -1)).reverse()]),
      Buffer.of(1),
      Buffer.concat([Buffer.of(2, 0), datum]),
    ]
    const parse = avroParse({ registry, readerSchema: OrderV2 })
    const at = (n: number) =>
      `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
    const expected = { id: 'a', quantity: 1, status: 'PAID', currency: 'EUR' }
    // The first batch waits for the look-ups, the second decodes with the schema it has; there
    // record 5 waits for its look-up at its turn in the loop, which stops at record 2 before
    // it: never decoded, it keeps its bytes (Lambda sends it again).
    for (const batch of [1, 2]) {
      const { outcomes, errors } = await parseThrough(parse, payloads)
      expect(outcomes, `batch ${batch}`).toEqual([
        expected,
        expected,
        `${at(2)}: has 1 trailing byte after the Avro datum of my schema 1`,
        `${at(3)}: is not a valid Avro datum of my schema 1: it ends early, after ${datum.length - 1} bytes`,
        `${at(4)}: has 1 bytes, where the header alone takes 2`,
        batch === 1 ? `${at(5)}: cannot get my schema 2: no schema 2` : expect.any(Uint8Array),
      ])
      if (batch === 1) expect(errors.get(5)?.retryable).toBe(true)
    }
  })

  it("skips the fields the readerSchema drops within the bound of the registry's schema", async () => {
    const payloads = taggedPayloads.map((payload) => Buffer.concat([Buffer.of(3, 0), payload]))
    const started = cpuMs()
    const { outcomes, errors } = await parseThrough(
      avroParse({ registry, readerSchema: untagged }),
      payloads,
    )
    expect(cpuMs() - started).toBeLessThan(500)
    expect(outcomes.slice(0, 2)).toEqual([{ id: 'a' }, { id: 'a' }])
    expect(errors.get(2)?.message).toMatch(
      `: is not a valid Avro datum of my schema 3: a block claims 50000000 items, more than a datum of ${taggedPayloads[2]?.length} bytes can hold`,
    )
    expect(errors.get(3)?.message).toMatch('my schema 3: a block claims 50000000 items')
    expect(errors.get(4)?.message).toMatch('my schema 3: a block claims 50000000 items')
    expect(errors.get(5)?.message).toMatch(
      'my schema 3: a block gives its size as -1000000000000000',
    )
  })

  it('refuses a frame of another shape, naming what it got', async () => {
    const datum = Buffer.concat([
      Buffer.of(1, 0),
      OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'PAID' }),
    ])
    const frames: unknown[] = [
      { id: 1, datum: datum.subarray(2) },
      { id: 1, bytes: datum, start: datum.length + 1 },
      { id: 1, bytes: datum, start: -1 },
      { id: 1, bytes: new Uint8Array(datum), start: 2 },
    ]
    for (const frame of frames) {
      const parse = avroParse({ registry: { ...registry, readFrame: () => frame as Frame } })
      await expect(parseThrough(parse, [datum])).rejects.toThrow(
        /registry\.readFrame\(\) must return \{ id, bytes, start \}.*got \["id","(datum|bytes)"/,
      )
    }
    // Not an object at all: said so, where asking it for `refused` threw a TypeError.
    for (const [frame, got] of [
      [undefined, 'undefined'],
      [null, 'null'],
      [42, 'a number'],
    ] as const) {
      const parse = avroParse({ registry: { ...registry, readFrame: () => frame as never } })
      const invocation = parseThrough(parse, [datum])
      await expect(invocation).rejects.toThrow(ConfigurationError)
      await expect(invocation).rejects.toThrow(
        new RegExp(
          `registry\\.readFrame\\(\\) must return \\{ id, bytes, start \\}.*, got ${got}$`,
        ),
      )
    }
  })

  it.each(hostileThrownValues)(
    'fails alone, naming it, a record on which readFrame() throws %s',
    async (_name, make) => {
      const order = { id: 'a', quantity: 1, status: 'PAID' }
      const datum = Buffer.concat([Buffer.of(1, 0), OrderV1.toBuffer(order)])
      const parse = avroParse({
        registry: {
          ...registry,
          readFrame(payload, batch) {
            if (payload.length === 1) throw make()
            return registry.readFrame(payload, batch)
          },
        },
      })
      const { outcomes, errors, response, handled } = await parseThrough(parse, [
        datum,
        Buffer.of(1),
        datum,
      ])
      expect(errors.get(1)).toBeInstanceOf(SchemaRegistryError)
      expect(errors.get(1)?.retryable).toBe(true)
      expect(errors.get(1)?.message).toMatch(
        /^record 101 of shardId-000000000001 \(partition key "order-1"\): cannot read its frame: registry\.readFrame\(\) threw: ./,
      )
      expect(outcomes[0]).toEqual(order)
      expect(handled).toEqual([order])
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '101' }] })
    },
  )

  it('sends to the poison sink a record whose readFrame() threw an error that says retryable: false', async () => {
    const order = { id: 'a', quantity: 1, status: 'PAID' }
    const datum = Buffer.concat([Buffer.of(0, 0, 0, 0, 1), OrderV1.toBuffer(order)])
    // A registry of your own that reads a header a short payload does not have: Node throws.
    const careless: SchemaRegistry = {
      ...registry,
      readFrame(payload) {
        if (payload.length === 3) throw new FinalAnswerError('a frame cut short')
        return { id: payload.readUInt32BE(1), bytes: payload, start: 5 }
      },
    }
    const at = 'record 101 of shardId-000000000001 (partition key "order-1"): cannot read its frame'
    const short = await parseThrough(avroParse({ registry: careless }), [datum, Buffer.of(0, 0)])
    expect(short.outcomes[0]).toEqual(order)
    expect(short.errors.get(1)?.message).toMatch(`${at}: registry.readFrame() threw: `)
    expect(short.errors.get(1)?.cause).toBeInstanceOf(RangeError)
    expect(short.errors.get(1)?.retryable).toBe(true)

    const sunk: string[] = []
    const handled: unknown[] = []
    const parse = avroParse({ registry: careless })
    const lambda = middy(eachRecord(parse, (record) => void handled.push(record.data)))
      .use(kinesisDecode())
      .use(parse)
      .use(
        partialFailures({
          logger: false,
          onPoison: async (record, error) => {
            sunk.push(`${record.sequenceNumber}: ${error.message}`)
          },
        }),
      )
    const event = shardEvent([datum, Buffer.of(0, 0, 0), datum])
    expect(await lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(sunk).toEqual([`101: ${at}: registry.readFrame() threw: a frame cut short`])
    expect(handled).toEqual([order, order])
  })

  it('fails alone the records of a schema that cannot be looked up when describe() throws', async () => {
    const order = { id: 'a', quantity: 1, status: 'PAID' }
    const datum = OrderV1.toBuffer(order)
    const parse = avroParse({
      registry: {
        ...registry,
        describe() {
          throw new Error('no names here')
        },
      },
    })
    const payloads = [
      Buffer.concat([Buffer.of(1, 0), datum]),
      Buffer.concat([Buffer.of(2, 0), datum]),
    ]
    const { outcomes, response } = await parseThrough(parse, payloads)
    expect(outcomes).toEqual([
      order,
      'record 101 of shardId-000000000001 (partition key "order-1"): cannot get schema 2: no schema 2',
    ])
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: '101' }] })
  })

  it("stops the look-ups and frees the record loop when middy's timeoutEarlyInMillis answers first", async () => {
    // middy's early timeout runs on the real clock (it imports node:timers). 17 schemas, none
    // known: 16 look-ups start at once, the 17th when one of them settles; none settles before
    // middy answers, 50 ms in, and the guard is off (timeoutMarginMs 0).
    const asked: SchemaId[] = []
    const answers: Array<() => void> = []
    const held: SchemaRegistry = {
      ...registry,
      lookUp(id) {
        asked.push(id)
        return new Promise((resolve) => {
          answers.push(() => resolve({ definition: withStatus, references: [] }))
        })
      },
    }
    const parse = avroParse({ registry: held })
    const each = eachRecord(parse, () => {}, { timeoutMarginMs: 0 })
    let loopSettled = false
    const watched: BatchHandler = (event, context, options) =>
      each(event, context, options).finally(() => {
        loopSettled = true
      })
    const lambda = middy(watched, { timeoutEarlyInMillis: 1000 })
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const datum = OrderV1.toBuffer({ id: 'a', quantity: 1, status: 'PAID' })
    const payloads = Array.from({ length: 17 }, (_, n) =>
      Buffer.concat([Buffer.of(n + 1, 0), datum]),
    )
    const turns = async () => {
      for (let n = 0; n < 5; n++) await new Promise((resolve) => setImmediate(resolve))
    }
    // middy's own timeout answers: Lambda retries the whole batch.
    await expect(lambda(shardEvent(payloads), lambdaContext(1050))).rejects.toThrow(/aborted/)
    await turns()
    expect(asked).toHaveLength(16)
    // The loop is not left waiting for look-ups that may never settle, holding the batch.
    expect(loopSettled).toBe(true)
    // The look-ups in flight settle later: no other starts for a batch already answered.
    for (const answer of answers) answer()
    await turns()
    expect(asked).toHaveLength(16)
  })

  it("starts no record after one that failed when its look-up answered, in 'partitionKey' order", async () => {
    const order = { id: 'a', quantity: 1, status: 'PAID' }
    const datum = OrderV1.toBuffer(order)
    const good = Buffer.concat([Buffer.of(1, 0), datum])
    const cut = Buffer.concat([Buffer.of(1, 0), datum.subarray(0, -1)])
    // Records 100 and 101 share a key, so 101 has its turn once 100 is done; 102 has its own.
    const event = () =>
      kinesisEvent(
        [
          { data: good, partitionKey: 'a', sequenceNumber: '100' },
          { data: cut, partitionKey: 'a', sequenceNumber: '101' },
          { data: good, partitionKey: 'b', sequenceNumber: '102' },
        ],
        'shardId-000000000001',
      )
    const parse = avroParse({ registry })
    const started: string[] = []
    const handler = async (record: { sequenceNumber: string }) => {
      started.push(record.sequenceNumber)
      await new Promise((resolve) => setImmediate(resolve))
    }
    const lambda = middy(eachRecord(parse, handler, { ordering: 'partitionKey', concurrency: 2 }))
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    // In the first batch every record waits for the look-up, and 101 fails when it answers, before
    // its turn; in the second the schema is known and 101 fails before the loop. Either way
    // Lambda delivers 102 again: started, it would run twice.
    for (const batch of [1, 2]) {
      started.length = 0
      expect(await lambda(event(), lambdaContext()), `batch ${batch}`).toEqual({
        batchItemFailures: [{ itemIdentifier: '101' }],
      })
      expect(started, `batch ${batch}`).toEqual(['100'])
    }
  })

  describe('records decoded at their turn', () => {
    // A datum whose payload's base64 is over DEFER_FROM characters: kinesisDecode keeps its text
    // and decodes its bytes again at each read of record.data or record.rawData.
    const order = { id: 'x'.repeat(DEFER_FROM), quantity: 1, status: 'PAID' }
    const datum = OrderV1.toBuffer(order)
    // Byte 1 = 0: the datum is read in place; 1: the registry makes it (see readFrame above).
    const inPlace = Buffer.concat([Buffer.of(1, 0), datum])
    const made = Buffer.concat([Buffer.of(1, 1), Buffer.from(datum).reverse()])

    /** Runs the chain once; counts the base64 decodes into new buffers while it runs. */
    async function invoke(parse: AvroParser<unknown>, payloads: Buffer[], onPoison?: PoisonSink) {
      const event = shardEvent(payloads)
      const handled: unknown[] = []
      const lambda = middy(eachRecord(parse, (record) => void handled.push(record.data)))
        .use(kinesisDecode())
        .use(parse)
        .use(partialFailures({ logger: false, onPoison }))
      const from = vi.spyOn(Buffer, 'from')
      try {
        const response = await lambda(event, lambdaContext())
        const decodes = from.mock.calls.filter((call) => call.includes('base64' as never)).length
        return { response, handled, decodes, batch: getBatch(event) }
      } finally {
        from.mockRestore()
      }
    }

    it('reads the bytes of each once, whether it waits for its schema or not', async () => {
      const parse = avroParse({ registry })
      // The first batch waits for the look-up (the made datum is dropped meanwhile, and read
      // again from the payload), the second decodes at once.
      for (const batch of [1, 2]) {
        const { response, handled, decodes, batch: decoded } = await invoke(parse, [inPlace, made])
        expect(decoded?.deferred, `batch ${batch}`).toEqual(new Set([0, 1]))
        expect(response, `batch ${batch}`).toEqual({ batchItemFailures: [] })
        expect(handled, `batch ${batch}`).toEqual([order, order])
        expect(decodes, `batch ${batch}`).toBe(2)
      }
    })

    it('fails them alone, and hands the poison sink their bytes, waiting for their schema or not', async () => {
      const parse = avroParse({ registry })
      const payloads = [
        inPlace,
        Buffer.concat([inPlace, Buffer.of(0)]),
        made,
        Buffer.concat([Buffer.of(1, 1), Buffer.from(datum.subarray(0, -1)).reverse()]),
        Buffer.concat([Buffer.of(2, 0), datum]),
        inPlace,
      ]
      const at = (n: number) =>
        `record ${100 + n} of shardId-000000000001 (partition key "order-${n}")`
      for (const batch of [1, 2]) {
        const sunk: unknown[] = []
        const { response, handled } = await invoke(parse, payloads, async (record, error) => {
          sunk.push({
            sequenceNumber: record.sequenceNumber,
            data: Buffer.from(record.data as Uint8Array),
            rawData: Buffer.from(record.rawData),
            message: error.message,
          })
        })
        // Schema 2 cannot be looked up: retryable, the shard stops there.
        expect(response, `batch ${batch}`).toEqual({
          batchItemFailures: [{ itemIdentifier: '104' }],
        })
        expect(handled, `batch ${batch}`).toEqual([order, order])
        expect(sunk, `batch ${batch}`).toEqual([
          {
            sequenceNumber: '101',
            data: payloads[1],
            rawData: payloads[1],
            message: `${at(1)}: has 1 trailing byte after the Avro datum of my schema 1`,
          },
          {
            sequenceNumber: '103',
            data: payloads[3],
            rawData: payloads[3],
            message: `${at(3)}: is not a valid Avro datum of my schema 1: it ends early, after ${datum.length - 1} bytes`,
          },
        ])
      }
    })
  })
})

describe('avroParse options', () => {
  it('refuses wrong options when built, naming the package', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /give the writer schema as schema, or a registry/],
      [
        { schema: { type: 'record', name: 'X', fields: [{ name: 'a' }] } },
        /schema is not a valid Avro schema/,
      ],
      [
        { schema: OrderV1, readerSchema: { type: 'map', values: 'int' } },
        /the schema cannot be read as the readerSchema/,
      ],
      [
        { schema: OrderV1, registry: { readFrame() {}, lookUp() {}, describe() {} } },
        /give the schema you read as readerSchema, not schema/,
      ],
      [
        { registry: {} },
        /registry must come from confluentSchemaRegistry\(\) or glueSchemaRegistry\(\)/,
      ],
      [{ schema: OrderV1, schemas: OrderV1 }, /@shardwise\/avro-parse/],
      [
        withStatus,
        /give the schema as an option, avroParse\(\{ schema \}\), not avroParse\(schema\)/,
      ],
      [OrderV1, /give the schema as an option, avroParse\(\{ schema \}\)/],
      ['long', /give the schema as an option, avroParse\(\{ schema \}\)/],
      [{ schema: 42 }, /@shardwise\/avro-parse/],
      [
        new Proxy(
          {},
          {
            get() {
              throw new Error('trap')
            },
          },
        ),
        /the options cannot be read: trap/,
      ],
    ]
    for (const [options, message] of cases) {
      expect(() => avroParse(options as never)).toThrow(ConfigurationError)
      expect(() => avroParse(options as never)).toThrow(message)
      expect(() => avroParse(options as never)).toThrow(/^@shardwise\/avro-parse: /)
    }
  })

  it('refuses a schema, reader schema or registry that cannot be read, keeping what reading it threw', () => {
    const unreadable = hostileThrownValues.filter(([name]) => name.includes('Proxy'))
    expect(unreadable.map(([name]) => name)).toEqual([
      'a Proxy whose every trap throws',
      'a revoked Proxy',
    ])
    const throwingGetter = Object.defineProperty({ lookUp() {}, describe() {} }, 'readFrame', {
      get() {
        throw new RangeError('not today')
      },
    })
    const cases: Array<[string, () => unknown]> = [
      [
        'a registry whose readFrame getter throws',
        () => avroParse({ registry: throwingGetter as never }),
      ],
      [
        'a Glue client whose send getter throws',
        () =>
          glueSchemaRegistry({
            client: Object.defineProperty({}, 'send', {
              get() {
                throw new RangeError('not today')
              },
            }) as never,
          }),
      ],
    ]
    for (const [name, make] of unreadable) {
      const value = make()
      cases.push(
        [`schema: ${name}`, () => avroParse({ schema: value as never })],
        [
          `readerSchema: ${name}`,
          () => avroParse({ schema: 'string', readerSchema: value as never }),
        ],
        [`registry: ${name}`, () => avroParse({ registry: value as never })],
        [`Glue client: ${name}`, () => glueSchemaRegistry({ client: value as never })],
      )
    }
    for (const [name, build] of cases) {
      let thrown: unknown
      try {
        build()
      } catch (error) {
        thrown = error
      }
      expect(thrown, name).toBeInstanceOf(ConfigurationError)
      expect((thrown as Error).message, name).toMatch(/^@shardwise\/avro-parse: /)
      expect((thrown as Error).cause, name).toBeInstanceOf(Error)
    }
  })

  it('says to add kinesisDecode() first when the batch is missing', async () => {
    const handler = middy(eachRecord(() => {})).use(avroParse({ schema: 'string' }))
    await expect(handler(shardEvent([]), {} as Context)).rejects.toThrow(
      '@shardwise/avro-parse: the event has no decoded records; add .use(kinesisDecode()) before .use(avroParse())',
    )
  })
})
