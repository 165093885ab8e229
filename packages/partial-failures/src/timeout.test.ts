import middy from '@middy/core'
import type { Context, KinesisStreamEvent } from '@shardwise/core'
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
  type EachRecordOptions,
  eachRecord,
  foldWindow,
  partialFailures,
  type RecordHandler,
} from './index.js'

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })

const tenRecords = () =>
  kinesisEvent(
    Array.from({ length: 10 }, (_, i) => ({ data: String(i), partitionKey: `k${i % 2}` })),
  )

afterEach(() => {
  vi.useRealTimers()
})

/**
 * Time is the subject of these tests, so it is the fake clock's: the same records finish and the
 * same ones are cut off however busy the machine is. `Date` (the context's remaining time),
 * `performance` (the guard's clock) and the timers are faked; middy's own early timeout is not
 * (it imports node:timers), so the tests of it keep the real clock.
 */
function useFakeClock() {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  })
}

const settle = <T>(invocation: Promise<T>) => settleOnFakeClock(vi, invocation)

function chain(handler: RecordHandler<Uint8Array>, options: EachRecordOptions, early?: number) {
  const plugin = early === undefined ? undefined : { timeoutEarlyInMillis: early }
  return middy(eachRecord(handler, options), plugin)
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
}

describe('the timeout guard', () => {
  it('answers before the timeout, checkpointing at the first record that did not finish', async () => {
    useFakeClock()
    const started: number[] = []
    const aborted: number[] = []
    const lambda = chain(
      async (record, _context, { signal }) => {
        const i = Number(Buffer.from(record.data).toString())
        started.push(i)
        await sleep(100, signal).catch((reason) => {
          aborted.push(i)
          throw reason
        })
      },
      { timeoutMarginMs: 300 },
    )
    const context = lambdaContext(650)
    const response = await settle(lambda(tenRecords(), context))
    // 350 ms of work at 100 ms a record: three finish, the fourth is cut off.
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(200)
    expect(started).toEqual([0, 1, 2, 3])
    expect(aborted).toEqual([3])
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }] })
  })

  it('stops waiting for a record that never settles', async () => {
    useFakeClock()
    const lambda = chain(
      async (record) => {
        if (record.sequenceNumber === sequenceNumber(1)) await new Promise(() => {})
      },
      { timeoutMarginMs: 100, ordering: 'partitionKey' },
    )
    const response = await settle(lambda(tenRecords(), lambdaContext(300)))
    // Key k1 is stuck at record 1; key k0 runs on, but the checkpoint is record 1.
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
  })

  it("aborts the record's signal when middy's own early timeout fires first", async () => {
    let reason: unknown
    const lambda = chain(
      async (_record, _context, { signal }) => {
        await sleep(10_000, signal).catch((error) => {
          reason = error
          throw error
        })
      },
      { timeoutMarginMs: 50 },
      200,
    )
    await expect(lambda(tenRecords(), lambdaContext(400))).rejects.toThrow(/aborted/)
    expect(reason).toBeDefined()
  })

  for (const ordering of ['shard', 'partitionKey', 'none'] as const) {
    it(`starts no record after middy's own early timeout failed the invocation (${ordering})`, async () => {
      // A handler that does not listen to its signal: only the loop can stop the batch.
      const started: number[] = []
      const lambda = chain(
        async (record) => {
          started.push(Number(Buffer.from(record.data).toString()))
          await sleep(20)
        },
        { timeoutMarginMs: 50, ordering, concurrency: 2 },
        250,
      )
      await expect(lambda(tenRecords(), lambdaContext(300))).rejects.toThrow(/aborted/)
      const startedAtTimeout = started.length
      expect(startedAtTimeout).toBeLessThan(10)
      // The invocation is over; anything started now runs in a frozen or reused environment.
      await sleep(120)
      expect(started.length).toBe(startedAtTimeout)
    })
  }

  it("says to raise timeoutMarginMs when middy's own early timeout fired before the guard", async () => {
    const logger = recordingLogger()
    const lambda = middy(
      eachRecord(() => sleep(20), { timeoutMarginMs: 50 }),
      {
        timeoutEarlyInMillis: 250,
      },
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    await expect(lambda(tenRecords(), lambdaContext(300))).rejects.toThrow(/aborted/)
    expect(logger.lines.map((line) => line.message)).toEqual([
      "middy's timeoutEarlyInMillis fired before eachRecord's or foldWindow's timeout guard; Lambda will retry the whole batch: make timeoutMarginMs larger",
      'the invocation failed: its stack and causes',
    ])
  })

  it('hands an aborted signal to a handler that first reads it after the guard fired', async () => {
    useFakeClock()
    let seen!: (signal: { aborted: boolean; reason: unknown }) => void
    const read = new Promise<{ aborted: boolean; reason: unknown }>((resolve) => {
      seen = resolve
    })
    const lambda = chain(
      async (record, _context, options) => {
        if (record.sequenceNumber !== sequenceNumber(0)) return
        await sleep(150)
        seen({ aborted: options.signal.aborted, reason: options.signal.reason })
      },
      { timeoutMarginMs: 100 },
    )
    const response = await settle(lambda(tenRecords(), lambdaContext(200)))
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }] })
    await vi.advanceTimersByTimeAsync(100)
    const signal = await read
    expect(signal.aborted).toBe(true)
    expect(String(signal.reason)).toMatch(/TimeoutError: the invocation stops 100 ms before/)
  })

  // The guard's timer cannot fire while the loop never yields to the event loop: these handlers
  // do CPU work only, synchronously or behind `async`, so only the clock read between records
  // can stop them. The work is the fake clock moving on: only `Date` and `performance` are
  // faked, and the timers stay real, so that no timer can fire inside a record, as none can
  // during real CPU work.
  const busy = (ms: number) => {
    vi.advanceTimersByTime(ms)
  }
  const useFakeCpuClock = () => vi.useFakeTimers({ toFake: ['Date', 'performance'] })
  const cases = [
    ['shard', 'sync'],
    ['shard', 'async'],
    ['partitionKey', 'async'],
    ['none', 'sync'],
  ] as const
  for (const [ordering, kind] of cases) {
    it(`stops a handler that never yields in time (${ordering}, ${kind})`, async () => {
      useFakeCpuClock()
      const started: number[] = []
      const work = (record: { data: Uint8Array }) => {
        started.push(Number(Buffer.from(record.data).toString()))
        busy(2)
      }
      const handler: RecordHandler<Uint8Array> =
        kind === 'sync' ? work : async (record) => work(record)
      const lambda = chain(handler, { timeoutMarginMs: 400, ordering })
      const event = kinesisEvent(
        Array.from({ length: 300 }, (_, i) => ({ data: String(i), partitionKey: `k${i % 2}` })),
      )
      const begin = Date.now()
      const response = await lambda(event, lambdaContext(600))
      const took = Date.now() - begin
      // The deadline is 200 ms in; at this steady pace the clock is read about every eighth of
      // the margin's worth of records (50 ms), so the answer comes by 250 ms, well before the
      // timeout at 600 ms.
      expect(took).toBeGreaterThanOrEqual(200)
      expect(took).toBeLessThanOrEqual(250)
      expect(started.length).toBeGreaterThan(0)
      expect(started.length).toBeLessThan(300)
      expect(started).toEqual(started.map((_, i) => i))
      expect(response).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(started.length) }],
      })
    })
  }

  it('stops in time when records that never yield suddenly slow down', async () => {
    useFakeCpuClock()
    // 3,000 instant records, then 2 ms ones: a clock read spaced for the fast ones must not let
    // the slow ones run on long past the deadline.
    const started: number[] = []
    const lambda = chain(
      (record) => {
        const i = Number(Buffer.from(record.data).toString())
        started.push(i)
        if (i >= 3000) busy(2)
      },
      { timeoutMarginMs: 400 },
    )
    const event = kinesisEvent(Array.from({ length: 3300 }, (_, i) => ({ data: String(i) })))
    const begin = Date.now()
    const response = await lambda(event, lambdaContext(600))
    expect(Date.now() - begin).toBeLessThan(500)
    expect(started.length).toBeLessThan(3300)
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(started.length) }],
    })
  })

  it('refuses to start when the margin leaves no time at all, and starts no record', async () => {
    let started = 0
    const lambda = chain(
      async () => {
        started++
      },
      { timeoutMarginMs: 1000 },
    )
    await expect(lambda(tenRecords(), lambdaContext(800))).rejects.toThrow(
      /only \d+ ms left, within timeoutMarginMs \(1000 ms\)/,
    )
    expect(started).toBe(0)
  })

  const oddRemainingTimes: Array<[string, () => number]> = [
    ['Infinity', () => Number.POSITIVE_INFINITY],
    ['NaN', () => Number.NaN],
    ['2^31', () => 2 ** 31],
    ['a negative number', () => -5],
    [
      'a throw',
      () => {
        throw new Error('no clock here')
      },
    ],
  ]
  for (const [what, getRemainingTimeInMillis] of oddRemainingTimes) {
    it(`runs the whole batch, with no deadline known, when the remaining time is ${what}`, async () => {
      useFakeClock()
      const logger = recordingLogger()
      let handled = 0
      const lambda = middy(
        eachRecord(
          async () => {
            await sleep(10)
            handled++
          },
          { ordering: 'partitionKey', concurrency: 2 },
        ),
        // middy's own early timeout reads the remaining time too, and meets the same clamp.
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      const event = kinesisEvent(
        Array.from({ length: 50 }, (_, i) => ({ data: String(i), partitionKey: `k${i % 2}` })),
      )
      const context = { ...lambdaContext(), getRemainingTimeInMillis }
      expect(await settle(lambda(event, context))).toEqual({ batchItemFailures: [] })
      expect(handled).toBe(50)
      const debug = logger.lines.filter((line) => line.level === 'debug').map((l) => l.message)
      expect(debug[0]).toMatch(
        /^no deadline known: getRemainingTimeInMillis\(\) (answered|threw) .*; the timeout guard is off for this batch$/,
      )
    })
  }

  it('is off with a margin of 0', async () => {
    const lambda = chain(async () => {}, { timeoutMarginMs: 0 })
    expect(await lambda(tenRecords(), lambdaContext(10))).toEqual({ batchItemFailures: [] })
  })
})

describe("an answer other than the record loop's", () => {
  // middy's early timeout fires 150 ms in (on the real clock: middy's timer is not faked), the
  // guard would fire only at 250. Records 0 to 2 finish at once, so they are done before any
  // timer can fire however busy the machine is; record 3 takes a second and ignores its signal.
  const earlyAnswer = (timeoutEarlyResponse: () => unknown, windowed = false) => {
    const finished: number[] = []
    const logger = recordingLogger()
    const record = async (n: number) => {
      if (n >= 3) await sleep(1000)
      finished.push(n)
    }
    const batchHandler = windowed
      ? foldWindow(
          async (state: { n: number }, r) => {
            await record(Number(Buffer.from(r.data).toString()))
            return { n: state.n + 1 }
          },
          { initialState: () => ({ n: 0 }), timeoutMarginMs: 50 },
        )
      : eachRecord((r) => record(Number(Buffer.from(r.data).toString())), { timeoutMarginMs: 50 })
    const lambda = middy(batchHandler, { timeoutEarlyInMillis: 150, timeoutEarlyResponse })
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    const event = windowed
      ? { ...tenRecords(), window: { start: 'a', end: 'b' }, state: { n: 7 } }
      : tenRecords()
    return { call: () => lambda(event as never, lambdaContext(300)), finished, logger }
  }

  it.each([
    ['nothing', () => undefined],
    ['an empty batchItemFailures', () => ({ batchItemFailures: [] })],
  ])(
    "names the first record the loop did not finish when middy's timeoutEarlyResponse returns %s",
    async (_name, response) => {
      const { call, finished, logger } = earlyAnswer(response)
      const answer = await call()
      expect(finished).toEqual([0, 1, 2])
      expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }] })
      expect(logger.lines.map((line) => line.message)).toContain(
        "the record loop's answer was replaced (by middy's timeoutEarlyResponse or another middleware); its unfinished records are reported",
      )
    },
  )

  it('retries a window batch from its first record with the state Lambda sent, as the folded state was lost', async () => {
    const { call, finished } = earlyAnswer(() => undefined, true)
    const answer = await call()
    expect(finished).toEqual([0, 1, 2])
    expect(answer).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }],
      state: { n: 7 },
    })
  })

  it('is silent when a handler wraps eachRecord and returns a copy of its answer', async () => {
    const logger = recordingLogger()
    const each = eachRecord(async (r) => {
      if (r.sequenceNumber === sequenceNumber(4)) throw new Error('no')
    })
    const lambda = middy(async (event: KinesisStreamEvent, context: Context) => ({
      ...(await each(event, context)),
    }))
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    expect(await lambda(tenRecords(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(4) }],
    })
    expect(
      logger.lines.filter((line) => line.level === 'error').map((line) => line.message),
    ).toEqual(['record failed'])
  })
})
