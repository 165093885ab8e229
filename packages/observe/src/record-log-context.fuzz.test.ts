/**
 * The log context stated as a property over random batches: every ordering, any concurrency,
 * random partition keys, handlers that yield a random number of turns between their reads and
 * fail at random: wherever a handler reads `currentRecord()`, it reads its own record, and
 * outside the handlers (between batches, after a failed one) it reads nothing.
 */
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, type Ordering, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { currentRecord, recordLogContext } from './record-log-context.js'

const turns = async (count: number) => {
  for (let i = 0; i < count; i++) await Promise.resolve()
}

describe('recordLogContext, over random batches', () => {
  it('gives each handler its own record at every read, and nothing outside them', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Ordering>('shard', 'partitionKey', 'none'),
        fc.integer({ min: 1, max: 12 }),
        fc.array(
          fc.record({
            key: fc.integer({ min: 0, max: 5 }),
            waits: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 3 }),
            fails: fc.boolean(),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        async (ordering, concurrency, specs) => {
          const wrong: string[] = []
          const handler = middy(
            eachRecord(
              async (record) => {
                const spec = specs[Number(record.sequenceNumber.slice(-7))]
                for (const wait of spec?.waits ?? []) {
                  if (currentRecord()?.sequenceNumber !== record.sequenceNumber) {
                    wrong.push(`${record.sequenceNumber} read ${currentRecord()?.sequenceNumber}`)
                  }
                  await turns(wait)
                }
                if (currentRecord()?.partitionKey !== record.partitionKey) wrong.push('key')
                if (spec?.fails) throw new Error('failed')
              },
              { ordering, concurrency },
            ),
          )
            .use(kinesisDecode())
            .use(recordLogContext())
            .use(partialFailures({ logger: false }))
          const event = kinesisEvent(
            specs.map((spec, i) => ({ data: `r${i}`, partitionKey: `key-${spec.key}` })),
          )
          await handler(event, lambdaContext())
          expect(wrong).toEqual([])
          expect(currentRecord()).toBeUndefined()
        },
      ),
      { numRuns: 1000 },
    )
  })
})
