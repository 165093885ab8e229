/**
 * Type tests, checked by `tsc` in the typecheck task: the declared record type reaches the record
 * handler with no cast, and a real GlueClient fits the registry's client option.
 */
import { GlueClient } from '@aws-sdk/client-glue'
import middy from '@middy/core'
import type { KinesisRecord, KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import avro from 'avsc'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type AvroParser,
  avroParse,
  confluentSchemaRegistry,
  glueSchemaRegistry,
  type InferData,
  type SchemaRegistry,
} from './index.js'

interface Order {
  id: string
  quantity: number
}

describe('avroParse types', () => {
  it('carries the declared type to the record handler', () => {
    const parse = avroParse<Order>({
      registry: confluentSchemaRegistry({ url: 'http://127.0.0.1:8081' }),
      readerSchema: { type: 'record', name: 'Order', fields: [] },
    })
    expectTypeOf(parse).toEqualTypeOf<AvroParser<Order>>()
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<Order>()
    const handler = middy(
      eachRecord<InferData<typeof parse>>((record) => {
        expectTypeOf(record).toEqualTypeOf<KinesisRecord<Order>>()
        expectTypeOf(record.data.quantity).toEqualTypeOf<number>()
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    expectTypeOf<KinesisStreamEvent>().toExtend<Parameters<typeof handler>[0]>()
  })

  it('eachRecord(parse, handler) types record.data by the parser, and refuses another type', () => {
    const parse = avroParse<Order>({ schema: { type: 'record', name: 'Order', fields: [] } })
    eachRecord(parse, (record) => {
      expectTypeOf(record).toEqualTypeOf<KinesisRecord<Order>>()
      expectTypeOf(record.data.quantity).toEqualTypeOf<number>()
    })
    const misuse = () => {
      // @ts-expect-error: the handler expects another record type than the parser makes
      eachRecord(parse, (record: KinesisRecord<{ totallyDifferent: Date }>) => record)
    }
    expectTypeOf(misuse).toBeFunction()
    eachRecord(avroParse({ schema: avro.Type.forSchema('string') }), (record) => {
      expectTypeOf(record.data).toEqualTypeOf<unknown>()
    })
  })

  it('types data as unknown unless told', () => {
    const parse = avroParse({ schema: avro.Type.forSchema('string') })
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<unknown>()
  })

  it('takes a GlueClient as the Glue registry client', () => {
    const registry = glueSchemaRegistry({ client: new GlueClient({ region: 'eu-west-1' }) })
    expectTypeOf(registry).toEqualTypeOf<SchemaRegistry>()
    const misuse = () => {
      // @ts-expect-error: options are required
      avroParse()
      // @ts-expect-error: a registry needs its url
      confluentSchemaRegistry({})
    }
    expectTypeOf(misuse).toBeFunction()
  })
})
