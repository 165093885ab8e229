/**
 * Whatever a record handler, a poison sink, `reduce` or `onWindowEnd` throws (a Proxy, revoked
 * or with traps that throw, an Error whose getters throw, a Symbol, `undefined`), the record
 * fails with the library's own error naming it, the invocation answers, and nothing starts
 * after the answer.
 */
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { hostileThrownValues } from '@shardwise/test-internals'
import {
  kinesisEvent,
  lambdaContext,
  recordingLogger,
  sequenceNumber,
  windowEvent,
} from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import {
  ConfigurationError,
  eachRecord,
  foldWindow,
  NonRetryableError,
  type Ordering,
  PoisonSinkError,
  partialFailures,
  RecordHandlerError,
  WindowEndError,
} from './index.js'

const tick = () => new Promise((resolve) => setImmediate(resolve))
const positionOf = (sequence: string) => Number(sequence.slice(-7))

/** The errors of the records that failed, from the debug lines that carry them whole. */
const recordFailed = (logger: ReturnType<typeof recordingLogger>) =>
  logger.lines
    .filter((line) => line.message === 'record failed: its stack and causes')
    .map((line) => (line.details[0] as { error: Error }).error)

describe('a record handler that throws a value the library did not create', () => {
  for (const ordering of ['shard', 'partitionKey', 'none'] as const satisfies Ordering[]) {
    for (const [name, make] of hostileThrownValues) {
      it(`fails its record, answers, and starts nothing after the answer: ${name} (${ordering})`, async () => {
        const logger = recordingLogger()
        const started: number[] = []
        const lambda = middy(
          eachRecord(
            async (record) => {
              const i = positionOf(record.sequenceNumber)
              started.push(i)
              await tick()
              if (i === 5) throw make()
              await tick()
            },
            { ordering, concurrency: 4 },
          ),
        )
          .use(kinesisDecode())
          .use(partialFailures({ logger }))
        const event = kinesisEvent(
          Array.from({ length: 40 }, (_, i) => ({ data: String(i), partitionKey: `k${i % 8}` })),
        )
        expect(await lambda(event, lambdaContext())).toEqual({
          batchItemFailures: [{ itemIdentifier: sequenceNumber(5) }],
        })
        const [error] = recordFailed(logger)
        expect(error).toBeInstanceOf(RecordHandlerError)
        expect(error?.message).toMatch(
          new RegExp(
            `^record ${sequenceNumber(5)} of shardId-000000000006 .*: the record handler failed: .`,
          ),
        )
        const startedAtAnswer = started.length
        expect(startedAtAnswer).toBeLessThan(40)
        for (let t = 0; t < 20; t++) await tick()
        expect(started.length).toBe(startedAtAnswer)
      })
    }
  }
})

describe('a poison sink that throws a value the library did not create', () => {
  for (const ordering of ['shard', 'partitionKey', 'none'] as const satisfies Ordering[]) {
    it(`leaves the record failed with a PoisonSinkError, for every such value (${ordering})`, async () => {
      for (const [name, make] of hostileThrownValues) {
        const logger = recordingLogger()
        const lambda = middy(
          eachRecord(
            (record) => {
              if (positionOf(record.sequenceNumber) === 1) throw new NonRetryableError('poison')
            },
            { ordering },
          ),
        )
          .use(kinesisDecode())
          .use(
            partialFailures({
              logger,
              onPoison: async () => {
                throw make()
              },
            }),
          )
        const event = kinesisEvent([{ data: 'a' }, { data: 'b' }, { data: 'c' }])
        expect(await lambda(event, lambdaContext()), name).toEqual({
          batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
        })
        const [error] = recordFailed(logger)
        expect(error, name).toBeInstanceOf(PoisonSinkError)
        expect(error?.message, name).toMatch(/the poison sink failed \(.+\) for: record /)
      }
    })
  }
})

const threeRecords = [{ data: '1' }, { data: '2' }, { data: '3' }]

describe('foldWindow with values the library did not create', () => {
  it.each(hostileThrownValues)(
    'fails the record that reduce threw %s on, and answers',
    async (_name, make) => {
      const lambda = middy(
        foldWindow(
          (state: { n: number }, record) => {
            if (positionOf(record.sequenceNumber) === 1) throw make()
            return { n: state.n + 1 }
          },
          { initialState: () => ({ n: 0 }) },
        ),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      expect(await lambda(windowEvent(threeRecords, {}), lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
        state: { n: 1 },
      })
    },
  )

  it.each(hostileThrownValues)(
    'fails the invocation with a WindowEndError when onWindowEnd throws %s',
    async (_name, make) => {
      const thrown = make()
      const lambda = middy(
        foldWindow((state: { n: number }) => ({ n: state.n + 1 }), {
          initialState: () => ({ n: 0 }),
          onWindowEnd: () => {
            throw thrown
          },
        }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      const failure = await lambda(windowEvent(threeRecords, {}, true), lambdaContext()).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failure).toBeInstanceOf(WindowEndError)
      expect((failure as Error).message).toMatch(
        /^@shardwise\/partial-failures: onWindowEnd failed for the window from 2026-11-25T10:00:00Z to 2026-11-25T10:05:00Z of shardId-000000000006; Lambda retries the invocation: ./,
      )
      expect((failure as Error).cause).toBe(thrown)
    },
  )

  it('refuses a state from reduce that cannot be read, with a ConfigurationError', async () => {
    const unreadable = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('no prototype for you')
        },
      },
    )
    const lambda = middy(
      foldWindow(() => unreadable as { n: number }, { initialState: () => ({ n: 0 }) }),
    ).use(kinesisDecode())
    await expect(lambda(windowEvent(threeRecords, {}), lambdaContext())).rejects.toThrow(
      ConfigurationError,
    )
    await expect(lambda(windowEvent(threeRecords, {}), lambdaContext())).rejects.toThrow(
      /; reduce gave an object that cannot be read \(a revoked Proxy\?\)$/,
    )
  })
})

describe('a batch handler of your own that throws a value the library did not create', () => {
  it.each(hostileThrownValues)('is rethrown untouched, and logged: %s', async (_name, make) => {
    const thrown = make()
    const logger = recordingLogger()
    const lambda = middy(async () => {
      throw thrown
    })
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    // Wrapped: awaiting a revoked Proxy itself would ask it for `then`.
    const failure = await lambda(kinesisEvent([{ data: 'a' }]), lambdaContext()).then(
      () => ({ error: 'none: it answered' as unknown }),
      (error: unknown) => ({ error }),
    )
    expect(failure.error).toBe(thrown)
    expect(logger.lines.map((line) => [line.level, line.message])).toEqual([
      ['error', 'the invocation failed; Lambda will retry the whole batch'],
      ['debug', 'the invocation failed: its stack and causes'],
    ])
    expect(logger.lines[0]?.details).toEqual([
      { errorName: expect.any(String), errorMessage: expect.any(String) },
    ])
    // The value itself, or a copy whose cause chain ends (it loops), for its stack at debug.
    expect(Object.keys(logger.lines[1]?.details[0] as object)).toEqual(['error'])
  })
})
