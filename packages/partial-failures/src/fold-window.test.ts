import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  kinesisEvent,
  lambdaContext,
  sequenceNumber,
  windowEvent as windowEventOf,
} from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { foldWindow, partialFailures, type WindowInfo } from './index.js'

interface Totals {
  count: number
  sum: number
}

const windowEvent = (values: string[], state: unknown, final = false) =>
  windowEventOf(
    values.map((data) => ({ data })),
    state,
    final,
  )

type Answer = { batchItemFailures: Array<{ itemIdentifier: string }>; state: Totals }

function totalsHandler() {
  const ended: Array<[Totals, WindowInfo]> = []
  const lambda = middy(
    foldWindow(
      (totals: Totals, record) => {
        const value = Number(Buffer.from(record.data).toString())
        if (Number.isNaN(value)) throw new Error('not a number')
        return { count: totals.count + 1, sum: totals.sum + value }
      },
      {
        initialState: () => ({ count: 0, sum: 0 }),
        onWindowEnd: (totals, window) => {
          ended.push([totals, window])
        },
      },
    ),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
  return { lambda, ended }
}

describe('foldWindow', () => {
  it('folds a window over several invocations and closes it on the final one', async () => {
    const { lambda, ended } = totalsHandler()
    const first = await lambda(windowEvent(['1', '2'], {}), lambdaContext())
    expect(first).toEqual({ batchItemFailures: [], state: { count: 2, sum: 3 } })
    const second = await lambda(windowEvent(['10'], first.state), lambdaContext())
    expect(second).toEqual({ batchItemFailures: [], state: { count: 3, sum: 13 } })
    expect(ended).toEqual([])
    const last = await lambda(windowEvent([], second.state, true), lambdaContext())
    expect(last.state).toEqual({ count: 3, sum: 13 })
    expect(ended).toEqual([
      [
        { count: 3, sum: 13 },
        {
          start: '2026-11-25T10:00:00Z',
          end: '2026-11-25T10:05:00Z',
          shardId: 'shardId-000000000006',
          isFinalInvokeForWindow: true,
          isWindowTerminatedEarly: false,
        },
      ],
    ])
  })

  it('answers the state of exactly the records before a failure, so a retry folds each once', async () => {
    const { lambda } = totalsHandler()
    const failed = await lambda(windowEvent(['1', 'x', '5'], { count: 0, sum: 0 }), lambdaContext())
    expect(failed).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      state: { count: 1, sum: 1 },
    })
  })

  it('does not close the window while records of the final invocation failed', async () => {
    const { lambda, ended } = totalsHandler()
    await lambda(windowEvent(['x'], { count: 1, sum: 1 }, true), lambdaContext())
    expect(ended).toEqual([])
  })

  it("keeps foldWindow's checkpoint and state when a middleware answers a copy of them", async () => {
    const copying = (answer: (response: Answer) => Answer) => {
      const { lambda } = totalsHandler()
      return lambda.use({
        after(request) {
          request.response = answer(request.response as Answer)
        },
      })
    }
    const copy = copying((response) => ({ ...response }))
    expect(await copy(windowEvent(['1', '2'], {}), lambdaContext())).toEqual({
      batchItemFailures: [],
      state: { count: 2, sum: 3 },
    })
    expect(await copy(windowEvent(['1', 'x', '5'], {}), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      state: { count: 1, sum: 1 },
    })
    // A copy that reports a record before foldWindow's checkpoint: the state answered no longer
    // matches it, so the batch is retried whole from the state Lambda sent.
    const earlier = copying((response) => ({
      ...response,
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    }))
    expect(
      await earlier(windowEvent(['1', '2', 'x'], { count: 5, sum: 5 }), lambdaContext()),
    ).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }],
      state: { count: 5, sum: 5 },
    })
  })

  it('says what to configure when the event has no window', async () => {
    const { lambda } = totalsHandler()
    await expect(lambda(kinesisEvent([{ data: '1' }]), lambdaContext())).rejects.toThrow(
      /set TumblingWindowInSeconds/,
    )
  })

  it('refuses a state that is not a plain object, which Lambda would not carry back as it went', async () => {
    const counting = (initialState: () => unknown, reduce: (n: never) => unknown = (n) => n) =>
      middy(foldWindow(reduce as never, { initialState: initialState as never }))
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
    await expect(counting(() => 0)(windowEvent(['1'], {}), lambdaContext())).rejects.toThrow(
      "@shardwise/partial-failures: foldWindow's state must be a plain object, as Lambda carries it between invocations; initialState() gave number",
    )
    await expect(
      counting(
        () => ({ n: 0 }),
        () => [1],
      )(windowEvent(['1'], {}), lambdaContext()),
    ).rejects.toThrow(/; reduce gave an array$/)
    await expect(
      counting(() => ({ n: 0 }))(windowEvent(['1'], 7), lambdaContext()),
    ).rejects.toThrow(/; the event's state gave number$/)
    await expect(
      counting(() => new Map())(windowEvent(['1'], {}), lambdaContext()),
    ).rejects.toThrow(/; initialState\(\) gave a Map instance$/)
    // A plain object, or one without a prototype, is what Lambda carries back.
    const bare = Object.assign(Object.create(null), { n: 1 })
    await expect(
      counting(() => bare)(windowEvent(['1'], {}), lambdaContext()),
    ).resolves.toMatchObject({ state: { n: 1 } })
  })

  it('says so when the state cannot be sent as JSON, which Lambda needs to carry it', async () => {
    const lambda = middy(
      foldWindow((state: { n: bigint }) => ({ n: state.n + 1n }), {
        initialState: () => ({ n: 0n }),
        onWindowEnd: () => {},
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    await expect(lambda(windowEvent(['1'], {}), lambdaContext())).rejects.toThrow(
      "@shardwise/partial-failures: foldWindow's state cannot be sent as JSON, as Lambda carries it: Do not know how to serialize a BigInt",
    )
  })

  it('types the state as an object', () => {
    // @ts-expect-error: a number state is refused by the types as well as at run time
    foldWindow((n: number) => n + 1, { initialState: () => 0 })
    foldWindow((totals: Totals) => totals, { initialState: () => ({ count: 0, sum: 0 }) })
  })

  it('needs an initial state when it is built', () => {
    expect(() => foldWindow((s) => s, {} as never)).toThrow(/initialState/)
  })
})
