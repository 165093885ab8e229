import { Metrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  NonRetryableError,
  type Ordering,
  partialFailures,
  type RecordHandler,
  RecordHandlerError,
} from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { batchMetrics } from './batch-metrics.js'
import { captureStdout } from './emf.fixture.js'
import { FullBatchFailureError, throwOnFullBatchFailure } from './full-batch-failure.js'

const text = (data: Uint8Array) => Buffer.from(data).toString()

/**
 * Fails each record whose payload says so: 'retry' retryably, 'poison' for good. It waits a turn
 * first, so that with ordering 'none' every record starts before the first one fails.
 */
const handler: RecordHandler<Uint8Array> = async (record) => {
  await Promise.resolve()
  if (text(record.data) === 'retry') throw new Error(`database down at ${record.sequenceNumber}`)
  if (text(record.data) === 'poison') throw new NonRetryableError('refused for good')
}

function chain(ordering: Ordering = 'shard', onPoison?: () => Promise<void>) {
  return middy(eachRecord(handler, { ordering }))
    .use(throwOnFullBatchFailure())
    .use(kinesisDecode())
    .use(partialFailures({ logger: false, onPoison }))
}

const event = (...payloads: string[]) => kinesisEvent(payloads.map((data) => ({ data })))

describe('throwOnFullBatchFailure', () => {
  it('throws when the first record failed retryably and nothing after it ran', async () => {
    const thrown = await chain()(event('retry', 'ok', 'ok'), lambdaContext()).catch((e) => e)
    expect(thrown).toBeInstanceOf(FullBatchFailureError)
    expect(thrown.name).toBe('FullBatchFailureError')
    expect(thrown.message).toBe(
      `all 3 records of the batch failed or were not reached, and each failure can be retried; Lambda retries the whole batch. First: record ${sequenceNumber(0)} of shardId-000000000006 (partition key "1"): the record handler failed: database down at ${sequenceNumber(0)}`,
    )
    expect(thrown.cause).toBeInstanceOf(RecordHandlerError)
  })

  it("throws when records running at once all failed retryably (ordering 'none')", async () => {
    await expect(
      chain('none')(event('retry', 'retry', 'retry'), lambdaContext()),
    ).rejects.toBeInstanceOf(FullBatchFailureError)
  })

  it('answers as usual when any record succeeded, went to the sink, or failed for good', async () => {
    const cases = [
      [chain(), event('ok', 'retry')],
      [chain('none'), event('retry', 'ok', 'retry')],
      [chain(), event('poison', 'retry')],
      [chain('shard', async () => {}), event('poison', 'retry')],
      [chain('none'), event('retry', 'poison')],
    ] as const
    for (const [handle, batch] of cases) {
      const answer = await handle(batch, lambdaContext())
      expect(answer).toHaveProperty('batchItemFailures')
    }
    expect(await chain()(event('ok', 'ok'), lambdaContext())).toEqual({ batchItemFailures: [] })
  })

  it('leaves batchMetrics one line to publish, in either order of the chain', async () => {
    const stdout = captureStdout()
    try {
      const metrics = new Metrics({ namespace: 'Shardwise' })
      const first = middy(eachRecord(handler))
        .use(batchMetrics({ metrics }))
        .use(throwOnFullBatchFailure())
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      const second = middy(eachRecord(handler))
        .use(throwOnFullBatchFailure())
        .use(batchMetrics({ metrics }))
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      await expect(first(event('retry', 'ok'), lambdaContext())).rejects.toThrow(
        FullBatchFailureError,
      )
      await expect(second(event('retry', 'ok'), lambdaContext())).rejects.toThrow(
        FullBatchFailureError,
      )
      const lines = stdout.emf()
      expect(lines).toHaveLength(2)
      for (const line of lines) {
        expect(line).toMatchObject({ RecordsFailedHandler: 1, RecordsNotHandled: 1 })
      }
    } finally {
      stdout.restore()
    }
  })

  it('refuses a chain without kinesisDecode', async () => {
    const handle = middy(async () => ({ batchItemFailures: [] })).use(throwOnFullBatchFailure())
    await expect(handle(event('x'), lambdaContext())).rejects.toThrow(
      '@shardwise/observe: throwOnFullBatchFailure found no decoded records; add .use(kinesisDecode())',
    )
  })
})
