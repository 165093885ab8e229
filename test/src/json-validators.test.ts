/**
 * jsonParse with every Standard Schema validator a user may bring, each at the version that
 * installs today: zod 4, zod 3.25, valibot 1, arktype 2, effect 4 (`Schema.toStandardSchemaV1`)
 * and 3 (`Schema.standardSchemaV1`), yup 1.7 and a hand-written Standard Schema. Each one parses
 * the same orders: the output (with a transform whose type differs from its input) reaches the
 * record handler, a mismatch names the record and every issue by its path, an asynchronous
 * refinement runs under validationConcurrency, and a schema that throws fails its record alone.
 */
import middy from '@middy/core'
import { getBatch, type ValidationError } from '@shardwise/core'
import type { StandardSchemaV1 } from '@shardwise/json-parse'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { type } from 'arktype'
import { Effect, Schema as S, SchemaGetter } from 'effect'
import { Effect as Effect3, Schema as S3 } from 'effect-3'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import * as yup from 'yup'
import { z } from 'zod'
import { z as z3 } from 'zod-3'

/** What every schema here makes of an order: `at` turns from ISO text into a Date. */
interface Order {
  readonly id: string
  // Readonly, as effect's output is.
  readonly lines: ReadonlyArray<{ readonly sku: string; readonly qty: number }>
  readonly at: Date
}

const good = (id: string) =>
  JSON.stringify({ id, lines: [{ sku: 'x', qty: 2 }], at: '2024-01-01T00:00:00.000Z' })
const goodOrder = (id: string): Order => ({
  id,
  lines: [{ sku: 'x', qty: 2 }],
  at: new Date('2024-01-01T00:00:00.000Z'),
})
// Three problems: at the root's id, in the second line's qty (an array index), and in at.
const bad = JSON.stringify({
  id: 7,
  lines: [
    { sku: 'x', qty: 2 },
    { sku: 'y', qty: 0 },
  ],
  at: 'not a date',
})

/**
 * A validator under test: its order schema; the same with an asynchronous check of the id
 * (`known` answers after a while), for those that validate asynchronously; the same with a
 * transform that throws for id 'boom', and what that throw becomes.
 */
interface Validator {
  name: string
  order: StandardSchemaV1<unknown, Order>
  checked?: (known: (id: string) => Promise<boolean>) => StandardSchemaV1<unknown, Order>
  throwing: StandardSchemaV1<unknown, Order>
  /**
   * effect 4 turns a throw inside a schema into an issue (its message is the error with its
   * stack), so the record fails as a ValidationError, not retryable; the others throw or reject.
   */
  thrownAs: 'RecordError' | 'ValidationError'
  /** What a rejection in the asynchronous check becomes: the same, but for effect 3. */
  rejectedAs?: 'RecordError' | 'ValidationError'
  /**
   * zod tries a schema synchronously before it knows that a refinement is asynchronous, so the
   * first record's check runs twice (README, zod note).
   */
  firstRunsTwice?: true
}

const boom = <T extends { id: string }>(order: T): T => {
  if (order.id === 'boom') throw new Error('lookup service down')
  return order
}
const unknownOrder = 'unknown order'

const zod4Order = z.object({
  id: z.string(),
  lines: z.array(z.object({ sku: z.string(), qty: z.number().int().positive() })),
  at: z.iso.datetime().transform((text) => new Date(text)),
})
const zod3Order = z3.object({
  id: z3.string(),
  lines: z3.array(z3.object({ sku: z3.string(), qty: z3.number().int().positive() })),
  at: z3
    .string()
    .datetime()
    .transform((text) => new Date(text)),
})
const valibotOrder = v.object({
  id: v.string(),
  lines: v.array(
    v.object({ sku: v.string(), qty: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  ),
  at: v.pipe(
    v.string(),
    v.isoTimestamp(),
    v.transform((text) => new Date(text)),
  ),
})
const arktypeOrder = type({
  id: 'string',
  lines: type({ sku: 'string', qty: 'number.integer > 0' }).array(),
  at: 'string.date.iso.parse',
})
const effectOrder = S.Struct({
  id: S.String,
  lines: S.Array(S.Struct({ sku: S.String, qty: S.Int.check(S.isGreaterThan(0)) })),
  at: S.DateFromString,
})
const effect3Order = S3.Struct({
  id: S3.String,
  lines: S3.Array(S3.Struct({ sku: S3.String, qty: S3.Int.pipe(S3.positive()) })),
  at: S3.Date,
})
const yupOrder = yup.object({
  id: yup.string().strict().required(),
  lines: yup
    .array(
      yup.object({
        sku: yup.string().required(),
        qty: yup.number().integer().positive().required(),
      }),
    )
    .required(),
  at: yup.date().required(),
})

/** A Standard Schema written by hand, as a small in-house validator would be. */
function handWritten(
  check: (order: Order) => Order | Promise<boolean> = boom,
): StandardSchemaV1<unknown, Order> {
  const validate = (
    input: unknown,
  ): StandardSchemaV1.Result<Order> | Promise<StandardSchemaV1.Result<Order>> => {
    const issues: StandardSchemaV1.Issue[] = []
    const raw = (typeof input === 'object' && input !== null ? input : {}) as Record<
      string,
      unknown
    >
    if (typeof raw.id !== 'string') issues.push({ message: 'id must be text', path: ['id'] })
    const lines = Array.isArray(raw.lines) ? (raw.lines as Array<Record<string, unknown>>) : []
    for (const [i, line] of lines.entries()) {
      if (!(Number.isInteger(line.qty) && (line.qty as number) > 0)) {
        // The spec allows a path segment to be an object holding the key.
        issues.push({
          message: 'qty must be a positive integer',
          path: ['lines', { key: i }, 'qty'],
        })
      }
    }
    const at = new Date(String(raw.at))
    if (Number.isNaN(at.getTime())) issues.push({ message: 'at must be a date', path: ['at'] })
    if (issues.length > 0) return { issues }
    const order: Order = {
      id: raw.id as string,
      lines: lines.map((line) => ({ sku: String(line.sku), qty: line.qty as number })),
      at,
    }
    const checked = check(order)
    if (!(checked instanceof Promise)) return { value: checked }
    return checked.then((ok) =>
      ok ? { value: order } : { issues: [{ message: unknownOrder, path: ['id'] }] },
    )
  }
  return { '~standard': { version: 1, vendor: 'hand-written', validate } }
}

const validators: Validator[] = [
  {
    name: 'zod 4',
    order: zod4Order,
    checked: (known) =>
      zod4Order.refine((order) => known(order.id), { message: unknownOrder, path: ['id'] }),
    throwing: zod4Order.transform(boom),
    thrownAs: 'RecordError',
    firstRunsTwice: true,
  },
  {
    name: 'zod 3.25',
    order: zod3Order,
    checked: (known) =>
      zod3Order.refine((order) => known(order.id), { message: unknownOrder, path: ['id'] }),
    throwing: zod3Order.transform(boom),
    thrownAs: 'RecordError',
    firstRunsTwice: true,
  },
  {
    name: 'valibot 1',
    order: valibotOrder,
    checked: (known) =>
      v.pipeAsync(
        valibotOrder,
        v.checkAsync((order) => known(order.id), unknownOrder),
      ),
    throwing: v.pipe(valibotOrder, v.transform(boom)),
    thrownAs: 'RecordError',
  },
  {
    // arktype validates synchronously only.
    name: 'arktype 2',
    order: arktypeOrder,
    throwing: arktypeOrder.pipe((order) => boom(order)),
    thrownAs: 'RecordError',
  },
  {
    name: 'effect 4 (Schema.toStandardSchemaV1)',
    order: S.toStandardSchemaV1(effectOrder),
    checked: (known) =>
      S.toStandardSchemaV1(
        effectOrder.pipe(
          S.decode({
            decode: SchemaGetter.checkEffect((order: Order) =>
              Effect.promise(() => known(order.id)).pipe(
                Effect.map((ok) => (ok ? undefined : unknownOrder)),
              ),
            ),
            encode: SchemaGetter.passthrough(),
          }),
        ),
      ),
    throwing: S.toStandardSchemaV1(
      effectOrder.pipe(
        S.decode({ decode: SchemaGetter.transform(boom), encode: SchemaGetter.passthrough() }),
      ),
    ),
    thrownAs: 'ValidationError',
  },
  {
    name: 'effect 3 (Schema.standardSchemaV1)',
    order: S3.standardSchemaV1(effect3Order),
    checked: (known) =>
      S3.standardSchemaV1(
        S3.filterEffect(effect3Order, (order) =>
          Effect3.promise(() => known(order.id)).pipe(Effect3.map((ok) => ok || unknownOrder)),
        ),
      ),
    throwing: S3.standardSchemaV1(
      S3.transform(effect3Order, S3.typeSchema(effect3Order), {
        strict: true,
        decode: boom,
        encode: (order) => order,
      }),
    ),
    thrownAs: 'RecordError',
    // A rejection inside an effect is a defect, which effect 3 reports as an issue.
    rejectedAs: 'ValidationError',
  },
  {
    // yup answers every validation with a promise.
    name: 'yup 1.7',
    order: yupOrder,
    checked: (known) =>
      yupOrder.shape({
        id: yup
          .string()
          .strict()
          .required()
          .test('known', unknownOrder, (id) => known(id)),
      }),
    throwing: yupOrder.transform(boom),
    thrownAs: 'RecordError',
  },
  {
    name: 'a hand-written Standard Schema',
    order: handWritten(),
    checked: (known) => handWritten((order) => known(order.id)),
    throwing: handWritten(),
    thrownAs: 'RecordError',
  },
]

/** Runs the whole chain on `payloads`, one record each, and returns what the handler saw. */
async function run(
  schema: StandardSchemaV1<unknown, Order>,
  payloads: string[],
  validationConcurrency?: number,
) {
  const seen: Order[] = []
  const parse = jsonParse({ schema, ...(validationConcurrency ? { validationConcurrency } : {}) })
  const handler = middy(
    eachRecord<InferData<typeof parse>>((record) => {
      seen.push(record.data)
    }),
  )
    .use(kinesisDecode())
    .use(parse)
    .use(partialFailures({ logger: false }))
  const event = kinesisEvent(payloads.map((data) => ({ data, partitionKey: 'orders' })))
  const response = await handler(event, lambdaContext())
  const batch = getBatch<Order>(event)
  if (batch === undefined) throw new Error('kinesisDecode attaches the batch')
  return { seen, response, batch }
}

const named = (position: number) =>
  `record ${sequenceNumber(position)} of shardId-000000000006 (partition key "orders"): `

describe.each(validators)('jsonParse with $name', (validator) => {
  it('hands the record handler the output, transforms applied', async () => {
    const { seen, response } = await run(validator.order, [good('a'), good('b')])
    expect(response).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual([goodOrder('a'), goodOrder('b')])
    expect(seen[0]?.at).toBeInstanceOf(Date)
  })

  it('fails a mismatch alone, naming the record and every issue by its path', async () => {
    const { seen, response, batch } = await run(validator.order, [good('a'), bad, good('c')])
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(seen).toEqual([goodOrder('a')])
    expect(batch.records[2]?.data).toEqual(goodOrder('c'))
    const error = batch.errors.get(1) as ValidationError
    expect(error.name).toBe('ValidationError')
    expect(error.retryable).toBe(false)
    expect(error.message.startsWith(`${named(1)}does not match the schema: `)).toBe(true)
    for (const path of ['id: ', 'lines.1.qty: ', 'at: ']) expect(error.message).toContain(path)
    // Array indices are numbers in every validator but yup, whose paths are text.
    const paths = error.issues.map((issue) => issue.path.map(String).join('.'))
    expect(paths.sort()).toEqual(['at', 'id', 'lines.1.qty'])
  })

  it('fails a record whose schema throws alone', async () => {
    const { seen, response, batch } = await run(validator.throwing, [good('a'), good('boom')])
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
    expect(seen).toEqual([goodOrder('a')])
    const error = batch.errors.get(1)
    expect(error?.name).toBe(validator.thrownAs)
    expect(error?.message).toContain('lookup service down')
    expect(error?.message.startsWith(named(1))).toBe(true)
    // A throw says nothing about the record, so it is retried; effect reports it as an issue.
    expect(error?.retryable).toBe(validator.thrownAs === 'RecordError')
  })
})

describe.each(validators.filter((validator) => validator.checked !== undefined))(
  'jsonParse with $name and an asynchronous check',
  (validator) => {
    it('checks each record once, at most validationConcurrency at a time, and fails the rejected alone', async () => {
      let inFlight = 0
      let most = 0
      const calls = new Map<string, number>()
      const known = async (id: string) => {
        calls.set(id, (calls.get(id) ?? 0) + 1)
        most = Math.max(most, ++inFlight)
        await new Promise((resolve) => setTimeout(resolve, 2 + (id.length % 3)))
        inFlight--
        return id !== 'order-7'
      }
      const schema = validator.checked?.(known)
      if (schema === undefined) throw new Error('filtered on checked')
      const ids = Array.from({ length: 20 }, (_, i) => `order-${i}`)
      const { seen, response, batch } = await run(schema, ids.map(good), 3)
      const twice = validator.firstRunsTwice ? 1 : 0
      expect(most).toBeGreaterThanOrEqual(3)
      expect(most).toBeLessThanOrEqual(3 + twice)
      const called = ids.map((id) => calls.get(id) ?? 0)
      expect(called.slice(0, 8)).toEqual(
        called.slice(0, 8).map((_, i) => (i === 0 ? 1 + twice : 1)),
      )
      expect(seen).toEqual(ids.slice(0, 7).map(goodOrder))
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(7) }] })
      expect(batch.errors.get(7)?.message).toContain(unknownOrder)
      // Records are validated at their turn in the loop, under its timeout guard, at most
      // validationConcurrency ahead of it: the ones after the failed record that the loop never
      // reached are not (they come again), and none is validated twice.
      expect(called.slice(8).every((n) => n <= 1)).toBe(true)
      expect(calls.has('order-19')).toBe(false)
      expect(batch.records[19]?.data).toBeInstanceOf(Uint8Array)
    })

    it('fails a record whose check rejects alone, retryable', async () => {
      const known = async (id: string) => {
        await new Promise((resolve) => setTimeout(resolve, 1))
        if (id === 'boom') throw new Error('lookup service down')
        return true
      }
      const schema = validator.checked?.(known)
      if (schema === undefined) throw new Error('filtered on checked')
      const { seen, batch } = await run(schema, [good('a'), good('boom'), good('c')])
      expect(seen).toEqual([goodOrder('a')])
      const error = batch.errors.get(1)
      expect(error?.name).toBe(validator.rejectedAs ?? validator.thrownAs)
      expect(error?.message).toContain('lookup service down')
    })
  },
)
