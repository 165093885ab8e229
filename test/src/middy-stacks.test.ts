/**
 * Shardwise dropped into the middy stacks people already run: Powertools' logger, tracer and
 * metrics middlewares, middy's error and input/output loggers, placed before and after the
 * Shardwise middlewares. The answer must stay `{ batchItemFailures }` naming exactly the first
 * record that did not succeed, and an error from another middleware must retry the whole batch.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import { Tracer } from '@aws-lambda-powertools/tracer'
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware'
import middy, { type MiddlewareObj } from '@middy/core'
import doNotWaitForEmptyEventLoop from '@middy/do-not-wait-for-empty-event-loop'
import errorLogger from '@middy/error-logger'
import inputOutputLogger from '@middy/input-output-logger'
import { jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, type KinesisRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

// Tracing off, as in a unit test or a function without X-Ray; metrics and logs to nowhere.
beforeAll(() => {
  vi.stubEnv('POWERTOOLS_TRACE_ENABLED', 'false')
  vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'shardwise-test')
  vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'orders')
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
  vi.spyOn(console, 'log').mockImplementation(() => {})
  vi.spyOn(console, 'info').mockImplementation(() => {})
  vi.spyOn(console, 'error').mockImplementation(() => {})
  vi.spyOn(console, 'warn').mockImplementation(() => {})
  vi.spyOn(console, 'debug').mockImplementation(() => {})
})
afterAll(() => {
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})

interface Order {
  id: number
}

/** Ten orders; the handler fails `failId`, and `badJsonAt` is not JSON. */
function ordersEvent(badJsonAt?: number) {
  return kinesisEvent(
    Array.from({ length: 10 }, (_, i) => ({
      data: i === badJsonAt ? '{"id": ' : JSON.stringify({ id: i }),
      partitionKey: `key-${i % 3}`,
    })),
  )
}

/** The peers' middlewares, each as a user configures it. */
function peers() {
  const logger = new Logger({ serviceName: 'orders', logLevel: 'SILENT' })
  const tracer = new Tracer({ serviceName: 'orders' })
  const metrics = new Metrics({ namespace: 'shardwise-test', serviceName: 'orders' })
  const logged: unknown[] = []
  return {
    logger,
    metrics,
    logged,
    middlewares: {
      injectLambdaContext: injectLambdaContext(logger, { logEvent: true, resetKeys: true }),
      captureLambdaHandler: captureLambdaHandler(tracer),
      logMetrics: logMetrics(metrics, { captureColdStartMetric: true }),
      errorLogger: errorLogger({
        logger: (request: { error?: unknown }) => logged.push(request.error),
      }),
      inputOutputLogger: inputOutputLogger({ logger: (message: unknown) => logged.push(message) }),
      doNotWaitForEmptyEventLoop: doNotWaitForEmptyEventLoop(),
    } as Record<string, MiddlewareObj>,
  }
}

type Placement = 'before' | 'after'

function stack(
  placement: Placement,
  failId?: number,
  extra: MiddlewareObj[] = [],
  onPoison?: (record: KinesisRecord<unknown>) => Promise<void>,
) {
  const { logger, metrics, middlewares, logged } = peers()
  const handled: number[] = []
  const handler = middy(
    eachRecord<Order>(async (record) => {
      if (record.data.id === failId) throw new Error(`order ${failId} cannot be stored`)
      handled.push(record.data.id)
      metrics.addMetric('orders', MetricUnit.Count, 1)
    }),
  )
  const peerList = [...Object.values(middlewares), ...extra]
  const shardwise = [
    kinesisDecode(),
    jsonParse() as MiddlewareObj,
    partialFailures({ logger, ...(onPoison && { onPoison }) }) as MiddlewareObj,
  ]
  for (const middleware of placement === 'before'
    ? [...peerList, ...shardwise]
    : [...shardwise, ...peerList]) {
    handler.use(middleware)
  }
  return { handler, handled, logger, logged }
}

describe.each(['before', 'after'] as const)(
  'peer middlewares %s the Shardwise ones',
  (placement) => {
    it('answers an empty batchItemFailures when every record succeeds, each handled once', async () => {
      const { handler, handled } = stack(placement)
      expect(await handler(ordersEvent(), lambdaContext())).toEqual({ batchItemFailures: [] })
      expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    })

    it('answers exactly the record whose handler failed, and starts nothing after it', async () => {
      const { handler, handled, logger } = stack(placement, 4)
      const errors = vi.spyOn(logger, 'error')
      expect(await handler(ordersEvent(), lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(4) }],
      })
      expect(handled).toEqual([0, 1, 2, 3])
      expect(errors).toHaveBeenCalledWith(
        'record failed',
        expect.objectContaining({ sequenceNumber: sequenceNumber(4) }),
      )
    })

    it('answers the record that is not JSON, before a later handler failure', async () => {
      const { handler, handled } = stack(placement, 7, [])
      expect(await handler(ordersEvent(5), lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(5) }],
      })
      expect(handled).toEqual([0, 1, 2, 3, 4])
    })

    it('hands a record that is not JSON to onPoison and goes on with the batch', async () => {
      const poisoned: string[] = []
      const { handler, handled } = stack(placement, undefined, [], async (record) => {
        poisoned.push(record.sequenceNumber)
      })
      expect(await handler(ordersEvent(5), lambdaContext())).toEqual({ batchItemFailures: [] })
      expect(poisoned).toEqual([sequenceNumber(5)])
      expect(handled).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9])
    })

    it.each([
      ['before', { before: () => Promise.reject(new Error('secrets unavailable')) }],
      ['after', { after: () => Promise.reject(new Error('metrics flush failed')) }],
    ] as const)(
      'retries the whole batch when another middleware throws in %s',
      async (_hook, thrower) => {
        const { handler, logged } = stack(placement, undefined, [thrower])
        await expect(handler(ordersEvent(), lambdaContext())).rejects.toThrow(
          /secrets unavailable|metrics flush failed/,
        )
        // middy's error logger saw it, so the failure is not silent.
        expect(logged.some((entry) => entry instanceof Error)).toBe(true)
      },
    )

    it("rethrows another middleware's onError failure instead of answering", async () => {
      const { handler } = stack(placement, undefined, [
        { after: () => Promise.reject(new Error('first')) },
        { onError: () => Promise.reject(new Error('the error handler broke')) },
      ])
      await expect(handler(ordersEvent(), lambdaContext())).rejects.toThrow(
        /first|the error handler broke/,
      )
    })
  },
)

describe("middy's early timeout and the timeout guard", () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  /** Forty records of 20 ms each: far more than the time the context leaves. */
  function slowChain(middyOptions: Parameters<typeof middy>[1], timeoutMarginMs: number) {
    const started: number[] = []
    const finished: number[] = []
    const handler = middy(
      eachRecord<Order>(
        async (record) => {
          started.push(record.data.id)
          await sleep(20)
          finished.push(record.data.id)
        },
        { timeoutMarginMs },
      ),
      middyOptions,
    )
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent(
      Array.from({ length: 40 }, (_, i) => ({ data: JSON.stringify({ id: i }) })),
    )
    return { handler, event, started, finished }
  }

  it("with middy's default, the guard answers first, at the first record not finished", async () => {
    const { handler, event, finished } = slowChain(undefined, 150)
    const answer = await handler(event, lambdaContext(400))
    expect(finished.length).toBeGreaterThan(3)
    expect(finished.length).toBeLessThan(40)
    expect(finished).toEqual([...finished.keys()])
    expect(answer).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(finished.length) }],
    })
  })
  it('when middy times out first, the invocation fails and no record starts after it', async () => {
    const { handler, event, started } = slowChain({ timeoutEarlyInMillis: 300 }, 100)
    await expect(handler(event, lambdaContext(450))).rejects.toThrow(/aborted/)
    const startedAtTimeout = started.length
    await sleep(120)
    expect(started.length).toBe(startedAtTimeout)
  })

  it.each([
    ['nothing', () => undefined],
    ['an empty batchItemFailures', () => ({ batchItemFailures: [] })],
  ])(
    'when middy times out first and its timeoutEarlyResponse returns %s, the answer still names the first record not finished',
    async (_name, timeoutEarlyResponse) => {
      const { handler, event, finished } = slowChain(
        { timeoutEarlyInMillis: 300, timeoutEarlyResponse },
        100,
      )
      const answer = await handler(event, lambdaContext(450))
      expect(finished.length).toBeLessThan(40)
      expect(answer).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(finished.length) }],
      })
    },
  )
})
