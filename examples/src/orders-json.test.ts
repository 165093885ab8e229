import { invoke, kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { beforeEach, describe, expect, it } from 'vitest'
import { handler, saved } from './orders-json.js'

const json = (value: unknown) => Buffer.from(JSON.stringify(value))

const order = (orderId: string, quantity: number) => ({
  orderId,
  customerId: 'c-7',
  lines: [{ sku: 'TEA-1', quantity, unitPrice: 4.5 }],
  placedAt: '2026-11-25T09:30:00Z',
})

describe('the JSON orders handler', () => {
  beforeEach(() => {
    saved.length = 0
  })

  it('saves every valid order with its total and a Date', async () => {
    const event = kinesisEvent([{ data: json(order('o-1', 2)) }, { data: json(order('o-2', 1)) }])
    const response = await handler(event, lambdaContext(60_000, 'orders-json'))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(saved).toEqual([
      { orderId: 'o-1', total: 9, placedAt: new Date('2026-11-25T09:30:00Z') },
      { orderId: 'o-2', total: 4.5, placedAt: new Date('2026-11-25T09:30:00Z') },
    ])
  })

  it('reports the first order that is not valid, and saves the ones before it', async () => {
    const event = kinesisEvent([
      { data: json(order('o-1', 2)) },
      { data: json({ ...order('o-2', 0), placedAt: 'yesterday' }) },
      { data: '{"orderId": "o-3", ' },
      { data: json(order('o-4', 1)) },
    ])
    const response = await handler(event, lambdaContext(60_000, 'orders-json'))
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]?.kinesis.sequenceNumber }],
    })
    expect(saved.map((saved) => saved.orderId)).toEqual(['o-1'])
  })

  it('as Lambda sees it: the orders before the bad one are done, the rest come again', async () => {
    const event = kinesisEvent([
      { json: order('o-1', 2) },
      { json: { ...order('o-2', 0), placedAt: 'yesterday' } },
      { json: order('o-3', 1) },
    ])
    const { verdict } = await invoke(handler, event, lambdaContext(60_000, 'orders-json'))
    expect(verdict.done).toEqual([sequenceNumber(0)])
    expect(verdict.retried).toEqual([sequenceNumber(1), sequenceNumber(2)])
  })
})
