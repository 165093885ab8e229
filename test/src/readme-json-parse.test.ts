/**
 * The sample of packages/json-parse/README.md, as written there (only the helper it leaves out is
 * declared here), compiled by the typecheck and run on events.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { describe, expect, expectTypeOf, it, vi } from 'vitest'
import { z } from 'zod'

describe('README: Sample usage', () => {
  it('compiles, hands save() the typed output and fails a mismatch alone', async () => {
    const saved: Array<{ orderId: string; quantity: number; placedAt: Date }> = []
    const save = async (order: { orderId: string; quantity: number; placedAt: Date }) => {
      saved.push(order)
    }
    // ---- the sample
    const parse = jsonParse({
      schema: z.object({
        orderId: z.string(),
        quantity: z.number().int().positive(),
        placedAt: z.iso.datetime().transform((text) => new Date(text)),
      }),
    })

    const handler = middy(
      eachRecord(parse, async (record) => {
        // record.data is { orderId: string; quantity: number; placedAt: Date }
        await save(record.data)
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: new Logger() }))
    // ----
    expectTypeOf<InferData<typeof parse>>().toEqualTypeOf<{
      orderId: string
      quantity: number
      placedAt: Date
    }>()
    const logged = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => {})
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {})
    const order = (orderId: string, quantity: number) =>
      JSON.stringify({ orderId, quantity, placedAt: '2026-11-25T12:00:00Z' })
    const event = kinesisEvent([
      { data: order('a', 1) },
      { data: order('b', 0) },
      { data: order('c', 2) },
    ])
    expect(await handler(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(saved).toEqual([
      { orderId: 'a', quantity: 1, placedAt: new Date('2026-11-25T12:00:00Z') },
    ])
    const [, detail] = logged.mock.calls[0] ?? []
    expect(detail).toMatchObject({ stage: 'validation', errorName: 'ValidationError' })
    expect((detail as { errorMessage: string }).errorMessage).toContain(
      'does not match the schema: quantity: Too small',
    )
  })
})

describe('README: Numbers beyond 2^53', () => {
  it('compiles and keeps a 64-bit id exact', async () => {
    const seen: bigint[] = []
    // ---- the sample
    const parse = jsonParse({
      reviver: (_key, value, { source }) =>
        typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(source ?? '')
          ? BigInt(source as string)
          : value,
      schema: z.object({ id: z.bigint() }),
    })
    // ----
    const handler = middy(
      eachRecord<InferData<typeof parse>>((record) => {
        seen.push(record.data.id)
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent([{ data: '{"id":12345678901234567890}' }])
    expect(await handler(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual([12345678901234567890n])
  })
})
