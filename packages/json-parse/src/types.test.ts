/**
 * Type tests, checked by `tsc` in the typecheck task: a schema's output type reaches the record
 * handler with no cast.
 */
import middy from '@middy/core'
import type { KinesisRecord, KinesisStreamEvent, RecordParser } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, foldWindow, partialFailures } from '@shardwise/partial-failures'
import { type } from 'arktype'
import * as v from 'valibot'
import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import { type InferData, type JsonParser, jsonParse } from './index.js'

describe('jsonParse types', () => {
  it('types record.data by the zod output, transforms and defaults included', () => {
    const Order = z.object({
      id: z.string(),
      placedAt: z.iso.datetime().transform((text) => new Date(text)),
      note: z.string().default(''),
    })
    const parse = jsonParse({ schema: Order })
    expectTypeOf(parse).toEqualTypeOf<JsonParser<{ id: string; placedAt: Date; note: string }>>()
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<z.output<typeof Order>>()

    const handler = middy(
      eachRecord<InferData<typeof parse>>(async (record) => {
        expectTypeOf(record).toEqualTypeOf<KinesisRecord<z.output<typeof Order>>>()
        expectTypeOf(record.data.placedAt).toEqualTypeOf<Date>()
        expectTypeOf(record.data.note).toEqualTypeOf<string>()
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    // The handler still takes the plain event Lambda sends.
    expectTypeOf(handler).parameter(0).toExtend<KinesisStreamEvent>()
    expectTypeOf<KinesisStreamEvent>().toExtend<Parameters<typeof handler>[0]>()
  })

  it('types record.data by the valibot output', () => {
    const Order = v.object({
      id: v.string(),
      quantity: v.pipe(v.string(), v.transform(Number)),
      tags: v.optional(v.array(v.string()), []),
    })
    const parse = jsonParse({ schema: Order })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<{
      id: string
      quantity: number
      tags: string[]
    }>()
    eachRecord<InferData<typeof parse>>((record) => {
      expectTypeOf(record.data.quantity).toEqualTypeOf<number>()
      // @ts-expect-error: the schema has no such field
      record.data.total
    })
  })

  it('types record.data by the arktype output', () => {
    const parse = jsonParse({ schema: type({ id: 'string', at: 'string.date.iso.parse' }) })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<{ id: string; at: Date }>()
  })

  it('types record.data as unknown without a schema', () => {
    const parse = jsonParse()
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<unknown>()
    expectTypeOf(jsonParse({})).toEqualTypeOf<JsonParser<unknown>>()
  })

  it('eachRecord(parse, handler) types record.data by the parser, with no generic to repeat', () => {
    const Order = z.object({
      id: z.string(),
      placedAt: z.iso.datetime().transform((text) => new Date(text)),
    })
    const parse = jsonParse({ schema: Order })
    const handler = middy(
      eachRecord(parse, async (record) => {
        expectTypeOf(record).toEqualTypeOf<KinesisRecord<{ id: string; placedAt: Date }>>()
        expectTypeOf(record.data.placedAt).toEqualTypeOf<Date>()
        // @ts-expect-error: the schema has no such field
        record.data.total
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    expectTypeOf<KinesisStreamEvent>().toExtend<Parameters<typeof handler>[0]>()

    // Without a schema, the parsed JSON: unknown until the handler narrows it.
    eachRecord(jsonParse(), (record) => {
      expectTypeOf(record.data).toEqualTypeOf<unknown>()
    })
    // The options still come last.
    eachRecord(parse, async () => {}, { ordering: 'partitionKey', concurrency: 4 })
  })

  it('eachRecord(parse, handler) refuses a handler typed for something else', () => {
    const parse = jsonParse({ schema: z.object({ id: z.string() }) })
    // Never called: only the compiler's verdict matters here.
    const misuse = () => {
      // @ts-expect-error: the handler expects another record type than the parser makes
      eachRecord(parse, async (record: KinesisRecord<{ totallyDifferent: Date }>) => record)
      // @ts-expect-error: a generic that contradicts the parser
      eachRecord<{ totallyDifferent: Date }>(parse, async () => {})
      // @ts-expect-error: no parser but a bare schema
      eachRecord(z.object({ id: z.string() }), async () => {})
      // @ts-expect-error: a middleware that is not a parser
      eachRecord(kinesisDecode(), async () => {})
    }
    expectTypeOf(misuse).toBeFunction()
  })

  it('foldWindow(parse, reduce, options) types the record by the parser too', () => {
    const parse = jsonParse({ schema: z.object({ cents: z.number() }) })
    foldWindow(
      parse,
      (state, record) => {
        expectTypeOf(record.data).toEqualTypeOf<{ cents: number }>()
        return { total: state.total + record.data.cents }
      },
      { initialState: () => ({ total: 0 }) },
    )
    const misuse = () => {
      foldWindow(
        parse,
        // @ts-expect-error: the reduce expects another record type than the parser makes
        (state, record: KinesisRecord<{ euros: string }>) => ({
          total: state.total + record.data.euros.length,
        }),
        { initialState: () => ({ total: 0 }) },
      )
    }
    expectTypeOf(misuse).toBeFunction()
  })

  it('the parser carries its output type on the instance, for InferData and eachRecord', () => {
    const parse = jsonParse({ schema: v.object({ n: v.number() }) })
    expectTypeOf(parse).toExtend<RecordParser<{ n: number }>>()
    expectTypeOf(parse).not.toExtend<RecordParser<{ n: string }>>()
  })

  it('refuses what is not a Standard Schema', () => {
    // Never called: only the compiler's verdict matters here.
    const misuse = () => {
      // @ts-expect-error: a plain function is no Standard Schema
      jsonParse({ schema: (value: unknown) => value })
      // @ts-expect-error: unknown option
      jsonParse({ schemas: z.string() })
    }
    expectTypeOf(misuse).toBeFunction()
  })
})
