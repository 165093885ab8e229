import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import middy from '@middy/core'
import {
  ConfigurationError,
  type Context,
  compareSequenceNumbers,
  DecodeError,
  getBatch,
  type KinesisRecord,
  type KinesisStreamEvent,
  ParseError,
  type RecordBatch,
  RecordError,
  RecordStatus,
  ValidationError,
} from '@shardwise/core'
import { DEFER_FROM, kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { hostileThrownValues } from '@shardwise/test-internals'
import { kinesisEvent, lambdaContext, sequenceNumber, settleOnFakeClock } from '@shardwise/testing'
import { type } from 'arktype'
import * as v from 'valibot'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { z } from 'zod'
import { type JsonParser, jsonParse, type Reviver, type StandardSchemaV1 } from './index.js'

const context = { functionName: 'json-parse-test' } as Context

/** A Lambda Kinesis event of one shard; partition keys cycle through three. */
const eventOf = (payloads: Array<string | Uint8Array>) =>
  kinesisEvent(payloads.map((data, i) => ({ data, partitionKey: `key-${i % 3}` })))

/** Runs the whole chain and returns what the handler saw, the answer, and the batch. */
async function run<T>(parser: JsonParser<T>, event: KinesisStreamEvent) {
  const seen: T[] = []
  const handler = middy(
    eachRecord<T>(
      (record) => {
        seen.push(record.data)
      },
      { ordering: 'none' },
    ),
  )
    .use(kinesisDecode())
    .use(parser)
    .use(partialFailures({ logger: false }))
  const response = await handler(event, context)
  const batch = getBatch<T>(event)
  if (batch === undefined) throw new Error('kinesisDecode attaches the batch')
  // The handler starts nothing after the first failure; what the parser made of the records
  // after it is still on the batch.
  const parsed = batch.records.filter((_, i) => !batch.errors.has(i)).map((record) => record.data)
  return { seen, parsed, response, batch }
}

const Order = z.object({
  id: z.string(),
  quantity: z.number().int().positive(),
  note: z.string().default(''),
})

/** Record 1 (partition key `key-1` on shard 6) failed for good, named, as not valid JSON. */
function expectNotJsonAt1(batch: RecordBatch): RecordError | undefined {
  const error = batch.errors.get(1)
  expect(error).toBeInstanceOf(ParseError)
  expect(error?.retryable).toBe(false)
  expect(error?.message).toMatch(
    new RegExp(
      `^record ${sequenceNumber(1)} of shardId-000000000006 \\(partition key "key-1"\\): is not valid JSON: `,
    ),
  )
  return error
}

describe('jsonParse without a schema', () => {
  it('hands each record its parsed JSON', async () => {
    const payloads = ['{"id":"a","n":1}', '[1,2,3]', '"text"', '42', 'null', 'true']
    const { seen, response } = await run(jsonParse(), eventOf(payloads))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual([{ id: 'a', n: 1 }, [1, 2, 3], 'text', 42, null, true])
  })

  it('fails a record that is not JSON alone, naming the record and the cause', async () => {
    const event = eventOf(['{"ok":1}', '{"id": oops}', '{"ok":3}'])
    const { seen, parsed, response, batch } = await run(jsonParse(), event)
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(seen).toEqual([{ ok: 1 }])
    expect(parsed).toEqual([{ ok: 1 }, { ok: 3 }])
    const error = expectNotJsonAt1(batch)
    expect(error?.cause).toBeInstanceOf(SyntaxError)
  })

  it('fails an empty record and one that is not UTF-8 alone', async () => {
    const notUtf8 = Uint8Array.of(0x22, 0xc3, 0x28, 0x22)
    const { batch, parsed } = await run(jsonParse(), eventOf(['', notUtf8, '{}']))
    expect(batch.errors.get(0)?.message).toMatch(/is not valid JSON/)
    expect(batch.errors.get(1)).toBeInstanceOf(ParseError)
    expect(batch.errors.get(1)?.message).toMatch(/: is not valid UTF-8$/)
    expect(parsed).toEqual([{}])
  })

  it('says so when a record is UTF-16, with or without a byte order mark', async () => {
    const le = Buffer.from('{"name":"Zoë"}', 'utf16le')
    const be = Buffer.from(le).swap16()
    // ASCII text in UTF-16 is valid UTF-8 (with zero bytes), so JSON.parse is what refuses it.
    const leAscii = Buffer.from('{"name":"Zoe"}', 'utf16le')
    const beAscii = Buffer.from(leAscii).swap16()
    const withBom = (bom: number[], text: Buffer) => Buffer.concat([Buffer.from(bom), text])
    const payloads = [withBom([0xff, 0xfe], le), withBom([0xfe, 0xff], be), leAscii, beAscii, le]
    const { batch } = await run(jsonParse(), eventOf([...payloads, '{"ok":1}']))
    const messages = payloads.map((_, i) => batch.errors.get(i)?.message.replace(/^.*?\): /, ''))
    const bomNote = ' (it starts with a UTF-16 byte order mark: send JSON as UTF-8)'
    const zeroNote =
      ' (a zero byte in its first two, as in UTF-16 or UTF-32 text: send JSON as UTF-8)'
    expect(messages[0]).toBe(`is not valid UTF-8${bomNote}`)
    expect(messages[1]).toBe(`is not valid UTF-8${bomNote}`)
    for (const message of [messages[2], messages[3]]) {
      expect(message?.startsWith('is not valid JSON: ')).toBe(true)
      expect(message?.endsWith(zeroNote)).toBe(true)
    }
    expect(messages[4]).toBe(`is not valid UTF-8${zeroNote}`)
    expect(batch.errors.has(5)).toBe(false)
  })

  it('keeps a U+FFFD of the payload, and fails bytes that would decode to one', async () => {
    // A lone 0xFF decodes to one U+FFFD: as many characters as bytes, as in ASCII text.
    const badByte = Uint8Array.of(0x22, 0xff, 0x22)
    const { batch, parsed } = await run(
      jsonParse(),
      eventOf(['"\uFFFD"', badByte, '"\uFFFD\u00e9"']),
    )
    expect(parsed).toEqual(['\uFFFD', '\uFFFDé'])
    expect(batch.errors.get(1)?.message).toMatch(/: is not valid UTF-8$/)
    expect(batch.errors.size).toBe(1)
  })

  it('accepts a leading byte order mark and multi-byte characters', async () => {
    const { seen } = await run(jsonParse(), eventOf(['\uFEFF{"name":"Zoë 🚀"}']))
    expect(seen).toEqual([{ name: 'Zoë 🚀' }])
  })

  it('leaves records that failed earlier in the chain alone', async () => {
    const event = eventOf(['{"a":1}', '{"b":2}'])
    const second = event.Records[1]
    if (second) second.kinesis.data = 'not base64!'
    const { batch, seen } = await run(jsonParse({ schema: z.object({ a: z.number() }) }), event)
    expect(batch.errors.get(1)).toBeInstanceOf(DecodeError)
    expect(batch.status[1]).toBe(RecordStatus.Failed)
    expect(seen).toEqual([{ a: 1 }])
  })

  it('skips records a step before it already handled', () => {
    const event = eventOf(['{"a":1}', 'not json'])
    kinesisDecode().before?.({ event } as never)
    const batch = getBatch(event)
    if (batch === undefined) throw new Error('decoded')
    batch.status[1] = RecordStatus.Succeeded
    jsonParse().before?.({ event } as never)
    expect(batch.records[0]?.data).toEqual({ a: 1 })
    expect(batch.records[1]?.data).toBeInstanceOf(Uint8Array)
    expect(batch.errors.size).toBe(0)
  })
})

describe('jsonParse on large records, parsed at their turn', () => {
  /** JSON whose base64 is DEFER_FROM characters or more: kinesisDecode decodes it at its turn. */
  const large = (id: string, extra = '') =>
    JSON.stringify({ id, pad: 'x'.repeat(DEFER_FROM) }) + extra

  /** The chain with `between` after jsonParse, a handler that keeps its records, and the answer. */
  async function runLarge(
    payloads: string[],
    options: {
      ordering?: 'shard' | 'partitionKey'
      onPoison?: (record: KinesisRecord<unknown>) => Promise<void>
      between?: (event: KinesisStreamEvent) => void
    } = {},
    parse: JsonParser<unknown> = jsonParse(),
  ) {
    const event = eventOf(payloads)
    const kept: Array<KinesisRecord<unknown>> = []
    const inBatchAtTurn: boolean[] = []
    const handler = middy(
      eachRecord(
        (record) => {
          const batch = getBatch(event)
          inBatchAtTurn.push(batch?.records.includes(record) ?? false)
          kept.push(record)
          if ((record.data as { fail?: boolean }).fail) throw new Error('handler failed')
        },
        { ordering: options.ordering ?? 'shard', concurrency: 4 },
      ),
    )
      .use(kinesisDecode())
      .use(parse)
      .use({ before: (request) => options.between?.(request.event) })
      .use(partialFailures({ logger: false, onPoison: options.onPoison }))
    const response = await handler(event, context)
    return {
      response,
      kept,
      inBatchAtTurn,
      batch: getBatch(event) as NonNullable<ReturnType<typeof getBatch>>,
    }
  }

  it('parses each at its turn, and the batch lets its value go once it succeeded, where the handler keeps it', async () => {
    let beforeTheLoop: unknown[] = []
    const { response, kept, inBatchAtTurn, batch } = await runLarge(
      ['{"id":"small"}', large('a'), large('b')],
      {
        between: (event) => {
          beforeTheLoop = (getBatch(event)?.records ?? []).map((record) => record.data)
        },
      },
    )
    expect(response).toEqual({ batchItemFailures: [] })
    expect(batch.deferred).toEqual(new Set([1, 2]))
    // Until its turn, a large record's data is still its bytes.
    expect(beforeTheLoop[0]).toEqual({ id: 'small' })
    expect(beforeTheLoop.slice(1).map((data) => data instanceof Uint8Array)).toEqual([true, true])
    expect(kept.map((record) => (record.data as { id: string }).id)).toEqual(['small', 'a', 'b'])
    expect(inBatchAtTurn).toEqual([true, true, true])
    // Once done, the batch holds the record without its value (its bytes, decoded at each
    // read), and the handler's own record still holds the value.
    for (const i of [1, 2]) {
      const record = batch.records[i] as KinesisRecord<unknown>
      expect(record).not.toBe(kept[i])
      expect(record.sequenceNumber).toBe(kept[i]?.sequenceNumber)
      expect(Buffer.from(record.data as Uint8Array).toString()).toBe(large(i === 1 ? 'a' : 'b'))
      expect(Object.getOwnPropertyDescriptor(record, 'data')?.get).toBeTypeOf('function')
    }
    expect(batch.records[0]).toBe(kept[0])
  })

  it.each([
    ['without a schema', undefined],
    ['with a schema', z.object({ id: z.string(), pad: z.string() })],
  ] as const)(
    'holds no value of a record that succeeded while the next one is decoded and parsed, as a hand-written loop (%s)',
    async (_, schema) => {
      // The loop lived across its awaits with the record it last handed on: the value of each
      // record of 1 MiB stayed alive through the next one's decoding and parse, 3 MB more at the
      // peak of 4 such records (the bench's json-6mb).
      const gc = collector()
      const values: Array<WeakRef<object>> = []
      const heldAtNextParse: boolean[] = []
      const reviver: Reviver = (key, value) => {
        const before = values.at(-1)
        // The root comes last: the whole record is parsed.
        if (key === '' && before !== undefined) {
          gc()
          heldAtNextParse.push(before.deref() !== undefined)
        }
        return value
      }
      const parse = schema === undefined ? jsonParse({ reviver }) : jsonParse({ schema, reviver })
      const handler = middy(
        eachRecord(async (record) => {
          values.push(new WeakRef(record.data as object))
          // A new task: what a WeakRef keeps alive for the task that made it is let go.
          await new Promise((resolve) => setImmediate(resolve))
        }),
      )
        .use(kinesisDecode())
        .use(parse)
        .use(partialFailures({ logger: false }))
      const response = await handler(eventOf([large('a'), large('b'), large('c')]), context)
      expect(response).toEqual({ batchItemFailures: [] })
      expect(heldAtNextParse).toEqual([false, false])
    },
  )

  it('fails one that is not JSON at its turn, alone, naming it, and starts nothing after it', async () => {
    let parsed = 0
    const parse = jsonParse({
      reviver: (key, value) => {
        if (key === '') parsed++
        return value
      },
    })
    const { response, kept, batch } = await runLarge(
      [large('a'), large('b', ' oops'), large('c')],
      {},
      parse,
    )
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(kept.map((record) => (record.data as { id: string }).id)).toEqual(['a'])
    // The record after the failure was never parsed: it comes again anyway.
    expect(parsed).toBe(1)
    expectNotJsonAt1(batch)
    expect([...batch.status]).toEqual([
      RecordStatus.Succeeded,
      RecordStatus.Failed,
      RecordStatus.Pending,
    ])
  })

  it('hands the poison sink a record that failed at its turn with its bytes, and goes on', async () => {
    const sunk: Array<{ raw: string; data: unknown }> = []
    const onPoison = async (record: KinesisRecord<unknown>) => {
      sunk.push({ raw: Buffer.from(record.rawData).toString(), data: record.data })
    }
    const payloads = [
      large('a'),
      large('b', ' oops'),
      large('c', '').replace('"c"', '"c","fail":true'),
      large('d'),
    ]
    const { response, kept, batch } = await runLarge(payloads, { onPoison })
    // The handler's failure is retryable: the answer names it, after the poison went to the sink.
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }] })
    expect(sunk.map((entry) => entry.raw)).toEqual([payloads[1]])
    expect(sunk[0]?.data).toBeInstanceOf(Uint8Array)
    expect(kept.map((record) => (record.data as { id: string }).id)).toEqual(['a', 'c'])
    // The record whose handler failed keeps its value in the batch, for the logs.
    expect(batch.records[2]?.data).toMatchObject({ id: 'c' })
    expect(batch.records[2]).toBe(kept[1])
  })

  it.each([
    ['shard', 'synchronous'],
    ['partitionKey', 'asynchronous'],
  ] as const)(
    'hands the poison sink a record the schema refused at its turn with its bytes, and goes on (%s, %s schema)',
    async (ordering, answers) => {
      const Big = z.object({ id: z.string().startsWith('ok'), pad: z.string() })
      const schema = answers === 'synchronous' ? Big : Big.refine(async () => true)
      const sunk: Array<{ raw: string; data: unknown }> = []
      const onPoison = async (record: KinesisRecord<unknown>) => {
        sunk.push({ raw: Buffer.from(record.rawData).toString(), data: record.data })
      }
      const payloads = [large('ok-a'), large('no-b'), large('ok-c')]
      const { response, kept } = await runLarge(
        payloads,
        { ordering, onPoison },
        jsonParse({ schema }) as JsonParser<unknown>,
      )
      expect(response).toEqual({ batchItemFailures: [] })
      expect(kept.map((record) => (record.data as { id: string }).id).sort()).toEqual([
        'ok-a',
        'ok-c',
      ])
      // rawData, what a sink keeps (sqsPoisonSink's base64), is the record's bytes; data, the
      // value the schema refused.
      expect(sunk).toEqual([{ raw: payloads[1], data: JSON.parse(payloads[1] as string) }])
    },
  )

  it('parses them at their turn in the concurrent orders as well', async () => {
    const payloads = Array.from({ length: 9 }, (_, i) => large(`r${i}`))
    const { response, kept, batch } = await runLarge(payloads, { ordering: 'partitionKey' })
    expect(response).toEqual({ batchItemFailures: [] })
    expect(kept.map((record) => (record.data as { id: string }).id).sort()).toEqual(
      payloads.map((_, i) => `r${i}`).sort(),
    )
    expect(batch.records.every((record) => record.data instanceof Uint8Array)).toBe(true)
  })

  it('validates each at its turn with a schema, the handler gets its output, and the batch lets it go once it succeeded', async () => {
    const Big = z.object({ id: z.string(), pad: z.string() }).transform(({ id }) => ({ id }))
    let beforeTheLoop: unknown[] = []
    const { response, kept, batch } = await runLarge(
      ['{"id":"small","pad":""}', large('a'), large('b')],
      {
        between: (event) => {
          beforeTheLoop = (getBatch(event)?.records ?? []).map((record) => record.data)
        },
      },
      jsonParse({ schema: Big }) as JsonParser<unknown>,
    )
    expect(response).toEqual({ batchItemFailures: [] })
    expect(beforeTheLoop[0]).toEqual({ id: 'small' })
    expect(beforeTheLoop.slice(1).map((data) => data instanceof Uint8Array)).toEqual([true, true])
    expect(kept.map((record) => record.data)).toEqual([{ id: 'small' }, { id: 'a' }, { id: 'b' }])
    for (const i of [1, 2]) {
      expect(batch.records[i]).not.toBe(kept[i])
      expect(Object.getOwnPropertyDescriptor(batch.records[i], 'data')?.get).toBeTypeOf('function')
    }
  })

  it('fails one the schema refuses at its turn, alone, with its issues, and starts nothing after it', async () => {
    const Big = z.object({ id: z.string().startsWith('ok'), pad: z.string() })
    const { response, kept, batch } = await runLarge(
      [large('ok-a'), large('no-b'), large('ok-c')],
      {},
      jsonParse({ schema: Big }) as JsonParser<unknown>,
    )
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(kept.map((record) => (record.data as { id: string }).id)).toEqual(['ok-a'])
    const error = batch.errors.get(1)
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).issues[0]?.path).toEqual(['id'])
    // The failed record keeps its copy, with the value the schema refused, for the logs.
    expect(batch.records[1]?.data).toMatchObject({ id: 'no-b' })
    expect([...batch.status]).toEqual([
      RecordStatus.Succeeded,
      RecordStatus.Failed,
      RecordStatus.Pending,
    ])
  })

  it.each(['shard', 'partitionKey'] as const)(
    'waits at its turn for an asynchronous schema, beside small records validated ahead (%s)',
    async (ordering) => {
      const checked: string[] = []
      const Big = z
        .object({ id: z.string(), pad: z.string().optional() })
        .refine(async ({ id }) => {
          await new Promise((resolve) => setTimeout(resolve, 1))
          checked.push(id)
          return id !== 'bad'
        })
        .transform(({ id }) => ({ id }))
      const { response, kept, batch } = await runLarge(
        ['{"id":"s1"}', large('a'), '{"id":"s2"}', large('b'), '{"id":"bad"}'],
        { ordering },
        jsonParse({ schema: Big }) as JsonParser<unknown>,
      )
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(4) }] })
      // With 'partitionKey', records of other keys run at once: in batch order for the check.
      kept.sort((a, b) => compareSequenceNumbers(a.sequenceNumber, b.sequenceNumber))
      expect(kept.map((record) => record.data)).toEqual([
        { id: 's1' },
        { id: 'a' },
        { id: 's2' },
        { id: 'b' },
      ])
      expect(batch.errors.get(4)).toBeInstanceOf(ValidationError)
      expect(new Set(checked)).toEqual(new Set(['s1', 'a', 's2', 'b', 'bad']))
      for (const i of [1, 3]) {
        expect(Object.getOwnPropertyDescriptor(batch.records[i], 'data')?.get).toBeTypeOf(
          'function',
        )
      }
    },
  )

  it.each(['shard', 'partitionKey', 'none'] as const)(
    'validates at most `validationConcurrency` records at once, large ones included (%s)',
    async (ordering) => {
      // The large records were validated apart from the others, each at its turn: in the
      // concurrent orders, every record in flight was one validation more.
      let inFlight = 0
      let most = 0
      const tick = () => new Promise<void>((resolve) => setImmediate(resolve))
      const schema: StandardSchemaV1 = {
        '~standard': {
          version: 1,
          vendor: 'counting',
          validate: async (value) => {
            most = Math.max(most, ++inFlight)
            for (let t = 0; t < 3; t++) await tick()
            inFlight--
            return { value }
          },
        },
      }
      const mixed = Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0 ? JSON.stringify({ id: `s${i}` }) : large(`l${i}`),
      )
      const largeOnly = Array.from({ length: 12 }, (_, i) => large(`l${i}`))
      for (const payloads of [mixed, largeOnly]) {
        inFlight = 0
        most = 0
        // Each record of a key of its own: in the concurrent orders, all may run at once.
        const event = kinesisEvent(payloads.map((data, i) => ({ data, partitionKey: `key-${i}` })))
        const handled: string[] = []
        const handler = middy(
          eachRecord<{ id: string }>(
            (record) => {
              handled.push(record.data.id)
            },
            { ordering, concurrency: 12 },
          ),
        )
          .use(kinesisDecode())
          .use(jsonParse({ schema, validationConcurrency: 2 }))
          .use(partialFailures({ logger: false }))
        expect(await handler(event, context)).toEqual({ batchItemFailures: [] })
        expect(handled.sort()).toEqual(payloads.map((data) => JSON.parse(data).id).sort())
        // One record at a time, none of them small, leaves no validation to run ahead.
        expect(most).toBe(ordering === 'shard' && payloads === largeOnly ? 1 : 2)
      }
    },
  )

  it('gives a middleware between kinesisDecode and jsonParse the bytes of a large record', async () => {
    const event = eventOf([large('a')])
    const lengths: number[] = []
    const seen: unknown[] = []
    const handler = middy(
      eachRecord((record) => {
        seen.push(record.data)
      }),
    )
      .use(kinesisDecode())
      .use({
        before: (request) => {
          for (const record of getBatch<Uint8Array>(request.event)?.records ?? [])
            lengths.push(record.data.length)
        },
      })
      .use(jsonParse())
      .use(partialFailures({ logger: false }))
    expect(await handler(event, context)).toEqual({ batchItemFailures: [] })
    expect(lengths).toEqual([large('a').length])
    expect(seen).toEqual([JSON.parse(large('a'))])
  })
})

describe('numbers beyond 2^53', () => {
  const ids = ['{"id":12345678901234567890,"n":1.5}', '{"id":-9007199254740993,"n":2}']

  it('are rounded by JSON.parse, as in any JavaScript', async () => {
    const { seen } = await run(jsonParse(), eventOf(ids))
    expect(seen).toEqual([
      { id: 12345678901234567000, n: 1.5 },
      { id: -9007199254740992, n: 2 },
    ])
  })

  it('stay exact as BigInt with a reviver that reads the source text, also through a schema', async () => {
    // The README's sample.
    const reviver: Reviver = (_key, value, { source }) =>
      typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(source ?? '')
        ? BigInt(source as string)
        : value
    const { seen } = await run(jsonParse({ reviver }), eventOf(ids))
    expect(seen).toEqual([
      { id: 12345678901234567890n, n: 1.5 },
      { id: -9007199254740993n, n: 2 },
    ])
    const schema = z.object({ id: z.bigint(), n: z.number() })
    const parsed = await run(jsonParse({ schema, reviver }), eventOf(ids))
    expect(parsed.seen).toEqual([
      { id: 12345678901234567890n, n: 1.5 },
      { id: -9007199254740993n, n: 2 },
    ])
  })

  it('fails a record whose reviver throws alone, saying the reviver threw', async () => {
    const reviver: Reviver = (key, value) => {
      if (key === 'id' && value === 'bad') throw new Error('unknown id')
      return value
    }
    const { batch, seen } = await run(
      jsonParse({ reviver }),
      eventOf(['{"id":"a"}', '{"id":"bad"}', '{"id": oops}', '{"__proto__":{"id":"b"}}']),
    )
    expect(seen).toEqual([{ id: 'a' }])
    expect(batch.errors.get(1)).toBeInstanceOf(ParseError)
    expect(batch.errors.get(1)?.message).toMatch(/\): the reviver threw: unknown id$/)
    expect(batch.errors.get(2)?.message).toMatch(/\): is not valid JSON: /)
    expect(batch.errors.get(3)?.message).toContain('has a "__proto__" key at the root')
  })

  it('refuses a reviver that is not a function', () => {
    expect(() => jsonParse({ reviver: 'BigInt' } as never)).toThrow(
      "@shardwise/json-parse: Option 'reviver' must be a function",
    )
  })
})

describe('prototype pollution', () => {
  const polluting = [
    ['{"__proto__":{"polluted":true}}', '"__proto__" key at the root'],
    ['{"a":{"b":[{"__proto__":{"polluted":true}}]}}', '"__proto__" key at a.b.0'],
    ['{"\\u005f_proto__":{"polluted":true}}', '"__proto__" key at the root'],
    ['{"\\u005F\\u005Fproto\\u005f\\u005f":{"polluted":true}}', '"__proto__" key at the root'],
    ['{"constructor":{"prototype":{"polluted":true}}}', '"constructor.prototype" key at the root'],
    [
      '{"x":{"c\\u006fnstructor":{"prototype":{"polluted":true}}}}',
      '"constructor.prototype" key at x',
    ],
    // The text has no "proto" in these: only the escapes give the keys away.
    ['{"__pr\\u006Fto__":{"polluted":true}}', '"__proto__" key at the root'],
    [
      '{"__\\u0070\\u0072\\u006f\\u0074\\u006f__":{"polluted":true}}',
      '"__proto__" key at the root',
    ],
    [
      '{"constructor":{"\\u0070rot\\u006ftype":{"polluted":true}}}',
      '"constructor.prototype" key at the root',
    ],
  ] as const

  it.each(polluting)('fails %s alone, with no prototype touched', async (payload, message) => {
    const { batch, seen, response } = await run(jsonParse(), eventOf(['{"ok":1}', payload]))
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(seen).toEqual([{ ok: 1 }])
    expect(batch.errors.get(1)).toBeInstanceOf(ParseError)
    expect(batch.errors.get(1)?.message).toContain(message)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty('polluted')
  })

  it('lets the same words through where they are values or harmless keys', async () => {
    const payloads = [
      '{"text":"__proto__ and constructor.prototype"}',
      '{"constructor":"Ford"}',
      '{"constructor":{"name":"Ford"}}',
      '{"caf\\u00e9":"\\u00fcber"}',
      '{"deep":[[[[{"proto":1}]]]]}',
    ]
    const { seen, response } = await run(jsonParse(), eventOf(payloads))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual(payloads.map((payload) => JSON.parse(payload)))
  })

  it('walks JSON nested deeper than the call stack', async () => {
    const depth = 100_000
    const deep = `${'['.repeat(depth)}{"__proto__":{}}${']'.repeat(depth)}`
    const { batch } = await run(jsonParse(), eventOf([deep]))
    expect(batch.errors.get(0)?.message).toContain(
      `has a "__proto__" key at 0.0.0.0.….0.0.0.0 (depth ${depth}), refused: merged into an object`,
    )
  })
})

describe('jsonParse with a schema', () => {
  it('replaces data with the zod output and fails a mismatch alone, listing every issue', async () => {
    const payloads = [
      '{"id":"a","quantity":1}',
      '{"id":7,"quantity":-2}',
      '{"id":"c","quantity":3,"note":"fragile"}',
    ]
    const { parsed, response, batch } = await run(jsonParse({ schema: Order }), eventOf(payloads))
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(parsed).toEqual([
      { id: 'a', quantity: 1, note: '' },
      { id: 'c', quantity: 3, note: 'fragile' },
    ])
    const error = batch.errors.get(1)
    expect(error).toBeInstanceOf(ValidationError)
    expect(error?.retryable).toBe(false)
    expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual([
      ['id'],
      ['quantity'],
    ])
    expect(error?.message).toMatch(
      new RegExp(
        `^record ${sequenceNumber(1)} of shardId-000000000006 .*: does not match the schema: id: .+; quantity: .+`,
      ),
    )
  })

  it('works with valibot, nested paths included', async () => {
    const schema = v.object({
      id: v.string(),
      lines: v.array(v.object({ sku: v.string(), quantity: v.pipe(v.number(), v.minValue(1)) })),
    })
    const payloads = [
      '{"id":"a","lines":[{"sku":"x","quantity":2}]}',
      '{"id":"b","lines":[{"sku":"x","quantity":2},{"sku":"y","quantity":0}]}',
    ]
    const { seen, batch } = await run(jsonParse({ schema }), eventOf(payloads))
    expect(seen).toEqual([{ id: 'a', lines: [{ sku: 'x', quantity: 2 }] }])
    const error = batch.errors.get(1) as ValidationError
    expect(error).toBeInstanceOf(ValidationError)
    expect(error.issues.map((issue) => issue.path)).toEqual([['lines', 1, 'quantity']])
    expect(error.message).toContain('does not match the schema: lines.1.quantity: ')
  })

  it('awaits asynchronous schemas, and fails only the records they reject', async () => {
    const known = new Set(['a', 'c'])
    const schema = Order.refine(
      async (order) => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        return known.has(order.id)
      },
      { message: 'unknown order', path: ['id'] },
    )
    const payloads = [
      '{"id":"a","quantity":1}',
      '{"id":"b","quantity":1}',
      '{"id":"c","quantity":1}',
    ]
    const { parsed, batch } = await run(jsonParse({ schema }), eventOf(payloads))
    expect(parsed.map((order) => order.id)).toEqual(['a', 'c'])
    expect(batch.errors.get(1)?.message).toContain('does not match the schema: id: unknown order')
  })

  it('runs a zod asynchronous refinement once per record after the first, with no unhandled rejection', async () => {
    const calls = new Map<string, number>()
    let inFlight = 0
    let most = 0
    const schema = z.object({ id: z.string() }).refine(async (order) => {
      calls.set(order.id, (calls.get(order.id) ?? 0) + 1)
      most = Math.max(most, ++inFlight)
      await new Promise((resolve) => setTimeout(resolve, 2))
      inFlight--
      if (order.id === 'boom') throw new Error('lookup service down')
      return true
    }, 'unknown order')
    const parser = jsonParse({ schema, validationConcurrency: 2 })
    const ids = ['a', 'b', 'c', 'boom', 'd', 'e', 'f']
    const { batch, seen } = await run(parser, eventOf(ids.map((id) => JSON.stringify({ id }))))
    // zod runs the first record twice (a synchronous try, then asynchronously), before anything
    // tells that the schema is asynchronous.
    expect(ids.map((id) => calls.get(id))).toEqual([2, 1, 1, 1, 1, 1, 1])
    expect(most).toBeLessThanOrEqual(3)
    expect(seen).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }])
    expect(batch.errors.get(3)?.message).toMatch(/: the schema threw: lookup service down$/)
    expect(batch.records[6]?.data).toEqual({ id: 'f' })
    // The next batch knows the schema is asynchronous from its first record on.
    calls.clear()
    most = 0
    await run(parser, eventOf(ids.map((id) => JSON.stringify({ id }))))
    expect(ids.map((id) => calls.get(id))).toEqual([1, 1, 1, 1, 1, 1, 1])
    expect(most).toBe(2)
    // And mismatches still list zod's issues with their paths.
    const nested = jsonParse({
      schema: z.object({ lines: z.array(z.object({ qty: z.number() })) }).refine(async () => true),
    })
    const first = await run(nested, eventOf(['{"lines":[]}', '{"lines":[{"qty":1},{"qty":"x"}]}']))
    expect(first.batch.errors.get(1)?.message).toMatch(
      /: does not match the schema: lines\.1\.qty: Invalid input: expected number, received string$/,
    )
  })

  it('validates at most `validationConcurrency` records at once with an asynchronous schema', async () => {
    let inFlight = 0
    let most = 0
    const validated: string[] = []
    // valibot: zod runs the first record's async refinement twice.
    const schema = v.pipeAsync(
      v.object({ id: v.string() }),
      v.checkAsync(async (order) => {
        most = Math.max(most, ++inFlight)
        await new Promise((resolve) => setTimeout(resolve, 1 + (order.id.length % 3)))
        inFlight--
        validated.push(order.id)
        return order.id !== 'id-7'
      }, 'unknown order'),
    )
    const payloads = Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `id-${i}` }))
    for (const [concurrency, expected] of [
      [undefined, 10],
      [3, 3],
      [1, 1],
    ] as const) {
      most = 0
      validated.length = 0
      const parser = jsonParse({
        schema,
        ...(concurrency === undefined ? {} : { validationConcurrency: concurrency }),
      })
      const { seen, parsed, batch, response } = await run(parser, eventOf(payloads))
      expect(most).toBe(expected)
      // Validation runs at each record's turn in the loop, a few ahead of it: once record 7
      // failed, the records the loop never reached are not validated (they come again).
      expect(validated.length).toBeGreaterThanOrEqual(8)
      expect(validated.length).toBeLessThan(40)
      expect(parsed).toHaveLength(39)
      expect(seen).toHaveLength(7)
      expect(batch.errors.get(7)?.message).toMatch(
        /: does not match the schema: \(root\): unknown order$/,
      )
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(7) }] })
    }
  })

  it('fails a record alone, retryable, when the schema answers neither { value } nor { issues }', async () => {
    const answers: Record<string, unknown> = {
      undefined: undefined,
      null: null,
      true: true,
      'the value itself': { id: 'value-itself' },
      '{ issues: "text" }': { issues: 'id is wrong' },
      'broken issues': { issues: [null, { message: 'at a', path: 'a' }, { path: [null, 1] }] },
      'a long object': { output: 'x'.repeat(200) },
    }
    const expected = [
      'undefined',
      'null',
      'true',
      '{"id":"value-itself"}',
      '{"issues":"id is wrong"}',
      JSON.stringify({ output: 'x'.repeat(200) }),
    ]
    const brokenIssues = 'does not match the schema: (root): null; (root): at a; null.1: undefined'
    for (const answerAsync of [false, true]) {
      const validate = (value: unknown) => {
        const { id } = value as { id: string }
        const answer = id in answers ? answers[id] : { value }
        return answerAsync ? Promise.resolve(answer) : answer
      }
      const schema = { '~standard': { version: 1 as const, vendor: 'test', validate } }
      const payloads = ['{"id":"ok"}', ...Object.keys(answers).map((id) => JSON.stringify({ id }))]
      const { seen, batch, response } = await run(
        jsonParse({ schema: schema as never }),
        eventOf(payloads),
      )
      expect(seen).toEqual([{ id: 'ok' }])
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
      const broken = Object.keys(answers).indexOf('broken issues') + 1
      expect(batch.errors.get(broken)?.message.endsWith(`: ${brokenIssues}`)).toBe(true)
      for (const [i, shown] of expected.entries()) {
        const position = i + 1 < broken ? i + 1 : i + 2
        const error = batch.errors.get(position)
        expect(error).toBeInstanceOf(RecordError)
        expect(error?.retryable).toBe(true)
        expect(error?.message).toBe(
          `record ${sequenceNumber(position)} of shardId-000000000006 (partition key "key-${position % 3}"): the schema's ~standard.validate answered ${shown}, neither { value } nor { issues }: is it a Standard Schema v1 validator?`,
        )
      }
    }
  })

  it('keeps a success whose value is undefined', async () => {
    const schema = {
      '~standard': { version: 1 as const, vendor: 'test', validate: () => ({ value: undefined }) },
    }
    const { seen, response } = await run(jsonParse({ schema }), eventOf(['{"id":"a"}']))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual([undefined])
  })

  it('returns no promise when the schema answers synchronously', () => {
    const event = eventOf(['{"id":"a","quantity":1}', '{"id":"b"}', 'nope'])
    kinesisDecode().before?.({ event } as never)
    expect(jsonParse({ schema: Order }).before?.({ event } as never)).toBeUndefined()
    expect(getBatch(event)?.records[0]?.data).toEqual({ id: 'a', quantity: 1, note: '' })
  })

  it('fails a record whose schema throws, keeping it retryable', async () => {
    const schema = z.object({ id: z.string() }).transform((order) => {
      if (order.id === 'boom') throw new Error('lookup service down')
      return order
    })
    // zod runs the first record's async refinement twice and leaves the first call's rejection
    // unhandled, so the throwing async case uses valibot.
    const asyncSchema = v.pipeAsync(
      v.object({ id: v.string() }),
      v.checkAsync(async (order) => {
        if (order.id === 'boom') throw new Error('lookup service down')
        return true
      }, 'unknown order'),
    )
    for (const parser of [jsonParse({ schema }), jsonParse({ schema: asyncSchema })]) {
      const { batch, seen } = await run(parser, eventOf(['{"id":"a"}', '{"id":"boom"}']))
      expect(seen).toEqual([{ id: 'a' }])
      const error = batch.errors.get(1)
      expect(error).toBeInstanceOf(RecordError)
      expect(error?.retryable).toBe(true)
      expect(error?.message).toMatch(/: the schema threw: lookup service down$/)
    }
  })
  it('fails a record that overflows a recursive schema, or a transform with a RangeError, as not retryable', async () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    const { batch, seen } = await run(jsonParse({ schema: z.json() }), eventOf(['[[1]]', deep]))
    expect(seen).toEqual([[[1]]])
    expect(batch.errors.get(1)?.message).toMatch(
      /: the schema threw: Maximum call stack size exceeded$/,
    )
    expect(batch.errors.get(1)?.retryable).toBe(false)
    const at = z.object({ at: z.string().transform((text) => new Date(text).toISOString()) })
    const dates = await run(
      jsonParse({ schema: at }),
      eventOf(['{"at":"2026-11-25"}', '{"at":"x"}']),
    )
    expect(dates.seen).toEqual([{ at: '2026-11-25T00:00:00.000Z' }])
    expect(dates.batch.errors.get(1)?.message).toMatch(/: the schema threw: Invalid time value$/)
    expect(dates.batch.errors.get(1)?.retryable).toBe(false)
  })

  it('parses a 1 MiB record, and keeps the message of its 20,000 issues short', async () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({
      id: `item-${i}`,
      note: 'x'.repeat(24),
    }))
    const payload = JSON.stringify({ items })
    expect(payload.length).toBeGreaterThan(1024 * 1024)
    const { seen, batch } = await run(
      jsonParse({ schema: z.object({ items: z.array(z.object({ id: z.number() })) }) }),
      eventOf([payload]),
    )
    expect(seen).toEqual([])
    const error = batch.errors.get(0) as ValidationError
    expect(error.issues).toHaveLength(20_000)
    expect(error.message).toMatch(
      /: does not match the schema: items\.0\.id: .*; and 19990 more issues$/,
    )
    expect(error.message.length).toBeLessThan(1000)
    const plain = await run(jsonParse(), eventOf([payload]))
    expect(plain.seen).toEqual([{ items }])
  })
})

describe('wiring mistakes', () => {
  it('says to add kinesisDecode() first when the batch is missing', async () => {
    const handler = middy(eachRecord(() => {})).use(jsonParse())
    await expect(handler(eventOf(['{}']), context)).rejects.toThrow(
      new ConfigurationError(
        '@shardwise/json-parse: the event has no decoded records; add .use(kinesisDecode()) before .use(jsonParse())',
      ),
    )
  })

  it('refuses unknown options and schemas that are not Standard Schemas, when built', () => {
    expect(() => jsonParse({ schemas: Order } as never)).toThrow(ConfigurationError)
    for (const schema of [Order, type({ id: 'string' })]) {
      expect(() => jsonParse(schema as never)).toThrow(
        '@shardwise/json-parse: give the schema as jsonParse({ schema }), not jsonParse(schema)',
      )
    }
    expect(() => jsonParse({ schema: Order, validationConcurrency: 0 })).toThrow(
      "@shardwise/json-parse: Option 'validationConcurrency' must be >= 1",
    )
    expect(() => jsonParse({ schema: { parse: () => 1 } } as never)).toThrow(
      /@shardwise\/json-parse: schema must be a Standard Schema v1 validator/,
    )
    for (const schema of ['Order', null, 42]) {
      expect(() => jsonParse({ schema } as never)).toThrow(
        /@shardwise\/json-parse: schema must be a Standard Schema v1 validator/,
      )
    }
  })

  it('refuses options that cannot be read with a ConfigurationError that keeps what reading them threw', () => {
    const unreadable = hostileThrownValues.filter(([name]) => name.includes('Proxy'))
    expect(unreadable).toHaveLength(2)
    for (const [name, make] of unreadable) {
      let thrown: unknown
      try {
        jsonParse(make() as never)
      } catch (error) {
        thrown = error
      }
      expect(thrown, name).toBeInstanceOf(ConfigurationError)
      expect((thrown as Error).message, name).toMatch(
        /^@shardwise\/json-parse: the options cannot be read: /,
      )
      expect((thrown as Error).cause, name).toBeInstanceOf(Error)
    }
  })

  it('refuses a schema that cannot be read with a ConfigurationError that keeps what reading it threw', () => {
    const trapsThrow = new Proxy(
      {},
      {
        get() {
          throw new TypeError('no property for you')
        },
      },
    )
    const { proxy: revoked, revoke } = Proxy.revocable({}, {})
    revoke()
    const getterThrows = Object.defineProperty({}, '~standard', {
      get() {
        throw new RangeError('not today')
      },
    })
    for (const [schema, message, cause] of [
      [trapsThrow, 'no property for you', TypeError],
      [revoked, 'revoked', TypeError],
      [getterThrows, 'not today', RangeError],
    ] as const) {
      let thrown: unknown
      try {
        jsonParse({ schema: schema as never })
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(ConfigurationError)
      expect((thrown as Error).message).toMatch(
        /^@shardwise\/json-parse: the schema cannot be read: /,
      )
      expect((thrown as Error).message).toContain(message)
      expect((thrown as Error).cause).toBeInstanceOf(cause)
    }
  })

  it('works with arktype, whose schemas are functions', async () => {
    const schema = type({ id: 'string', quantity: 'number.integer > 0', 'note?': 'string' }).pipe(
      (order) => ({ ...order, note: order.note ?? '' }),
    )
    const { parsed, batch } = await run(
      jsonParse({ schema }),
      eventOf(['{"id":"a","quantity":2}', '{"id":"b","quantity":1.5}']),
    )
    expect(parsed).toEqual([{ id: 'a', quantity: 2, note: '' }])
    const error = batch.errors.get(1) as ValidationError
    expect(error).toBeInstanceOf(ValidationError)
    expect(error.issues.map((issue) => issue.path)).toEqual([['quantity']])
    expect(error.message).toMatch(/does not match the schema: quantity: .*integer/)
  })

  it('throws when data is not bytes, as after a middleware that parsed it', () => {
    const event = eventOf(['{}'])
    kinesisDecode().before?.({ event } as never)
    for (const record of getBatch(event)?.records ?? []) record.data = {} as never
    expect(() => jsonParse().before?.({ event } as never)).toThrow(
      /record\.data is an object, not bytes; use jsonParse\(\) right after kinesisDecode\(\), once/,
    )
  })

  it('throws after another parser, naming both', () => {
    const event = eventOf(['{}'])
    kinesisDecode().before?.({ event } as never)
    jsonParse({ schema: Order }).before?.({ event } as never)
    expect(() => jsonParse().before?.({ event } as never)).toThrow(
      'jsonParse() of @shardwise/json-parse: jsonParse({ schema }) of @shardwise/json-parse parsed the batch before it; keep one',
    )
  })
})

describe('jsonParse with a schema or reviver that throws a value the library did not create', () => {
  /** A Standard Schema whose `validate` does `act` for the record whose value is 1. */
  const schemaDoing = (act: () => unknown): StandardSchemaV1 => ({
    '~standard': {
      version: 1,
      vendor: 'hostile',
      validate: (value: unknown) =>
        (value === 1 ? act() : { value }) as StandardSchemaV1.Result<unknown>,
    },
  })
  const unreadable = () => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }
  const everyTrapThrows = hostileThrownValues.find(([name]) => name.startsWith('a Proxy'))?.[1]

  const cases: Array<[string, () => JsonParser<unknown>]> = [
    ...hostileThrownValues.flatMap(
      ([name, make]): Array<[string, () => JsonParser<unknown>]> => [
        [
          `validate throws ${name}`,
          () =>
            jsonParse({
              schema: schemaDoing(() => {
                throw make()
              }),
            }),
        ],
        [
          `validate rejects with ${name}`,
          () => jsonParse({ schema: schemaDoing(() => Promise.reject(make())) }),
        ],
        [
          `the reviver throws ${name}`,
          () =>
            jsonParse({
              reviver: (key, value) => {
                if (key === '' && value === 1) throw make()
                return value
              },
            }),
        ],
      ],
    ),
    ['validate answers a revoked Proxy', () => jsonParse({ schema: schemaDoing(unreadable) })],
    [
      'validate answers a Proxy whose traps throw',
      () => jsonParse({ schema: schemaDoing(() => everyTrapThrows?.()) }),
    ],
    [
      'validate answers a promise of a revoked Proxy',
      () => jsonParse({ schema: schemaDoing(async () => unreadable()) }),
    ],
    [
      'validate answers issues that cannot be read',
      () =>
        jsonParse({
          schema: schemaDoing(() => ({
            issues: [{ message: everyTrapThrows?.(), path: [{ key: everyTrapThrows?.() }] }],
          })),
        }),
    ],
    [
      'validate answers a thenable whose then getter throws',
      () =>
        jsonParse({
          schema: schemaDoing(() =>
            Object.defineProperty({}, 'then', {
              get() {
                throw new Error('no then for you')
              },
            }),
          ),
        }),
    ],
  ]

  it.each(cases)('fails that record alone, named: %s', async (_name, parser) => {
    const { response, batch, seen } = await run(parser(), eventOf(['0', '1', '2']))
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(seen).toContain(0)
    const error = batch.errors.get(1)
    expect(error).toBeInstanceOf(RecordError)
    expect(error?.message).toMatch(
      new RegExp(
        `^record ${sequenceNumber(1)} of shardId-000000000006 \\(partition key "key-1"\\): .`,
      ),
    )
  })
})

describe('jsonParse with a slow asynchronous schema, under the timeout guard', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  const slowSchema = (ms: number | 'never'): StandardSchemaV1 => ({
    '~standard': {
      version: 1,
      vendor: 'slow',
      validate: (value: unknown) =>
        new Promise((resolve) => {
          if (ms !== 'never') setTimeout(() => resolve({ value }), ms)
        }),
    },
  })

  for (const ordering of ['shard', 'partitionKey', 'none'] as const) {
    it(`validates at each record's turn, and answers before the deadline with the records handled (${ordering})`, async () => {
      // Time is the subject: the fake clock's, so a busy machine changes nothing.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
      const handled = new Set<number>()
      const lambda = middy(
        eachRecord(
          (record) => {
            handled.add(Number(record.sequenceNumber.slice(-7)))
          },
          { ordering },
        ),
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(jsonParse({ schema: slowSchema(20), validationConcurrency: 1 }))
        .use(partialFailures({ logger: false }))
      const payloads = Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: i }))
      // 200 validations of 20 ms, one at a time, take 4 s: twice the time left.
      const begin = Date.now()
      const answer = await settleOnFakeClock(vi, lambda(eventOf(payloads), lambdaContext(2000)))
      // The guard stops 1,000 ms before the deadline (the default margin).
      expect(Date.now() - begin).toBeLessThanOrEqual(1000)
      expect(handled.size).toBeGreaterThan(10)
      expect(handled.size).toBeLessThan(200)
      let firstNotHandled = 0
      while (handled.has(firstNotHandled)) firstNotHandled++
      expect(answer).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(firstNotHandled) }],
      })
    })
  }

  it('answers in time when a validation never settles, naming its record', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    const lambda = middy(
      eachRecord(() => {}),
      { timeoutEarlyInMillis: 0 },
    )
      .use(kinesisDecode())
      .use(jsonParse({ schema: slowSchema('never') }))
      .use(partialFailures({ logger: false }))
    let answer: unknown
    void lambda(eventOf(['{}', '{}']), lambdaContext(1500)).then((a) => {
      answer = a
    })
    // The guard fires 1,000 ms before the deadline, 500 ms in.
    await vi.advanceTimersByTimeAsync(500)
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }] })
  })
})

describe('jsonParse with an asynchronous schema, in the concurrent orders', () => {
  it("starts no record after one whose validation, done ahead of its turn, failed ('partitionKey')", async () => {
    const schema: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: async (value: unknown) =>
          (value as { bad?: boolean }).bad ? { issues: [{ message: 'bad' }] } : { value },
      },
    }
    // Records 0 and 1 share a key, so 1 has its turn once 0 is done; 2 has its own. The
    // validations run ahead of the loop: 1's fails while 0 runs.
    const event = kinesisEvent([
      { data: '{"id":0}', partitionKey: 'a' },
      { data: '{"id":1,"bad":true}', partitionKey: 'a' },
      { data: '{"id":2}', partitionKey: 'b' },
    ])
    const started: number[] = []
    const lambda = middy(
      eachRecord(
        async (record) => {
          started.push((record.data as unknown as { id: number }).id)
          await new Promise((resolve) => setImmediate(resolve))
        },
        { ordering: 'partitionKey', concurrency: 2 },
      ),
    )
      .use(kinesisDecode())
      .use(jsonParse({ schema }))
      .use(partialFailures({ logger: false }))
    expect(await lambda(event, context)).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    // Lambda delivers record 2 again: started, it would run twice.
    expect(started).toEqual([0])
  })
})

/** V8's garbage collector, to see what is still held rather than what is not yet freed. */
function collector(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
