/**
 * Record observers: what sees each record the record loop runs (its start, its end, and the
 * context it runs in) without the loop knowing who looks. A middleware registers an observer on
 * the event (`observeRecords`) before the loop runs; the loop asks `observedRun` for the handler
 * to call and the turns to announce, and gets the handler untouched and no turns when no one
 * observes, so the hot path pays nothing then.
 *
 * While an observed record's handler runs, `currentCoordinates()` answers the record's
 * coordinates, read from the batch's places (what the user's handler cannot write over). When
 * the records of the batch run one at a time, the loop sets the running record's place itself
 * as it starts each one and clears it as it settles: a number stored a record, where a wrapper
 * waiting on the handler's promise cost a promise reaction, about 20 ns a record (2% of the core
 * chain's cost on 100-record batches). When they may overlap (`'partitionKey'`, `'none'`, or several
 * invocations at once in one process), an AsyncLocalStorage keeps each one's, as entering one
 * costs every promise of the process about 200 ns from then on.
 */
import type { AsyncLocalStorage } from 'node:async_hooks'
import {
  coordinatesAt,
  isObjectLike,
  type KinesisRecord,
  propertyOf,
  type RecordBatch,
  type RecordCoordinates,
} from './index.js'

export interface RecordObserver {
  /** Called as the record handler starts on `record`. */
  start?(record: KinesisRecord<unknown>): void
  /** Called when it has ended: `failed` says whether it threw, and `error` is what it threw. */
  end?(record: KinesisRecord<unknown>, failed: boolean, error: unknown): void
  /**
   * Runs the handler (`run`) inside a context the observer keeps for the record while it runs,
   * such as OpenTelemetry's active span. It must call `run` once and return what it returns.
   */
  around?(record: KinesisRecord<unknown>, run: () => unknown): unknown
}

/** Where observers wait on the event for the record loop; `Symbol.for`, as `BATCH`. */
const RECORD_OBSERVERS: unique symbol = Symbol.for('@shardwise/record-observers') as never

/** Registers `observer` for the records of this event; registering it twice keeps one. */
export function observeRecords(event: unknown, observer: RecordObserver): void {
  if (!isObjectLike(event)) return
  const holder = event as { [RECORD_OBSERVERS]?: RecordObserver[] }
  const observers = holder[RECORD_OBSERVERS]
  if (observers === undefined) holder[RECORD_OBSERVERS] = [observer]
  else if (!observers.includes(observer)) observers.push(observer)
}

/** Takes `observer` off the event: an observer kept for one invocation leaves with it. */
export function unobserveRecords(event: unknown, observer: RecordObserver): void {
  const observers = getRecordObservers(event) as RecordObserver[] | undefined
  const at = observers?.indexOf(observer) ?? -1
  if (at !== -1) observers?.splice(at, 1)
}

export function getRecordObservers(event: unknown): readonly RecordObserver[] | undefined {
  return propertyOf(event, RECORD_OBSERVERS) as RecordObserver[] | undefined
}

/**
 * What the record loop announces of each record it runs, for the observers: `start(index)` just
 * before it calls the handler on `records[index]`, `end()` once that call settled, and
 * `finish()` once the loop is over (the timeout gives up on a record without its `end()`).
 */
export interface RecordTurns {
  start(index: number): void
  end(): void
  /** The loop is done with the batch: it starts no record of it any more, and gave up any still running. */
  finish(): void
}

/** The handler the loop calls for each record, and the turns it announces (none: no observer). */
export interface ObservedRun<H> {
  readonly handler: H
  readonly turns: RecordTurns | undefined
}

/**
 * The record whose handler runs now, when the records run one at a time: its batch, and its
 * place (-1 between records). The batch is stored when it changes, not at each record: storing
 * a young object into the module's long-lived context costs a write barrier, which storing both
 * at each record made about 15 ns a record (1.5% of a 100-record batch), against one number now.
 */
let runningBatch: RecordBatch<unknown> | undefined
let runningIndex = -1

interface Turn {
  readonly batch: RecordBatch<unknown>
  readonly index: number
}

/** Made on the first batch whose records may overlap: until then no promise pays for it. */
let recordScope: AsyncLocalStorage<Turn> | undefined

/** Lambda Managed Instances run several invocations in one process at once. */
let concurrentInvocations: boolean | undefined

/**
 * The coordinates of the record whose handler is running here, when an observer watches the
 * batch (the record handler itself, and everything it calls or awaits); `undefined` outside a
 * record. They are the batch's, as decoded: whatever the handler wrote over its record.
 */
export function currentCoordinates(): RecordCoordinates | undefined {
  const turn = recordScope?.getStore()
  if (turn !== undefined) return coordinatesAt(turn.batch, turn.index)
  return runningBatch === undefined || runningIndex === -1
    ? undefined
    : coordinatesAt(runningBatch, runningIndex)
}

type Handler<T, C, O> = (record: KinesisRecord<T>, context: C, options: O) => unknown

/**
 * How the loop runs `handler` over `batch` for the event's `observers`: the handler itself and
 * no turns without observers; otherwise the turns that keep the running record, and the handler
 * with the observers around each call. `overlapping`: records of the batch may run at the same
 * time.
 */
export function observedRun<T, C, O>(
  handler: Handler<T, C, O>,
  batch: RecordBatch<T>,
  observers: readonly RecordObserver[] | undefined,
  overlapping: boolean,
): ObservedRun<Handler<T, C, O>> {
  if (observers === undefined || observers.length === 0) return { handler, turns: undefined }
  const observed = withObservers(handler, observers)
  const records = batch as RecordBatch<unknown>
  concurrentInvocations ??= process.env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined
  if (!overlapping && !concurrentInvocations) {
    return {
      handler: observed,
      turns: {
        start(index) {
          // A batch run inside a record's handler (a nested chain) took the holder meanwhile.
          if (runningBatch !== records) runningBatch = records
          runningIndex = index
        },
        end() {
          runningIndex = -1
        },
        finish() {
          // Kept no longer than the loop, or it would keep the batch alive between invocations.
          runningIndex = -1
          runningBatch = undefined
        },
      },
    }
  }
  // Taken here, not imported: an ES module import of a built-in builds its module facade in
  // every cold start (about 0.1 ms in the bench's process), and records overlap only in some
  // orders. The bench's core-chain test fails if the chain imports anything at load.
  recordScope ??= new (process.getBuiltinModule('node:async_hooks').AsyncLocalStorage)()
  const scope = recordScope
  // The loop announces a record just before it calls the handler on it, in the same turn.
  let starting = -1
  return {
    handler: (record, context, options) =>
      scope.run({ batch: records, index: starting }, observed, record, context, options),
    turns: {
      start(index) {
        starting = index
      },
      end() {},
      finish() {},
    },
  }
}

/** `handler` with the observers' start, around and end about each call; itself when none has any. */
function withObservers<T, C, O>(
  handler: Handler<T, C, O>,
  observers: readonly RecordObserver[],
): Handler<T, C, O> {
  if (observers.every(({ start, end, around }) => !start && !end && !around)) return handler
  const starts = observers.filter((observer) => observer.start !== undefined)
  const ends = observers.filter((observer) => observer.end !== undefined)
  const arounds = observers.filter((observer) => observer.around !== undefined)

  const call =
    arounds.length === 0
      ? handler
      : (record: KinesisRecord<T>, context: C, options: O) =>
          aroundFrom(arounds, 0, record as KinesisRecord<unknown>, () =>
            handler(record, context, options),
          )
  return async (record: KinesisRecord<T>, context: C, options: O) => {
    const at = record as KinesisRecord<unknown>
    for (const observer of starts) observer.start?.(at)
    let result: unknown
    let failed = false
    let error: unknown
    try {
      result = call(record, context, options)
      if (isThenable(result)) result = await result
    } catch (thrown) {
      failed = true
      error = thrown
    }
    for (const observer of ends) observer.end?.(at, failed, error)
    if (failed) throw error
    return result
  }
}

function aroundFrom(
  arounds: readonly RecordObserver[],
  from: number,
  record: KinesisRecord<unknown>,
  run: () => unknown,
): unknown {
  const observer = arounds[from]
  if (observer === undefined) return run()
  return observer.around?.(record, () => aroundFrom(arounds, from + 1, record, run))
}

/** Whether `value` has a `then` method: a promise, or any thenable, which `await` would wait for. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function'
}
