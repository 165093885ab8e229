/**
 * KPL aggregates through the whole chain: the DESIGN.md section 2 invariants, counted over user
 * records, with aggregates built by the reference producer library (aws-kinesis-agg).
 */
import { createRequire } from 'node:module'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, type Ordering, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, type RecordSpec } from '@shardwise/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

interface Aggregator {
  addUserRecord(record: { partitionKey: string; data: Buffer }): void
  build(): { data: Buffer }
}
const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => Aggregator
}

const utf8 = new TextDecoder()

/** A carrier is either a plain record or an aggregate of some user records. */
const shape = fc.array(
  fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 6 }), // an aggregate of that many user records
  ),
  { minLength: 1, maxLength: 12 },
)

/** Builds the batch; user record n carries the text `u<n>` and one of three partition keys. */
function batchOf(carriers: number[]): { specs: RecordSpec[]; carrierOf: number[] } {
  const specs: RecordSpec[] = []
  const carrierOf: number[] = []
  let n = 0
  for (const [c, size] of carriers.entries()) {
    if (size === 0) {
      specs.push({ data: `u${n}`, partitionKey: `key-${n % 3}` })
      carrierOf.push(c)
      n++
      continue
    }
    const aggregator = new RecordAggregator()
    for (let s = 0; s < size; s++, n++) {
      aggregator.addUserRecord({ partitionKey: `key-${n % 3}`, data: Buffer.from(`u${n}`) })
      carrierOf.push(c)
    }
    specs.push({ data: aggregator.build().data, partitionKey: 'carrier' })
  }
  return { specs, carrierOf }
}

function chain(failing: Set<number>, ordering: Ordering) {
  const started: number[] = []
  const succeeded: number[] = []
  const handler = middy(
    eachRecord(
      async (record) => {
        const n = Number(utf8.decode(record.data).slice(1))
        started.push(n)
        await Promise.resolve()
        if (failing.has(n)) throw new Error(`user record ${n} cannot be stored`)
        succeeded.push(n)
      },
      { ordering },
    ),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
  return { handler, started, succeeded }
}

describe('KPL user records through the chain', () => {
  it('reports the carrier of the first failed user record, and starts nothing after it (shard order)', async () => {
    await fc.assert(
      fc.asyncProperty(shape, fc.array(fc.nat(60), { maxLength: 4 }), async (carriers, fails) => {
        const { specs, carrierOf } = batchOf(carriers)
        const event = kinesisEvent(specs)
        const failing = new Set(fails.filter((n) => n < carrierOf.length))
        const { handler, started, succeeded } = chain(failing, 'shard')
        const response = await handler(event, lambdaContext())
        const first = Math.min(...failing)
        if (failing.size === 0) {
          expect(response).toEqual({ batchItemFailures: [] })
          expect(started).toEqual(carrierOf.map((_, n) => n))
          return
        }
        const carrier = event.Records[carrierOf[first] as number]
        expect(response).toEqual({
          batchItemFailures: [{ itemIdentifier: carrier?.kinesis.sequenceNumber }],
        })
        // Every user record before the failed one ran once, in order; nothing after it started.
        expect(started).toEqual(Array.from({ length: first + 1 }, (_, n) => n))
        expect(succeeded).toEqual(Array.from({ length: first }, (_, n) => n))
      }),
      { numRuns: 500 },
    )
  })

  it('checkpoints at the carrier of the first unfinished user record with partition-key ordering', async () => {
    await fc.assert(
      fc.asyncProperty(shape, fc.array(fc.nat(60), { maxLength: 4 }), async (carriers, fails) => {
        const { specs, carrierOf } = batchOf(carriers)
        const event = kinesisEvent(specs)
        const failing = new Set(fails.filter((n) => n < carrierOf.length))
        const { handler, started, succeeded } = chain(failing, 'partitionKey')
        const response = await handler(event, lambdaContext())
        expect(new Set(started).size).toBe(started.length)
        const done = new Set(succeeded)
        const firstUnfinished = carrierOf.findIndex((_, n) => !done.has(n))
        if (firstUnfinished === -1) {
          expect(response).toEqual({ batchItemFailures: [] })
          return
        }
        expect(failing.size).toBeGreaterThan(0)
        const carrier = event.Records[carrierOf[firstUnfinished] as number]
        expect(response).toEqual({
          batchItemFailures: [{ itemIdentifier: carrier?.kinesis.sequenceNumber }],
        })
      }),
      { numRuns: 500 },
    )
  })
})
