import type { Verdict } from '@shardwise/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { invocationRecord } from './destination.js'
import { MAX_PAYLOAD_BYTES, type PendingRecord } from './event.js'
import { type Batch, Lane, type LaneRules, type Settlement } from './lane.js'
import { records, sequenceNumber as seq } from './test-helpers.js'

const rules = (overrides: Partial<LaneRules> = {}): LaneRules => ({
  batchSize: 10,
  maximumBatchingWindowMs: 0,
  bisectBatchOnFunctionError: false,
  maximumRetryAttempts: -1,
  maximumRecordAgeMs: -1,
  tumblingWindowMs: 0,
  ...overrides,
})

const destinationContext = {
  shardId: 'shardId-000000000006',
  streamArn: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
  functionArn: 'arn:aws:lambda:us-east-2:123456789012:function:local-function',
  requestId: 'c9b8fa9f-5a7f-4b2a-af9c-0c604cde93a5',
  nowMs: 0,
}
const success: Verdict = { kind: 'success' }
const failure: Verdict = { kind: 'failure', reason: 'boom', functionError: 'Unhandled' }
const partial = (checkpoint: number): Verdict => ({ kind: 'partial', checkpoint })
const seqs = (batch: Batch | undefined) => batch?.records.map((r) => r.sequenceNumber) ?? []
const range = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => seq(from + i))

function lane(r: Partial<LaneRules>, list: PendingRecord[]): Lane {
  const l = new Lane(rules(r))
  for (const record of list) l.push(record)
  return l
}

/** Invokes the next batch with `answer` and returns the batch and the settlement. */
function step(l: Lane, answer: (batch: Batch) => Verdict, now = 0) {
  const batch = l.next(now)
  if (batch === undefined) throw new Error('no batch ready')
  const settlement = l.settle(batch, answer(batch))
  return { batch, settlement }
}

/**
 * Settles `batch` with a success (kind 0), a failure (1) or a partial failure at `at` (2), and
 * adds the sequence numbers it checkpointed or discarded to `settled`.
 */
function answer(l: Lane, batch: Batch, kind: number, at: number, settled: string[]): void {
  const verdict = kind === 0 ? success : kind === 1 ? failure : partial(at % batch.records.length)
  const settlement = l.settle(batch, verdict)
  for (let j = 0; j < settlement.succeeded; j++) {
    settled.push(batch.records[j]?.sequenceNumber as string)
  }
  for (const r of settlement.discarded?.records ?? []) settled.push(r.sequenceNumber)
}

describe('Lane: batches', () => {
  it('takes up to BatchSize records in sequence order', () => {
    const l = lane({ batchSize: 4 }, records(10))
    expect(seqs(step(l, () => success).batch)).toEqual(range(0, 4))
    expect(seqs(step(l, () => success).batch)).toEqual(range(4, 8))
    expect(seqs(step(l, () => success).batch)).toEqual(range(8, 10))
    expect(l.next(0)).toBeUndefined()
  })

  it('keeps a batch under the 6 MB payload limit', () => {
    const big = records(8, { bytes: 1024 * 1024 }) // about 1.4 MB each once in base64
    const l = lane({ batchSize: 100 }, big)
    const first = step(l, () => success).batch
    expect(first.records.length).toBe(4)
    const bytes = first.records.reduce((sum, r) => sum + r.bytes + 1, 13)
    expect(bytes).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES)
  })

  it('waits up to MaximumBatchingWindowInSeconds for a full batch', () => {
    const l = lane({ batchSize: 10, maximumBatchingWindowMs: 2000 }, records(3, { readMs: 1000 }))
    expect(l.next(2999)).toBeUndefined()
    expect(seqs(l.next(3000))).toEqual(range(0, 3))
  })

  it('does not wait when the batch is full', () => {
    const l = lane({ batchSize: 3, maximumBatchingWindowMs: 300_000 }, records(3, { readMs: 1000 }))
    expect(seqs(l.next(1000))).toEqual(range(0, 3))
  })

  it('has one batch in flight at a time', () => {
    const l = lane({ batchSize: 2 }, records(4))
    expect(l.next(0)).toBeDefined()
    expect(l.next(0)).toBeUndefined()
  })
})

describe('Lane: ReportBatchItemFailures checkpoint (services-kinesis-batchfailurereporting)', () => {
  it('checkpoints before the reported record and retries from it', () => {
    const l = lane({ batchSize: 5 }, records(8))
    const first = step(l, () => partial(2))
    expect(first.settlement).toMatchObject({ succeeded: 2, retry: true })
    // Without bisect, Lambda re-reads from the checkpoint: a full batch again.
    expect(seqs(step(l, () => success).batch)).toEqual(range(2, 7))
  })

  it('retries the whole batch on an invalid answer (an empty or null identifier)', () => {
    const l = lane({ batchSize: 5 }, records(5))
    expect(step(l, () => failure).settlement).toMatchObject({ succeeded: 0, retry: true })
    expect(seqs(step(l, () => success).batch)).toEqual(range(0, 5))
  })
})

describe('Lane: BisectBatchOnFunctionError (kinesis-on-failure-destination)', () => {
  it('splits a failed batch in two, without consuming a retry', () => {
    const l = lane(
      { batchSize: 8, bisectBatchOnFunctionError: true, maximumRetryAttempts: 0 },
      records(8),
    )
    expect(step(l, () => failure).settlement).toMatchObject({
      bisected: true,
      discarded: undefined,
    })
    const half = step(l, () => success).batch
    expect(seqs(half)).toEqual(range(0, 4))
    expect(half.retries).toBe(0)
    expect(seqs(step(l, () => success).batch)).toEqual(range(4, 8))
  })

  it('bisects at the reported record and retries only the remaining records', () => {
    const l = lane({ batchSize: 8, bisectBatchOnFunctionError: true }, records(12))
    expect(step(l, () => partial(5)).settlement).toMatchObject({ succeeded: 5, retry: true })
    // Records 8 to 11 wait: the retry is exactly what was left of the batch.
    expect(seqs(step(l, () => success).batch)).toEqual(range(5, 8))
    expect(seqs(step(l, () => success).batch)).toEqual(range(8, 12))
  })

  it('corners a poison record and sends only it to the destination', () => {
    const poison = seq(5)
    const l = lane(
      { batchSize: 8, bisectBatchOnFunctionError: true, maximumRetryAttempts: 1 },
      records(8),
    )
    const discarded: string[] = []
    const done: string[] = []
    for (let i = 0; i < 50; i++) {
      const batch = l.next(0)
      if (batch === undefined) break
      const at = batch.records.findIndex((r) => r.sequenceNumber === poison)
      const settlement = l.settle(batch, at === -1 ? success : partial(at))
      done.push(...batch.records.slice(0, settlement.succeeded).map((r) => r.sequenceNumber))
      discarded.push(...(settlement.discarded?.records.map((r) => r.sequenceNumber) ?? []))
    }
    expect(discarded).toEqual([poison])
    expect(done).toEqual(range(0, 8).filter((s) => s !== poison))
  })

  it('retries a single failing record (it cannot be split)', () => {
    const l = lane({ batchSize: 1, bisectBatchOnFunctionError: true }, records(1))
    expect(step(l, () => failure).settlement).toMatchObject({ bisected: false, retry: true })
    expect(step(l, () => success).batch.retries).toBe(1)
  })
})

describe('Lane: MaximumRetryAttempts', () => {
  it('stops retrying after MaximumRetryAttempts and discards the batch', () => {
    const l = lane({ batchSize: 3, maximumRetryAttempts: 2 }, records(5))
    const settlements: Settlement[] = []
    for (let i = 0; i < 3; i++) settlements.push(step(l, () => failure).settlement)
    expect(settlements.map((s) => s.retry)).toEqual([true, true, false])
    const discarded = settlements[2]?.discarded
    expect(discarded?.condition).toBe('RetryAttemptsExhausted')
    expect(discarded?.invokeCount).toBe(3)
    expect(discarded?.records.map((r) => r.sequenceNumber)).toEqual(range(0, 3))
    // The shard moves on.
    expect(seqs(step(l, () => success).batch)).toEqual(range(3, 5))
  })

  it('never retries with MaximumRetryAttempts 0', () => {
    const l = lane({ batchSize: 3, maximumRetryAttempts: 0 }, records(3))
    expect(step(l, () => failure).settlement.discarded?.records.length).toBe(3)
  })

  it('discards only the records from the checkpoint on, after partial failures', () => {
    const l = lane({ batchSize: 4, maximumRetryAttempts: 1 }, records(4))
    expect(step(l, () => partial(1)).settlement).toMatchObject({ succeeded: 1, retry: true })
    const last = step(l, () => partial(0)).settlement
    expect(last.discarded?.records.map((r) => r.sequenceNumber)).toEqual(range(1, 4))
  })

  it('retries forever with -1', () => {
    const l = lane({ batchSize: 2 }, records(2))
    for (let i = 0; i < 100; i++) expect(step(l, () => failure).settlement.retry).toBe(true)
  })
})

describe('Lane: MaximumRecordAgeInSeconds', () => {
  it('skips records older than the maximum age to the destination, unseen by the function', () => {
    const l = lane(
      { batchSize: 10, maximumRecordAgeMs: 60_000 },
      records(6, { arrivalMs: (i) => (i < 4 ? 0 : 50_000) }),
    )
    const [expired, ...more] = l.expire(60_001)
    expect(more).toEqual([])
    expect(expired?.condition).toBe('RecordAgeExceeded')
    expect(expired?.invokeCount).toBe(0)
    expect(expired?.failure).toBeUndefined()
    expect(expired?.records.map((r) => r.sequenceNumber)).toEqual(range(0, 4))
    expect(seqs(step(l, () => success, 60_001).batch)).toEqual(range(4, 6))
  })

  it('stops retrying records once they are too old', () => {
    const l = lane({ batchSize: 3, maximumRecordAgeMs: 60_000 }, records(3, { arrivalMs: () => 0 }))
    step(l, () => failure, 10_000)
    step(l, () => failure, 30_000)
    const [expired, ...more] = l.expire(60_001)
    expect(more).toEqual([])
    expect(expired?.records.length).toBe(3)
    expect(expired?.invokeCount).toBe(2)
    expect(expired?.failure).toEqual(failure)
    expect(l.next(60_001)).toBeUndefined()
  })

  it('reports the failing batch and the never-invoked records as separate batches of at most BatchSize', () => {
    const l = lane({ batchSize: 3, maximumRecordAgeMs: 60_000 }, records(8, { arrivalMs: () => 0 }))
    step(l, () => failure, 10_000)
    const expired = l.expire(60_001)
    expect(expired.map((d) => d.records.map((r) => r.sequenceNumber))).toEqual([
      range(0, 3),
      range(3, 6),
      range(6, 8),
    ])
    expect(expired.map((d) => [d.invokeCount, d.failure])).toEqual([
      [1, failure],
      [0, undefined],
      [0, undefined],
    ])
    const documents = expired.map((d) => invocationRecord(d, destinationContext))
    expect(documents.map((d) => d.KinesisBatchInfo.batchSize)).toEqual([3, 3, 2])
    // As AWS writes RecordAgeExceeded: no responseContext, and at least 1 invocation.
    expect(documents.map((d) => d.responseContext)).toEqual([undefined, undefined, undefined])
    expect(documents.map((d) => d.requestContext.approximateInvokeCount)).toEqual([1, 1, 1])
  })

  it('reports each half of a bisected batch as invoked, with the failure that split it', () => {
    const l = lane(
      { batchSize: 4, bisectBatchOnFunctionError: true, maximumRecordAgeMs: 60_000 },
      records(6, { arrivalMs: () => 0 }),
    )
    step(l, () => failure, 10_000)
    const expired = l.expire(60_001)
    expect(expired.map((d) => [d.records.map((r) => r.sequenceNumber), d.invokeCount])).toEqual([
      [range(0, 2), 1],
      [range(2, 4), 1],
      [range(4, 6), 0],
    ])
    expect(expired.map((d) => d.failure?.reason)).toEqual(['boom', 'boom', undefined])
  })

  it('whatever the answers and the clock, every record is checkpointed or discarded once, in batches of at most BatchSize', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.integer({ min: -1, max: 3 }),
        fc.infiniteStream(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.nat(), fc.nat(30_000))),
        (count, batchSize, bisectBatchOnFunctionError, maximumRetryAttempts, answers) => {
          // One record a second; a minute's maximum age.
          const list = records(count, { arrivalMs: (i) => i * 1000 })
          const l = lane(
            {
              batchSize,
              bisectBatchOnFunctionError,
              maximumRetryAttempts,
              maximumRecordAgeMs: 60_000,
            },
            list,
          )
          const settled: string[] = []
          const iterator = answers[Symbol.iterator]()
          let now = 0
          for (let i = 0; i < 100_000; i++) {
            const [kind, at, elapsed] = iterator.next().value as [number, number, number]
            now += elapsed
            for (const discard of l.expire(now)) {
              expect(discard.records.length).toBeLessThanOrEqual(batchSize)
              expect(discard.invokeCount === 0).toBe(discard.failure === undefined)
              for (const r of discard.records) settled.push(r.sequenceNumber)
            }
            const batch = l.next(now)
            if (batch === undefined) break
            answer(l, batch, kind, at, settled)
          }
          expect(l.waiting).toBe(0)
          expect(settled).toEqual(list.map((r) => r.sequenceNumber))
        },
      ),
      { numRuns: 2000 },
    )
  })
})

describe('Lane: tumbling windows (services-kinesis-windows)', () => {
  const windowed = { batchSize: 100, tumblingWindowMs: 10_000 }
  const state = (value: unknown, checkpoint?: number): Verdict =>
    checkpoint === undefined
      ? { kind: 'success', state: value, stateBytes: JSON.stringify(value).length }
      : { kind: 'partial', checkpoint, state: value, stateBytes: JSON.stringify(value).length }

  it('keeps a window in its own batches, carries state, and ends with a final invocation', () => {
    const l = lane(
      windowed,
      records(5, { arrivalMs: (i) => [1000, 2000, 9000, 12_000, 13_000][i] as number }),
    )
    const first = step(l, () => state({ sum: 3 }))
    expect(seqs(first.batch)).toEqual(range(0, 3))
    expect(first.batch.window).toEqual({ startMs: 0, endMs: 10_000 })
    expect(first.batch.state).toEqual({})

    const final = step(l, () => state({ sum: 3 }))
    expect(final.batch.records).toEqual([])
    expect(final.batch.isFinalInvokeForWindow).toBe(true)
    expect(final.batch.state).toEqual({ sum: 3 })

    const next = step(l, () => state({ sum: 2 }))
    expect(seqs(next.batch)).toEqual(range(3, 5))
    expect(next.batch.window).toEqual({ startMs: 10_000, endMs: 20_000 })
    expect(next.batch.state).toEqual({})
  })

  it('closes a window when its time is over, even with no records after it', () => {
    const l = lane(windowed, records(1, { arrivalMs: () => 1000 }))
    step(l, () => state({ n: 1 }), 1000)
    expect(l.next(9999)).toBeUndefined()
    expect(l.next(10_000)?.isFinalInvokeForWindow).toBe(true)
  })

  it('retries a failed final invocation until it succeeds', () => {
    const l = lane(windowed, records(1, { arrivalMs: () => 1000 }))
    step(l, () => state({ n: 1 }), 1000)
    expect(step(l, () => failure, 10_000).settlement.retry).toBe(true)
    expect(l.next(10_000)?.isFinalInvokeForWindow).toBe(true)
  })

  it('terminates a window early when the state grows over 1 MB', () => {
    const l = lane(windowed, records(2, { arrivalMs: (i) => 1000 + i }))
    const huge = 'x'.repeat(1024 * 1024 + 1)
    l.settle(l.next(1000) as Batch, {
      kind: 'partial',
      checkpoint: 1,
      state: huge,
      stateBytes: huge.length + 2,
    })
    const early = l.next(1000)
    expect(early).toMatchObject({ isFinalInvokeForWindow: true, isWindowTerminatedEarly: true })
    l.settle(early as Batch, state({}))
    // The same window goes on, with a fresh state.
    const rest = l.next(1000)
    expect(seqs(rest)).toEqual([seq(1)])
    expect(rest?.window).toEqual({ startMs: 0, endMs: 10_000 })
    expect(rest?.state).toEqual({})
  })
})

describe('Lane: properties', () => {
  it('with bisect, every good record succeeds in order and only poison records are discarded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 16 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { maxLength: 4 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        (count, batchSize, poisonAt, report, maximumRetryAttempts) => {
          const list = records(count)
          const poison = new Set(poisonAt.filter((p) => p < count).map(seq))
          const l = lane(
            { batchSize, bisectBatchOnFunctionError: true, maximumRetryAttempts },
            list,
          )
          const done: string[] = []
          const discarded: string[] = []
          for (let i = 0; i < 10_000; i++) {
            const batch = l.next(0)
            if (batch === undefined) break
            const at = batch.records.findIndex((r) => poison.has(r.sequenceNumber))
            const verdict = at === -1 ? success : report ? partial(at) : failure
            const settlement = l.settle(batch, verdict)
            for (let j = 0; j < settlement.succeeded; j++)
              done.push(batch.records[j]?.sequenceNumber as string)
            for (const r of settlement.discarded?.records ?? []) discarded.push(r.sequenceNumber)
          }
          expect(l.waiting).toBe(0)
          expect(discarded.sort()).toEqual([...poison].sort())
          expect(done).toEqual(list.map((r) => r.sequenceNumber).filter((s) => !poison.has(s)))
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('whatever the answers, every record is checkpointed or discarded exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        fc.infiniteStream(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.nat())),
        (count, batchSize, bisectBatchOnFunctionError, maximumRetryAttempts, answers) => {
          const list = records(count)
          const l = lane({ batchSize, bisectBatchOnFunctionError, maximumRetryAttempts }, list)
          const settled: string[] = []
          const iterator = answers[Symbol.iterator]()
          for (let i = 0; i < 100_000; i++) {
            const batch = l.next(0)
            if (batch === undefined) break
            const [kind, at] = iterator.next().value as [number, number]
            answer(l, batch, kind, at, settled)
          }
          expect(l.waiting).toBe(0)
          expect(settled).toEqual(list.map((r) => r.sequenceNumber))
        },
      ),
      { numRuns: 2000 },
    )
  })
})

describe('Lane: where it stands, for the lag', () => {
  it('names its oldest record not done and the last record done before any sequence number', () => {
    const l = lane({ batchSize: 10 }, records(6))
    expect(l.lastDoneBefore(undefined)).toBeUndefined()
    expect(l.oldestUndone?.sequenceNumber).toBe(seq(0))
    step(l, () => partial(3))
    expect(l.oldestUndone?.sequenceNumber).toBe(seq(3))
    expect(l.lastDoneBefore(undefined)).toBe(seq(2))
    // Another lane of the shard holds an older record not done: the checkpoint is before it.
    expect(l.lastDoneBefore(seq(2))).toBe(seq(1))
    expect(l.lastDoneBefore(seq(0))).toBeUndefined()
    step(l, () => success)
    expect(l.oldestUndone).toBeUndefined()
    expect(l.lastDoneBefore(undefined)).toBe(seq(5))
  })
})
