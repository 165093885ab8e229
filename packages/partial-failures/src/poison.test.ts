import middy from '@middy/core'
import { failRecord, getBatch, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  kinesisEvent,
  lambdaContext,
  recordingLogger,
  sequenceNumber,
  settleOnFakeClock,
} from '@shardwise/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  eachRecord,
  type KinesisRecord,
  NonRetryableError,
  type Ordering,
  PoisonSinkError,
  partialFailures,
  RecordError,
} from './index.js'

const text = new TextDecoder()

function chain(
  handler: (payload: string) => void,
  onPoison: (record: KinesisRecord<unknown>, error: RecordError) => Promise<unknown>,
  ordering: Ordering = 'shard',
) {
  const logger = recordingLogger()
  const handled: string[] = []
  const lambda = middy(
    eachRecord(
      async (record) => {
        const payload = text.decode(record.data)
        handler(payload)
        handled.push(payload)
      },
      { ordering },
    ),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger, onPoison }))
  return { lambda, handled, logger }
}

describe('partialFailures({ onPoison })', () => {
  it('diverts a record that failed to decode, with its coordinates and error, and moves on', async () => {
    const sunk: Array<[KinesisRecord<unknown>, RecordError]> = []
    const { lambda, handled, logger } = chain(
      () => {},
      async (record, error) => {
        sunk.push([record, error])
      },
    )
    const event = kinesisEvent([{ data: 'a' }, { data: { base64: 'bad*' } }, { data: 'c' }])
    expect(await lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(handled).toEqual(['a', 'c'])
    expect(sunk).toHaveLength(1)
    const [record, error] = sunk[0] as [KinesisRecord<unknown>, RecordError]
    expect(record.sequenceNumber).toBe(sequenceNumber(1))
    expect(record.lambdaRecord.kinesis.data).toBe('bad*')
    expect(error).toMatchObject({ name: 'DecodeError', retryable: false })
    expect(logger.lines.map((line) => [line.level, line.message])).toEqual([
      ['warn', 'record sent to the poison sink'],
      ['debug', 'record sent to the poison sink: its stack and causes'],
      ['warn', 'batch done with failures'],
    ])
  })

  it('diverts a NonRetryableError with the raw bytes, and never a retryable error', async () => {
    const sunk: string[] = []
    const { lambda, handled } = chain(
      (payload) => {
        if (payload === 'poison') throw new NonRetryableError('unknown product')
        if (payload === 'flaky') throw new Error('database busy')
      },
      async (record) => {
        sunk.push(text.decode(record.rawData))
      },
    )
    const event = kinesisEvent([
      { data: 'a' },
      { data: 'poison' },
      { data: 'b' },
      { data: 'flaky' },
      { data: 'c' },
    ])
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }],
    })
    expect(sunk).toEqual(['poison'])
    expect(handled).toEqual(['a', 'b'])
  })

  it('stops at a record the sink refuses, like at any failure', async () => {
    for (const ordering of ['shard', 'partitionKey', 'none'] as const) {
      const { lambda, handled, logger } = chain(
        (payload) => {
          if (payload === 'poison') throw new NonRetryableError('never')
        },
        async () => {
          throw new Error('queue unavailable')
        },
        ordering,
      )
      const event = kinesisEvent([{ data: 'a' }, { data: 'poison' }, { data: 'b' }])
      expect(await lambda(event, lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      })
      if (ordering === 'shard') expect(handled).toEqual(['a'])
      const logged = logger.lines.find(
        (line) => line.message === 'record failed: its stack and causes',
      )
      const error = (logged?.details[0] as { error?: unknown } | undefined)?.error
      expect(error).toBeInstanceOf(PoisonSinkError)
      expect((error as Error).message).toMatch(
        /the poison sink failed \(queue unavailable\) for: record/,
      )
    }
  })

  it('starts from the lowest retryable failure, whatever order the steps found them in', async () => {
    const started: string[] = []
    // A step that finds a retryable failure at record 3, then one at record 1.
    const flakyStep = {
      before(request: { event: KinesisStreamEvent }) {
        const batch = getBatch(request.event)
        if (batch === undefined) throw new Error('kinesisDecode runs first')
        for (const index of [3, 1]) {
          const record = batch.records[index] as KinesisRecord<unknown>
          failRecord(batch, index, new RecordError(record, 'the lookup timed out'))
        }
      },
    }
    const lambda = middy(
      eachRecord(
        async (record) => {
          started.push(text.decode(record.data))
        },
        { ordering: 'partitionKey', concurrency: 4 },
      ),
    )
      .use(kinesisDecode())
      .use(flakyStep)
      .use(partialFailures({ logger: false, onPoison: async () => {} }))
    // Records 0 and 1 share a key, so record 1 waits for record 0 while other keys are free:
    // only a limit at record 1 keeps records 2 and later from starting meanwhile.
    const keys = ['x', 'x', 'y', 'z', 'w']
    const event = kinesisEvent(
      ['a', 'b', 'c', 'd', 'e'].map((data, i) => ({ data, partitionKey: keys[i] as string })),
    )
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(started).toEqual(['a'])
  })

  it('says that a handler of your own never uses the sink, as records that can never succeed then hold the shard', async () => {
    const logger = recordingLogger()
    const sunk: string[] = []
    const lambda = middy(async () => undefined)
      .use(kinesisDecode())
      .use(
        partialFailures({
          logger,
          onPoison: async (record) => {
            sunk.push(record.sequenceNumber)
          },
        }),
      )
    const event = kinesisEvent([{ data: 'a' }, { data: { base64: '!!' } }])
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(sunk).toEqual([])
    expect(logger.lines[0]?.message).toBe(
      'onPoison needs eachRecord or foldWindow as the batch handler: with your own, no record goes to the sink, and poison records hold the shard',
    )
  })

  // Time is the subject here: which record fails first decides what the sink may take.
  describe('takes a record only when the answer will move past it', () => {
    afterEach(() => {
      vi.useRealTimers()
    })

    /** Record i waits `plan[i].ms` of fake time, then succeeds or throws as planned. */
    async function run(
      ordering: 'none' | 'partitionKey',
      plan: Array<{ ms: number; fails?: 'retryable' | 'poison'; key?: string }>,
      timeoutMarginMs = 0,
      remainingMs = 60_000,
    ) {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
      const sunk: number[] = []
      const events: string[] = []
      const lambda = middy(
        eachRecord(
          async (record) => {
            const i = Number(text.decode(record.data))
            const step = plan[i] as (typeof plan)[number]
            events.push(`start ${i}`)
            await new Promise((resolve) => setTimeout(resolve, step.ms))
            if (step.fails === 'retryable') throw new Error(`record ${i} is busy`)
            if (step.fails === 'poison') throw new NonRetryableError(`record ${i} is poison`)
          },
          { ordering, concurrency: plan.length, timeoutMarginMs },
        ),
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(
          partialFailures({
            logger: false,
            onPoison: async (record) => {
              const i = Number(text.decode(record.data as Uint8Array))
              events.push(`sink ${i}`)
              sunk.push(i)
            },
          }),
        )
      const event = kinesisEvent(
        plan.map((step, i) => ({ data: String(i), partitionKey: step.key ?? `k${i}` })),
      )
      const answer = await settleOnFakeClock(vi, lambda(event, lambdaContext(remainingMs)))
      return { answer, sunk, events }
    }

    for (const ordering of ['none', 'partitionKey'] as const) {
      it(`not when an earlier record, still running, then fails and will come again (${ordering})`, async () => {
        // Record 2 is poison at 5 ms; record 1, started before it, fails retryably at 20 ms.
        const { answer, sunk } = await run(ordering, [
          { ms: 1 },
          { ms: 20, fails: 'retryable' },
          { ms: 5, fails: 'poison' },
        ])
        expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
        expect(sunk).toEqual([])
      })

      it(`not when an earlier record already failed and will come again (${ordering})`, async () => {
        for (const failing of [0, 1]) {
          const plan: Array<{ ms: number; fails?: 'retryable' | 'poison' }> = [
            { ms: 1 },
            { ms: 1 },
            { ms: 20, fails: 'poison' },
          ]
          plan[failing] = { ms: 5, fails: 'retryable' }
          const { answer, sunk } = await run(ordering, plan)
          expect(answer).toEqual({
            batchItemFailures: [{ itemIdentifier: sequenceNumber(failing) }],
          })
          expect(sunk).toEqual([])
        }
      })

      it(`once the earlier records running beside it have succeeded (${ordering})`, async () => {
        // Record 2 is poison at 5 ms; record 1 succeeds at 20 ms, and then the sink takes 2.
        const { answer, sunk, events } = await run(ordering, [
          { ms: 1, fails: 'poison' },
          { ms: 20 },
          { ms: 5, fails: 'poison' },
          { ms: 1 },
        ])
        expect(answer).toEqual({ batchItemFailures: [] })
        expect(sunk).toEqual([0, 2])
        expect(events.indexOf('sink 2')).toBeGreaterThan(events.indexOf('sink 0'))
      })

      it(`starts no sink call after the timeout guard answered (${ordering})`, async () => {
        // The guard fires at 100 ms; record 0 then fails for good at 150 ms, after the answer.
        const { answer, sunk } = await run(
          ordering,
          [{ ms: 150, fails: 'poison' }, { ms: 1 }],
          200,
          300,
        )
        expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }] })
        await vi.advanceTimersByTimeAsync(100)
        expect(sunk).toEqual([])
      })
    }

    it("keeps a poison record's partition key until the sink took it (partitionKey)", async () => {
      // Records 1 and 3 share a key: 3 starts only once the sink took 1, after record 0 succeeded.
      const { answer, events } = await run('partitionKey', [
        { ms: 20 },
        { ms: 1, fails: 'poison', key: 'x' },
        { ms: 1 },
        { ms: 1, key: 'x' },
      ])
      expect(answer).toEqual({ batchItemFailures: [] })
      expect(events.indexOf('start 3')).toBeGreaterThan(events.indexOf('sink 1'))
    })
  })

  it('rejects a sink that is not a function when it is built', () => {
    expect(() => partialFailures({ onPoison: 'sqs' as never })).toThrow(/onPoison/)
  })
})
