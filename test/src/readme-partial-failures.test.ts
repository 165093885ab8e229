/**
 * The samples of packages/partial-failures/README.md, as written there (only the helpers they
 * leave out are declared here), compiled by the typecheck and run on events.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  foldWindow,
  type KinesisRecord,
  partialFailures,
} from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it, vi } from 'vitest'
import { z } from 'zod'

describe('README: Sample usage', () => {
  it('compiles and answers the first record that save() refused', async () => {
    const saved: string[] = []
    const save = async (data: Uint8Array, _options: { signal: AbortSignal }) => {
      const text = Buffer.from(data).toString()
      if (text === 'refused') throw new Error('refused')
      saved.push(text)
    }
    // ---- the sample
    const logger = new Logger({ serviceName: 'orders' })

    const handler = middy(
      eachRecord(async (record, _context, { signal }) => {
        await save(record.data, { signal })
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    // ----
    vi.spyOn(logger, 'error').mockImplementation(() => {})
    vi.spyOn(logger, 'warn').mockImplementation(() => {})
    const event = kinesisEvent([{ data: 'a' }, { data: 'refused' }, { data: 'c' }])
    expect(await handler(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(saved).toEqual(['a'])
  })
})

describe('README: foldWindow', () => {
  it('compiles, folds the window and hands each part to onWindowEnd', async () => {
    const Order = z.object({ id: z.string(), amount: z.number() })
    type Order = z.infer<typeof Order>
    interface Totals {
      orders: number
      amount: number
    }
    const add = (totals: Totals, order: Order): Totals => ({
      orders: totals.orders + 1,
      amount: totals.amount + order.amount,
    })
    const kept = new Map<string, Totals>()
    const addToTotals = (start: string, part: Totals) => {
      const before = kept.get(start) ?? { orders: 0, amount: 0 }
      kept.set(start, { orders: before.orders + part.orders, amount: before.amount + part.amount })
    }
    // ---- the sample
    const parse = jsonParse({ schema: Order })
    const handler = middy(
      foldWindow(parse, (totals: Totals, record) => add(totals, record.data), {
        initialState: () => ({ orders: 0, amount: 0 }),
        onWindowEnd: (totals, window) => addToTotals(window.start, totals),
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    // ----
    const event = {
      ...kinesisEvent([
        { data: JSON.stringify({ id: 'a', amount: 3 }) },
        { data: JSON.stringify({ id: 'b', amount: 4 }) },
      ]),
      window: { start: '2020-12-09T07:04:00Z', end: '2020-12-09T07:06:00Z' },
      state: {},
      shardId: 'shardId-000000000006',
      isFinalInvokeForWindow: true,
      isWindowTerminatedEarly: false,
    }
    vi.spyOn(console, 'debug').mockImplementation(() => {})
    expect(await handler(event, lambdaContext())).toEqual({
      batchItemFailures: [],
      state: { orders: 2, amount: 7 },
    })
    expect(kept.get('2020-12-09T07:04:00Z')).toEqual({ orders: 2, amount: 7 })
  })
})

describe('README: eachRecord', () => {
  it('types record.data with eachRecord<T>(...) or by annotating the parameter', async () => {
    interface Order {
      id: string
    }
    const seen: string[] = []
    const parse = jsonParse()
    const byArgument = middy(
      eachRecord<Order>(async (record) => {
        seen.push(record.data.id)
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const byParameter = middy(
      eachRecord(async (record: KinesisRecord<Order>) => {
        seen.push(record.data.id)
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const event = () => kinesisEvent([{ data: '{"id":"a"}' }])
    await byArgument(event(), lambdaContext())
    await byParameter(event(), lambdaContext())
    expect(seen).toEqual(['a', 'a'])
  })
})

describe('README: eachRecord(parse, handler)', () => {
  it('types record.data by the parser, and a chain without the parser throws before any record runs', async () => {
    const Order = z.object({ id: z.string() })
    const saved: string[] = []
    const save = async (order: { id: string }) => {
      saved.push(order.id)
    }
    // ---- the sample
    const parse = jsonParse({ schema: Order })
    const handler = middy(eachRecord(parse, async (record) => save(record.data)))
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures())
    // ----
    const event = () => kinesisEvent([{ data: '{"id":"a"}' }])
    expect(await handler(event(), lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(saved).toEqual(['a'])
    const withoutParse = middy(eachRecord(parse, async (record) => save(record.data)))
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    await expect(withoutParse(event(), lambdaContext())).rejects.toThrow(
      'eachRecord(parse, ...) was given jsonParse({ schema }) of @shardwise/json-parse, which did not run on this batch',
    )
    expect(saved).toEqual(['a'])
  })
})
