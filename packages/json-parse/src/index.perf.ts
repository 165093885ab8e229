/**
 * Parse speed against the hand-written loop DESIGN.md measures peers by (base64 done, then
 * toString + JSON.parse in a try/catch), with and without a zod schema.
 * Run with `npx -y pnpm@12.4.2 --filter @shardwise/json-parse bench` (after a build: it measures `dist`).
 *
 * One Lambda batch: 10,000 records of ~150-byte JSON; only the parse step is timed.
 */

import { getBatch, type KinesisRecord, type RecordBatch } from '@shardwise/core'
import { type JsonParser, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { printMedians } from '@shardwise/test-internals'
import { kinesisEvent } from '@shardwise/testing'
import { Bench } from 'tinybench'
import { z } from 'zod'

const RECORDS = 10_000

const Order = z.object({
  orderId: z.string(),
  customer: z.string(),
  amount: z.number().int(),
  currency: z.enum(['EUR', 'USD']),
  items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })),
  at: z.string(),
})

const event = kinesisEvent(
  Array.from({ length: RECORDS }, (_, i) => ({
    data: JSON.stringify({
      orderId: `order-${i.toString().padStart(8, '0')}`,
      customer: `customer-${i % 997}`,
      amount: (i * 7919) % 100_000,
      currency: 'EUR',
      items: [{ sku: `sku-${i % 31}`, quantity: 1 + (i % 5) }],
      at: '2026-11-25T12:00:00.000Z',
    }),
  })),
)
kinesisDecode().before?.({ event } as never)
const batch = getBatch(event) as RecordBatch<unknown>
const bytes = batch.records.map((record) => record.data as Uint8Array)

/** Puts the decoded bytes back, so every iteration parses the same batch. */
function reset() {
  const { records } = batch
  for (let i = 0; i < records.length; i++) (records[i] as KinesisRecord<unknown>).data = bytes[i]
  batch.status.fill(0)
  batch.errors.clear()
}

let sink = 0

function handLoop(validate: boolean) {
  for (const record of batch.records) {
    const data = record.data as Uint8Array
    try {
      const value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.length).toString())
      if (validate) {
        const result = Order.safeParse(value)
        if (result.success) record.data = result.data
      } else {
        record.data = value
      }
    } catch {
      sink--
    }
  }
  sink++
}

function ours<T>(parser: JsonParser<T>) {
  parser.before?.({ event } as never)
  sink++
}

const plain = jsonParse()
const withZod = jsonParse({ schema: Order })
const bench = new Bench({ time: 2000, warmup: true })
bench
  .add('hand loop: JSON.parse', () => handLoop(false), { beforeEach: reset })
  .add('jsonParse()', () => ours(plain), { beforeEach: reset })
  .add('hand loop: JSON.parse + zod safeParse', () => handLoop(true), { beforeEach: reset })
  .add('jsonParse({ schema: zod })', () => ours(withZod), { beforeEach: reset })

await bench.run()

console.log(`${RECORDS} records of ~150-byte JSON per batch (${process.version})`)
printMedians(bench, RECORDS)
if (sink === 0) console.log('nothing parsed')
