/**
 * Type tests, checked by `tsc` in the typecheck task: a schema's output type reaches the record
 * handler with no cast.
 */
import middy from '@middy/core'
import type { KinesisRecord, KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
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
