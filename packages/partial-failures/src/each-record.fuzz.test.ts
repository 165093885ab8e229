/**
 * The invariants of DESIGN.md section 2, stated as properties over random batches: sizes from 1
 * to 10,000 records, random partition keys, random failures (retryable and not, in the handler
 * and in decoding; thrown values whose getters throw, Proxies, Symbols), a poison sink that is
 * absent, reliable, flaky or rejecting with such values, handlers that overwrite their record's
 * fields, random handler latencies, every ordering mode and concurrency.
 */
import middy from '@middy/core'
import { NonRetryableError } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { hostileThrownValue } from '@shardwise/test-internals'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  eachRecord,
  type KinesisRecord,
  type Ordering,
  type PoisonSink,
  partialFailures,
} from './index.js'

// CPU-bound property tests: a minute or two at a load average of 40 on 2 cores, where every
// package's tests run at once beside other work; the number of runs stays as it is.
const BUSY_MACHINE_MS = 600_000

/** A small deterministic generator, so that a large batch costs one fast-check value. */
function prng(seed: number) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) / 4294967296
  }
}

interface Scenario {
  size: number
  keys: number
  handlerFailureRate: number
  nonRetryableRate: number
  decodeFailureRate: number
  sink: 'none' | 'reliable' | 'flaky' | 'hostile'
  /** How often a retryable failure throws a value the library did not create. */
  hostileRate: number
  mutateRate: number
  /** 'throwing': a logger whose every call throws a value whose getters throw. */
  logger: 'none' | 'throwing'
  slowRate: number
  ordering: Ordering
  concurrency: number
  seed: number
}

const throwingLogger = {
  error: () => {
    throw hostileThrownValue(0)
  },
  warn: () => {
    throw hostileThrownValue(4)
  },
  info: () => {
    throw hostileThrownValue(5)
  },
  debug: () => {
    throw hostileThrownValue(6)
  },
}

const rate = (max: number) => fc.oneof(fc.constant(0), fc.double({ min: 0, max, noNaN: true }))

const scenario = fc.record<Scenario>({
  size: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 40 }) },
    { weight: 3, arbitrary: fc.integer({ min: 41, max: 1_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1_001, max: 10_000 }) },
  ),
  keys: fc.integer({ min: 1, max: 12 }),
  handlerFailureRate: rate(0.2),
  nonRetryableRate: fc.double({ min: 0, max: 1, noNaN: true }),
  decodeFailureRate: rate(0.05),
  sink: fc.constantFrom('none', 'reliable', 'flaky', 'hostile'),
  hostileRate: rate(1),
  mutateRate: rate(1),
  logger: fc.constantFrom('none', 'throwing'),
  slowRate: fc.double({ min: 0, max: 1, noNaN: true }),
  ordering: fc.constantFrom<Ordering>('shard', 'partitionKey', 'none'),
  concurrency: fc.integer({ min: 1, max: 16 }),
  seed: fc.integer(),
})

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))
const positionOf = (sequence: string) => Number(sequence.slice(-7))

async function check(s: Scenario) {
  const random = prng(s.seed)
  const keys: string[] = []
  const failsInHandler: boolean[] = []
  const nonRetryable: boolean[] = []
  const failsInDecoding: boolean[] = []
  const sinkRefuses: boolean[] = []
  const hostileThrow: boolean[] = []
  const mutates: boolean[] = []
  const latency: number[] = []
  const specs = []
  for (let i = 0; i < s.size; i++) {
    keys.push(`key-${Math.floor(random() * s.keys)}`)
    failsInDecoding.push(random() < s.decodeFailureRate)
    failsInHandler.push(random() < s.handlerFailureRate)
    nonRetryable.push(random() < s.nonRetryableRate)
    sinkRefuses.push((s.sink === 'flaky' || s.sink === 'hostile') && random() < 0.5)
    hostileThrow.push(random() < s.hostileRate)
    mutates.push(random() < s.mutateRate)
    latency.push(random() < s.slowRate ? Math.floor(random() * 4) : 0)
    specs.push({
      data: failsInDecoding[i] ? { base64: 'bad base64!' } : String(i),
      partitionKey: keys[i] as string,
    })
  }
  const poisoned = (i: number) => failsInDecoding[i] || (failsInHandler[i] && nonRetryable[i])
  const divertable = (i: number) => s.sink !== 'none' && poisoned(i) && !sinkRefuses[i]

  // What happened, in the order it happened; violations are collected as text so that a
  // failing case says which invariant broke.
  const violations: string[] = []
  const starts = new Array<number>(s.size).fill(0)
  const sunk = new Array<number>(s.size).fill(0)
  const succeeded = new Array<boolean>(s.size).fill(false)
  const startedAt = new Array<number>(s.size).fill(-1)
  const failedAt = new Array<number>(s.size).fill(-1)
  const busyKeys = new Set<string>()
  // Where each record handed to the handler is, kept before the handler can write over it.
  const positions = new WeakMap<object, number>()
  let clock = 0
  let inFlight = 0
  let mostInFlight = 0

  const body = async (record: KinesisRecord<unknown>, i: number, key: string) => {
    starts[i] = (starts[i] ?? 0) + 1
    startedAt[i] = clock++
    mostInFlight = Math.max(mostInFlight, ++inFlight)
    const exclusive = s.ordering !== 'none'
    if (exclusive && busyKeys.has(key)) violations.push(`record ${i} overlaps its key ${key}`)
    busyKeys.add(key)
    try {
      for (let t = 0; t < (latency[i] ?? 0); t++) await tick()
      if (mutates[i]) {
        // Its sequence number too: the answer must not be read from the record (issue 13, item 3).
        const writable = record as { -readonly [K in keyof KinesisRecord<unknown>]: unknown }
        writable.data = hostileThrownValue(i)
        writable.partitionKey = hostileThrownValue(i + 1)
        writable.shardId = undefined
        writable.subSequenceNumber = hostileThrownValue(i + 2)
        writable.sequenceNumber = sequenceNumber(s.size - 1)
      }
      if (failsInHandler[i]) {
        if (nonRetryable[i]) throw new NonRetryableError(`record ${i} is poison`)
        throw hostileThrow[i] ? hostileThrownValue(i) : new Error(`${i}`)
      }
      succeeded[i] = true
    } finally {
      if (exclusive) busyKeys.delete(key)
      inFlight--
    }
  }

  // Each callback below registers its own reaction before eachRecord awaits the promise, so
  // it runs the moment eachRecord can see the failure, and nothing runs in between.
  const sink: PoisonSink = (record, error) => {
    const i = positions.get(record) ?? positionOf(record.sequenceNumber)
    sunk[i] = (sunk[i] ?? 0) + 1
    if (error.retryable) violations.push(`retryable record ${i} reached the sink`)
    const taken = (async () => {
      await tick()
      if (sinkRefuses[i])
        throw s.sink === 'hostile' ? hostileThrownValue(i) : new Error('unavailable')
    })()
    taken.catch(() => {
      failedAt[i] = clock++
    })
    return taken
  }

  const lambda = middy(
    eachRecord(
      (record) => {
        const i = positionOf(record.sequenceNumber)
        positions.set(record, i)
        const settled = body(record, i, record.partitionKey)
        if (s.sink === 'none' || !poisoned(i)) {
          settled.catch(() => {
            failedAt[i] = clock++
          })
        }
        return settled
      },
      { ordering: s.ordering, concurrency: s.concurrency },
    ),
  )
    .use(kinesisDecode())
    .use(
      partialFailures({
        logger: s.logger === 'none' ? false : throwingLogger,
        ...(s.sink === 'none' ? {} : { onPoison: sink }),
      }),
    )

  const response = await lambda(kinesisEvent(specs), lambdaContext())

  // The first record that can neither succeed nor be diverted.
  let first = -1
  for (let i = 0; i < s.size; i++) {
    if ((failsInDecoding[i] || failsInHandler[i]) && !divertable(i)) {
      first = i
      break
    }
  }

  // Invariants 6 and 2: a valid answer naming exactly the first record that did not succeed.
  expect(response).toEqual({
    batchItemFailures: first === -1 ? [] : [{ itemIdentifier: sequenceNumber(first) }],
  })

  const end = first === -1 ? s.size : first
  // Latest start among the records from position i on, to check invariant 3 in one pass.
  const latestStartFrom = new Array<number>(s.size + 1).fill(-1)
  for (let i = s.size - 1; i >= 0; i--) {
    latestStartFrom[i] = Math.max(latestStartFrom[i + 1] as number, startedAt[i] as number)
  }
  const lastStartOfKey = new Map<string, number>()
  let lastStart = -1
  for (let i = 0; i < s.size; i++) {
    // Invariant 1: everything before the checkpoint succeeded, or a sink took it.
    if (i < end && !succeeded[i] && !(divertable(i) && sunk[i] === 1)) {
      violations.push(`record ${i} before the checkpoint was neither handled nor diverted`)
    }
    // Invariant 7: a record that failed to decode never reaches the handler.
    if (failsInDecoding[i] && starts[i] !== 0)
      violations.push(`undecodable record ${i} was handled`)
    // Invariant 5: at most once, in the handler and in the sink.
    if ((starts[i] as number) > 1) violations.push(`record ${i} started ${starts[i]} times`)
    if ((sunk[i] as number) > 1) violations.push(`record ${i} reached the sink ${sunk[i]} times`)
    if ((sunk[i] as number) > 0 && !poisoned(i)) violations.push(`healthy record ${i} was sunk`)
    // A record goes to the sink only when the answer moves past it: one after the checkpoint
    // comes again, and would reach the sink again.
    if (i > end && (sunk[i] as number) > 0) {
      violations.push(`record ${i}, after the checkpoint ${end}, reached the sink`)
    }
    // Invariant 3: once a record has failed for good, nothing after it starts.
    const failed = failedAt[i] as number
    if (failed !== -1 && (latestStartFrom[i + 1] as number) > failed) {
      violations.push(`a record after ${i} started after ${i} failed`)
    }
    if (i === first && failsInDecoding[i] && s.sink === 'none' && latestStartFrom[i + 1] !== -1) {
      violations.push(`a record after the undecodable record ${i} started`)
    }
    // Invariant 4: each key's records start in batch order; in 'shard' order, the whole batch.
    const started = startedAt[i] as number
    if (started === -1) continue
    const key = keys[i] as string
    if (s.ordering !== 'none' && started < (lastStartOfKey.get(key) ?? -1)) {
      violations.push(`record ${i} of ${key} started before an earlier record of its key`)
    }
    lastStartOfKey.set(key, started)
    if (s.ordering === 'shard' && started < lastStart) violations.push(`record ${i} out of order`)
    lastStart = Math.max(lastStart, started)
  }
  // Invariant 5: at most `concurrency` at once, and one in 'shard' order.
  const allowed = s.ordering === 'shard' ? 1 : s.concurrency
  if (mostInFlight > allowed) violations.push(`${mostInFlight} in flight, ${allowed} allowed`)

  expect(violations).toEqual([])
}

describe('eachRecord keeps the invariants of DESIGN.md section 2', () => {
  it('for random batches in every ordering mode', { timeout: BUSY_MACHINE_MS }, async () => {
    await fc.assert(fc.asyncProperty(scenario, check), { numRuns: 2_000 })
  })

  it('for the largest batches Lambda sends', { timeout: BUSY_MACHINE_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(
        scenario.map((s) => ({ ...s, size: 10_000 })),
        check,
      ),
      { numRuns: 20 },
    )
  })
})
