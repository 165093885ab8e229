/**
 * Type tests, checked by `tsc` in the typecheck task: with every Standard Schema validator, the
 * schema's output type (not its input) reaches `eachRecord` and `foldWindow` through
 * `InferData`, with no cast and no `any`; wrong options are compile errors.
 */
import middy from '@middy/core'
import type { RecordError, ValidationError, ValidationIssue } from '@shardwise/core'
import {
  type InferData,
  type JsonParseOptions,
  type JsonParser,
  jsonParse,
  type StandardSchemaV1,
} from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  foldWindow,
  type KinesisRecord,
  partialFailures,
} from '@shardwise/partial-failures'
import { type } from 'arktype'
import { Schema as S } from 'effect'
import { Schema as S3 } from 'effect-3'
import * as v from 'valibot'
import { describe, expectTypeOf, it } from 'vitest'
import * as yup from 'yup'
import { z } from 'zod'
import { z as z3 } from 'zod-3'

/** Each schema reads `at` as ISO text and hands on a Date, and `n` as text and hands on a number. */
interface Out {
  at: Date
  n: number
}

/** The record handler of each parser sees its output type (toEqualTypeOf above refuses any). */
function handlerSees<T>(parse: JsonParser<T>) {
  return middy(
    eachRecord<InferData<typeof parse>>((record) => {
      expectTypeOf(record).toEqualTypeOf<KinesisRecord<T>>()
    }),
  )
    .use(kinesisDecode())
    .use(parse)
    .use(partialFailures())
}

describe('InferData is the output type of every validator', () => {
  it('zod 4', () => {
    const schema = z.object({
      at: z.iso.datetime().transform((text) => new Date(text)),
      n: z.string().transform(Number),
    })
    const parse = jsonParse({ schema })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    expectTypeOf<z.input<typeof schema>>().toEqualTypeOf<{ at: string; n: string }>()
    handlerSees(parse)
  })

  it('zod 3.25', () => {
    const parse = jsonParse({
      schema: z3.object({
        at: z3
          .string()
          .datetime()
          .transform((text) => new Date(text)),
        n: z3.string().transform(Number),
      }),
    })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    handlerSees(parse)
  })

  it('valibot 1, async pipes included', () => {
    const parse = jsonParse({
      schema: v.pipeAsync(
        v.object({
          at: v.pipe(
            v.string(),
            v.isoTimestamp(),
            v.transform((text) => new Date(text)),
          ),
          n: v.pipe(v.string(), v.transform(Number)),
        }),
        v.checkAsync(async () => true),
      ),
    })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    handlerSees(parse)
  })

  it('arktype 2', () => {
    const parse = jsonParse({
      schema: type({ at: 'string.date.iso.parse', n: 'string.numeric.parse' }),
    })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    handlerSees(parse)
  })

  it('effect 4 and effect 3', () => {
    const parse = jsonParse({
      schema: S.toStandardSchemaV1(S.Struct({ at: S.DateFromString, n: S.NumberFromString })),
    })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<{
      readonly at: Date
      readonly n: number
    }>()
    handlerSees(parse)
    const parse3 = jsonParse({
      schema: S3.standardSchemaV1(S3.Struct({ at: S3.Date, n: S3.NumberFromString })),
    })
    expectTypeOf<InferData<typeof parse3>>().toEqualTypeOf<{
      readonly at: Date
      readonly n: number
    }>()
    handlerSees(parse3)
  })

  it('yup 1.7', () => {
    const parse = jsonParse({
      schema: yup.object({ at: yup.date().required(), n: yup.number().required() }),
    })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    handlerSees(parse)
  })

  it('a hand-written Standard Schema', () => {
    const schema: StandardSchemaV1<{ at: string; n: string }, Out> = {
      '~standard': {
        version: 1,
        vendor: 'hand-written',
        validate: (value) => {
          const { at, n } = value as { at: string; n: string }
          return { value: { at: new Date(at), n: Number(n) } }
        },
      },
    }
    const parse = jsonParse({ schema })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Out>()
    handlerSees(parse)
  })
})

describe('without a schema, and with foldWindow', () => {
  it('types record.data as unknown without a schema, never any', () => {
    const parse = jsonParse()
    expectTypeOf<InferData<typeof parse>>().toBeUnknown()
    expectTypeOf(jsonParse({ validationConcurrency: 3 })).toEqualTypeOf<JsonParser<unknown>>()
    middy(
      eachRecord<InferData<typeof parse>>((record) => {
        expectTypeOf(record.data).toBeUnknown()
      }),
    )
  })

  it('without a type argument, eachRecord types record.data as the bytes kinesisDecode makes', () => {
    // middy builds the handler before .use() sees the parser, so nothing carries the parser's
    // type back to it: give InferData<typeof parse> (or annotate the record parameter).
    middy(
      eachRecord((record) => {
        expectTypeOf(record.data).toEqualTypeOf<Uint8Array>()
      }),
    )
  })

  it('types foldWindow records by the schema output', () => {
    const parse = jsonParse({
      schema: z.object({ amount: z.string().transform(Number), id: z.string() }),
    })
    type Order = InferData<typeof parse>
    const handler = middy(
      foldWindow(
        (total: { amount: number }, record: KinesisRecord<Order>) => {
          expectTypeOf(record.data.amount).toEqualTypeOf<number>()
          return { amount: total.amount + record.data.amount }
        },
        {
          initialState: () => ({ amount: 0 }),
          onWindowEnd: (total) => {
            expectTypeOf(total).toEqualTypeOf<{ amount: number }>()
          },
        },
      ),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    expectTypeOf(handler).returns.resolves.toHaveProperty('state')
  })
})

describe('no any in what a user touches, and wrong options do not compile', () => {
  it('types errors and issues', () => {
    expectTypeOf<ValidationError['issues']>().toEqualTypeOf<ReadonlyArray<ValidationIssue>>()
    expectTypeOf<ValidationIssue['path']>().toEqualTypeOf<ReadonlyArray<PropertyKey>>()
    expectTypeOf<RecordError['cause']>().toBeUnknown()
    expectTypeOf<JsonParseOptions['validationConcurrency']>().toEqualTypeOf<number | undefined>()
  })

  it('refuses options of the wrong type', () => {
    // Never called: only the compiler's verdict matters here.
    const misuse = () => {
      // @ts-expect-error: a number, not text
      jsonParse({ validationConcurrency: '10' })
      // @ts-expect-error: a reviver's keys are text
      jsonParse({ reviver: (key: number) => key })
      jsonParse({
        reviver: (key, value, context) => {
          expectTypeOf(key).toBeString()
          expectTypeOf(value).toBeUnknown()
          expectTypeOf(context.source).toEqualTypeOf<string | undefined>()
          return value
        },
      })
      // @ts-expect-error: a zod schema's parse method is no Standard Schema
      jsonParse({ schema: z.string().parse })
      // @ts-expect-error: the schema goes in the options
      jsonParse(z.object({ id: z.string() }))
      // @ts-expect-error: a yup schema's validate method is no Standard Schema
      jsonParse({ schema: { validate: yup.string().validate } })
      const parse = jsonParse({ schema: z.object({ id: z.string() }) })
      eachRecord<InferData<typeof parse>>((record) => {
        // @ts-expect-error: the schema has no such field
        record.data.total
      })
    }
    expectTypeOf(misuse).toBeFunction()
  })
})
