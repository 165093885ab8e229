/**
 * De-aggregation speed against aws-kinesis-agg's `deaggregateSync` with checksums on.
 * Run with `pnpm --filter @shardwise/kinesis-decode bench` (after a build: it measures `dist`).
 *
 * One Lambda batch: 100 KPL aggregates of 100 user records each, ~150-byte JSON payloads.
 */

import type { KinesisStreamEvent } from '@shardwise/core'
import { decodeEvent } from '@shardwise/kinesis-decode'
import { printMedians } from '@shardwise/test-internals'
import { Bench } from 'tinybench'
import { kinesisEvent, lambdaRecord, peer, peerAggregates } from './kpl.fixture.ts'

const CARRIERS = 100
const PER_CARRIER = 100
const USER_RECORDS = CARRIERS * PER_CARRIER

function payload(i: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      orderId: `order-${i.toString().padStart(8, '0')}`,
      customer: `customer-${i % 997}`,
      amount: (i * 7919) % 100_000,
      currency: 'EUR',
      items: [{ sku: `sku-${i % 31}`, quantity: 1 + (i % 5) }],
      at: '2026-11-25T12:00:00.000Z',
    }),
  )
}

const aggregates: Buffer[] = []
for (let c = 0; c < CARRIERS; c++) {
  const userRecords = Array.from({ length: PER_CARRIER }, (_, u) => {
    const i = c * PER_CARRIER + u
    return { partitionKey: `customer-${i % 997}`, data: payload(i) }
  })
  aggregates.push(...peerAggregates(userRecords))
}
const event: KinesisStreamEvent = kinesisEvent(...aggregates.map((a) => lambdaRecord(a)))
const records = event.Records

let sink = 0

function peerDeaggregate(parse: boolean): void {
  for (const record of records) {
    peer.deaggregateSync(record.kinesis, true, (error, userRecords) => {
      if (error || userRecords === undefined) throw error
      for (const userRecord of userRecords) {
        sink += parse
          ? JSON.parse(Buffer.from(userRecord.data, 'base64').toString('utf8')).amount
          : userRecord.data.length
      }
    })
  }
}

function ourDecode(parse: boolean): void {
  const batch = decodeEvent(event)
  if (batch.records.length !== USER_RECORDS) throw new Error('lost records')
  for (const record of batch.records) {
    sink += parse
      ? JSON.parse(
          Buffer.from(record.data.buffer, record.data.byteOffset, record.data.length).toString(
            'utf8',
          ),
        ).amount
      : record.data.length
  }
}

const bench = new Bench({ time: 2000, warmup: true })
bench
  .add('aws-kinesis-agg deaggregateSync (checksums)', () => peerDeaggregate(false))
  .add('kinesisDecode decodeEvent', () => ourDecode(false))
  .add('aws-kinesis-agg deaggregateSync (checksums) + JSON.parse', () => peerDeaggregate(true))
  .add('kinesisDecode decodeEvent + JSON.parse', () => ourDecode(true))

await bench.run()

console.log(`${USER_RECORDS} user records in ${CARRIERS} aggregates per batch (${process.version})`)
printMedians(bench, USER_RECORDS, 'user record')
if (sink === 0) console.log('nothing decoded')
