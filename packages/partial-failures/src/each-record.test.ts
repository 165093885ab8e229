import { getEventListeners } from 'node:events'
import middy from '@middy/core'
import type { Context, KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { type EachRecordOptions, eachRecord, partialFailures, type RecordHandler } from './index.js'

const text = new TextDecoder()
const tick = () => new Promise((resolve) => setImmediate(resolve))

/** Runs a batch of text payloads through the whole chain and records what the handler saw. */
async function run(
  payloads: Array<string | { base64: string }>,
  handler: (payload: string, key: string) => Promise<void> | void,
  options?: EachRecordOptions,
  keyOf: (i: number) => string = () => '1',
) {
  const started: string[] = []
  const recordHandler: RecordHandler<Uint8Array> = async (record) => {
    const payload = text.decode(record.data)
    started.push(payload)
    await handler(payload, record.partitionKey)
  }
  const lambda = middy(eachRecord(recordHandler, options))
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
  const event = kinesisEvent(payloads.map((data, i) => ({ data, partitionKey: keyOf(i) })))
  const response = await lambda(event, lambdaContext())
  return { response, started }
}

const failed = (...positions: number[]) => ({
  batchItemFailures: positions.map((p) => ({ itemIdentifier: sequenceNumber(p) })),
})

describe("eachRecord in 'shard' order", () => {
  it('hands every record to the handler in batch order and reports nothing', async () => {
    const { response, started } = await run(['a', 'b', 'c'], () => {})
    expect(started).toEqual(['a', 'b', 'c'])
    expect(response).toEqual({ batchItemFailures: [] })
  })

  it('reports the first failed record and starts nothing after it', async () => {
    const { response, started } = await run(['a', 'b', 'c', 'd'], (p) => {
      if (p === 'b' || p === 'd') throw new Error(`no ${p}`)
    })
    expect(started).toEqual(['a', 'b'])
    expect(response).toEqual(failed(1))
  })

  it('never overlaps two records', async () => {
    let inFlight = 0
    let most = 0
    await run(['a', 'b', 'c', 'd', 'e'], async () => {
      most = Math.max(most, ++inFlight)
      await tick()
      inFlight--
    })
    expect(most).toBe(1)
  })

  it('catches synchronous throws and non-Error values as failures of that record', async () => {
    const sync = await run(['a', 'b'], (p) => {
      if (p === 'a') throw 'plain string'
    })
    expect(sync.response).toEqual(failed(0))
    expect(sync.started).toEqual(['a'])
  })

  it('never hands a record that failed to decode to the handler, and stops there', async () => {
    const { response, started } = await run(['a', { base64: 'not*base64' }, 'c'], () => {})
    expect(started).toEqual(['a'])
    expect(response).toEqual(failed(1))
  })
})

describe("eachRecord in 'partitionKey' order", () => {
  const keyOf = (i: number) => ['x', 'y', 'z'][i % 3] as string

  it('runs different keys concurrently and each key in batch order, never overlapping', async () => {
    const inFlight = new Set<string>()
    let most = 0
    const seen: Record<string, string[]> = {}
    const payloads = Array.from({ length: 30 }, (_, i) => String(i))
    await run(
      payloads,
      async (p, key) => {
        expect(inFlight.has(key)).toBe(false)
        inFlight.add(key)
        most = Math.max(most, inFlight.size)
        seen[key] = [...(seen[key] ?? []), p]
        await tick()
        inFlight.delete(key)
      },
      { ordering: 'partitionKey', concurrency: 8 },
      keyOf,
    )
    expect(most).toBe(3)
    for (const [key, list] of Object.entries(seen)) {
      const expected = payloads.filter((_, i) => keyOf(i) === key)
      expect(list).toEqual(expected)
    }
  })

  it('finishes the records before a failure, starts none after it once it failed', async () => {
    const payloads = Array.from({ length: 12 }, (_, i) => String(i))
    const finished: string[] = []
    const { response, started } = await run(
      payloads,
      async (p) => {
        if (p === '4') throw new Error('four')
        await tick()
        finished.push(p)
      },
      { ordering: 'partitionKey', concurrency: 3 },
      keyOf,
    )
    expect(response).toEqual(failed(4))
    for (const p of ['0', '1', '2', '3']) expect(finished).toContain(p)
    // Records 0..4 start first; 5 may already run beside 4; nothing from 6 on can start.
    expect(started.map(Number).every((i) => i <= 5)).toBe(true)
  })

  it('respects the concurrency limit', async () => {
    let inFlight = 0
    let most = 0
    await run(
      Array.from({ length: 40 }, (_, i) => String(i)),
      async () => {
        most = Math.max(most, ++inFlight)
        await tick()
        inFlight--
      },
      { ordering: 'partitionKey', concurrency: 4 },
      (i) => `key-${i}`,
    )
    expect(most).toBe(4)
  })
})

describe("eachRecord in 'none' order", () => {
  it('runs up to `concurrency` records at once, started in batch order', async () => {
    let inFlight = 0
    let most = 0
    const { started, response } = await run(
      Array.from({ length: 25 }, (_, i) => String(i)),
      async () => {
        most = Math.max(most, ++inFlight)
        await tick()
        inFlight--
      },
      { ordering: 'none', concurrency: 5 },
    )
    expect(most).toBe(5)
    expect(started).toEqual(Array.from({ length: 25 }, (_, i) => String(i)))
    expect(response).toEqual({ batchItemFailures: [] })
  })

  it('reports the lowest failure even when a later one failed first', async () => {
    const { response } = await run(
      ['0', '1', '2', '3'],
      async (p) => {
        if (p === '2') throw new Error('fast failure')
        if (p === '1') {
          await tick()
          await tick()
          throw new Error('slow failure')
        }
      },
      { ordering: 'none', concurrency: 4 },
    )
    expect(response).toEqual(failed(1))
  })
})

describe('eachRecord wiring', () => {
  it("passes middy's abort signal and the Lambda context to the record handler", async () => {
    const seen: unknown[] = []
    const lambda = middy(
      eachRecord(async (_record, context, { signal }) => {
        seen.push(context.functionName, signal instanceof AbortSignal)
      }),
    ).use(kinesisDecode())
    await lambda(kinesisEvent([{ data: 'a' }]), lambdaContext(60_000, 'orders'))
    expect(seen).toEqual(['orders', true])
  })

  it('hands the signal as a plain own property, so that spreading the options keeps it', async () => {
    // A getter here once kept every batch alive until a full collection (BENCHMARKS.md).
    const spread: Array<{ signal?: unknown }> = []
    const lambda = middy(
      eachRecord(async (_record, _context, options) => {
        expect(Object.getOwnPropertyDescriptor(options, 'signal')?.value).toBeInstanceOf(
          AbortSignal,
        )
        spread.push({ ...options })
      }),
    ).use(kinesisDecode())
    await lambda(kinesisEvent([{ data: 'a' }, { data: 'b' }]), lambdaContext())
    expect(spread).toHaveLength(2)
    expect(spread[0]?.signal).toBeInstanceOf(AbortSignal)
  })

  it("leaves no listener on middy's signal once the batch ends", async () => {
    // middy 6 (the peer range starts there) hands every invocation one module-level signal until
    // an abort; a listener left on it kept each batch alive for the life of the environment.
    const signals = new Set<AbortSignal>()
    const loop = eachRecord(async () => {})
    const lambda = middy(
      async (event: KinesisStreamEvent, context: Context, options: { signal: AbortSignal }) => {
        signals.add(options.signal)
        return loop(event, context, options)
      },
    ).use(kinesisDecode())
    for (let i = 0; i < 20; i++) {
      await lambda(kinesisEvent([{ data: 'a' }]), i % 2 === 0 ? lambdaContext() : ({} as Context))
    }
    expect(signals.size).toBeGreaterThan(0)
    for (const signal of signals) expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  it('carries the state of a tumbling window event on, also without partialFailures', async () => {
    const lambda = middy(eachRecord(async () => {})).use(kinesisDecode())
    const windowEvent = (state: unknown) => ({
      ...kinesisEvent([{ data: 'a' }]),
      window: { start: '2020-12-09T07:04:00Z', end: '2020-12-09T07:06:00Z' },
      state,
      shardId: 'shardId-000000000006',
      isFinalInvokeForWindow: false,
      isWindowTerminatedEarly: false,
    })
    // Lambda fails an answer without `state` on such a mapping, and retries the batch for ever.
    expect(await lambda(windowEvent({ '1': 282 }), lambdaContext())).toEqual({
      batchItemFailures: [],
      state: { '1': 282 },
    })
    expect(await lambda(windowEvent(undefined), lambdaContext())).toEqual({
      batchItemFailures: [],
      state: {},
    })
    expect(await lambda(kinesisEvent([{ data: 'a' }]), lambdaContext())).toEqual({
      batchItemFailures: [],
    })
  })

  it('says what is missing when kinesisDecode is not in the chain', async () => {
    const lambda = middy(eachRecord(async () => {}))
    await expect(lambda(kinesisEvent([{ data: 'a' }]), lambdaContext())).rejects.toThrow(
      /add \.use\(kinesisDecode\(\)\)/,
    )
  })

  it('rejects bad options when it is built', () => {
    expect(() => eachRecord(async () => {}, { ordering: 'key' as never })).toThrow(
      /@shardwise\/partial-failures: Option 'ordering' must be one of/,
    )
    expect(() => eachRecord(async () => {}, { concurrency: 0 })).toThrow(/concurrency/)
    expect(() => eachRecord('nope' as never)).toThrow(/needs a record handler function/)
  })
})
