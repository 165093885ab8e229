/**
 * `pnpm perf`: the record loop on one 10,000-record batch, in each ordering mode, with a record
 * handler that does nothing, so what is measured is eachRecord's own cost per record. Runs the
 * built package: build first (`pnpm build`).
 */
import type { Context, KinesisStreamEvent } from '@shardwise/core'
import { decodeEvent } from '@shardwise/kinesis-decode'
import { eachRecord, type Ordering } from '@shardwise/partial-failures'
import { Bench } from 'tinybench'

const RECORDS = 10_000
const payload = Buffer.from(JSON.stringify({ id: 'ord-00000001', amount: 12.5 })).toString('base64')
const event: KinesisStreamEvent = {
  Records: Array.from({ length: RECORDS }, (_, i) => {
    const sequenceNumber = (
      49590338271490256608559692538361571095921575989136588898n + BigInt(i)
    ).toString()
    return {
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: `customer-${i % 50}`,
        sequenceNumber,
        data: payload,
        approximateArrivalTimestamp: 1764090000 + i / 1000,
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000006:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
      awsRegion: 'us-east-2',
      eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/perf',
    }
  }),
}
const context = {} as Context
const BATCH = Symbol.for('@shardwise/batch')

const bench = new Bench({ time: 1000, warmup: true })
for (const ordering of ['shard', 'partitionKey', 'none'] satisfies Ordering[]) {
  const handler = eachRecord(async () => {}, { ordering })
  bench.add(`eachRecord ${ordering}, ${RECORDS} records`, () => handler(event, context), {
    // A fresh batch per iteration: eachRecord marks the records it ran.
    beforeEach() {
      ;(event as unknown as Record<symbol, unknown>)[BATCH] = decodeEvent(event)
    },
  })
}

await bench.run()
console.table(
  bench.tasks.map(({ name, result }) => {
    const mean = result.state === 'completed' ? result.latency.mean : Number.NaN
    return {
      task: name,
      'ns/record (mean)': Math.round((mean * 1e6) / RECORDS),
      'ms/batch (p50)':
        result.state === 'completed' ? result.latency.p50?.toFixed(3) : result.state,
      samples: result.state === 'completed' ? result.latency.samplesCount : 0,
    }
  }),
)
