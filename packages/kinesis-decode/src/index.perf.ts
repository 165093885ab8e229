/**
 * De-aggregation speed against aws-kinesis-agg's `deaggregateSync` with checksums on.
 * Run with `pnpm --filter @shardwise/kinesis-decode bench` (after a build: it measures `dist`).
 *
 * One Lambda batch: 100 KPL aggregates of 100 user records each, ~150-byte JSON payloads.
 */

import { createRequire } from 'node:module'
import type { KinesisStreamEvent, KinesisStreamRecord } from '@shardwise/core'
import { decodeEvent } from '@shardwise/kinesis-decode'
import { Bench } from 'tinybench'

interface PeerUserRecord {
  data: string
}
interface Peer {
  RecordAggregator: new () => {
    addUserRecord(record: { partitionKey: string; data: Buffer }): void
    build(): { data: Buffer }
  }
  deaggregateSync(
    record: KinesisStreamRecord['kinesis'],
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: PeerUserRecord[]) => void,
  ): void
}
const peer = createRequire(import.meta.url)('aws-kinesis-agg') as Peer

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

const records: KinesisStreamRecord[] = []
for (let c = 0; c < CARRIERS; c++) {
  const aggregator = new peer.RecordAggregator()
  for (let u = 0; u < PER_CARRIER; u++) {
    const i = c * PER_CARRIER + u
    aggregator.addUserRecord({ partitionKey: `customer-${i % 997}`, data: payload(i) })
  }
  const sequenceNumber = String(
    49590338271490256608559692538361571095921575989136588898n + BigInt(c),
  )
  records.push({
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: 'carrier',
      sequenceNumber,
      data: aggregator.build().data.toString('base64'),
      approximateArrivalTimestamp: 1545084650.987,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `shardId-000000000006:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'us-east-2',
    eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
  })
}
const event: KinesisStreamEvent = { Records: records }

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
console.table(
  bench.tasks.map((task) => {
    const result = task.result as { latency?: { p50?: number; mean?: number } } | undefined
    const median = result?.latency?.p50 ?? Number.NaN
    return {
      task: task.name,
      'ms per batch (median)': median.toFixed(2),
      'ns per user record': Math.round((median * 1e6) / USER_RECORDS),
    }
  }),
)
if (sink === 0) console.log('nothing decoded')
