/**
 * Record observers: what sees each record the record loop runs (its start, its end, and the
 * context it runs in) without the loop knowing who looks. A middleware registers an observer on
 * the event (`observeRecords`) before the loop runs; the loop wraps its record handler with
 * `observedHandler`, which hands the handler back untouched when no one observes, so the hot
 * path pays nothing then.
 *
 * While an observed handler runs, `currentRecord()` answers its record: a plain variable when the
 * records of the batch run one at a time, an AsyncLocalStorage when they may overlap
 * (`'partitionKey'`, `'none'`, or several invocations at once in one process), as entering one
 * costs every promise of the process about 200 ns from then on.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { KinesisRecord } from './index.js'

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
  if (typeof event !== 'object' || event === null) return
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
  if (typeof event !== 'object' || event === null) return undefined
  return (event as { [RECORD_OBSERVERS]?: RecordObserver[] })[RECORD_OBSERVERS]
}

/** The record of the running handler when records run one at a time. */
let runningRecord: KinesisRecord<unknown> | undefined
/** Made on the first batch whose records may overlap: until then no promise pays for it. */
let recordScope: AsyncLocalStorage<KinesisRecord<unknown>> | undefined

/**
 * The record whose handler is running here, when an observer watches the batch (the record
 * handler itself, and everything it calls or awaits); `undefined` outside a record.
 */
export function currentRecord(): KinesisRecord<unknown> | undefined {
  return recordScope?.getStore() ?? runningRecord
}

type Handler<T, C, O> = (record: KinesisRecord<T>, context: C, options: O) => unknown

/**
 * `handler` with the observers around each call, or `handler` itself without observers.
 * `overlapping`: records of the batch may run at the same time.
 */
export function observedHandler<T, C, O>(
  handler: Handler<T, C, O>,
  observers: readonly RecordObserver[] | undefined,
  overlapping: boolean,
): Handler<T, C, O> {
  if (observers === undefined || observers.length === 0) return handler
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

  // Lambda Managed Instances run several invocations in one process at once.
  const scoped = overlapping || process.env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined
  if (starts.length === 0 && ends.length === 0 && arounds.length === 0) {
    return scoped ? inScope(handler) : tracked(handler)
  }
  const observed = async (record: KinesisRecord<T>, context: C, options: O) => {
    const at = record as KinesisRecord<unknown>
    if (!scoped) runningRecord = at
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
    if (!scoped) runningRecord = undefined
    if (failed) throw error
    return result
  }
  return scoped ? inScope(observed) : observed
}

function inScope<T, C, O>(handler: Handler<T, C, O>): Handler<T, C, O> {
  recordScope ??= new AsyncLocalStorage()
  const scope = recordScope
  return (record, context, options) => scope.run(record, handler, record, context, options)
}

/**
 * Only `currentRecord()` is asked for, records run one at a time: the record is set, and
 * cleared when the handler settles, without the promise and turn of an async wrapper (about
 * 100 ns a record, a seventh of the whole chain's per-record cost on 100-record batches).
 */
function tracked<T, C, O>(handler: Handler<T, C, O>): Handler<T, C, O> {
  return (record, context, options) => {
    runningRecord = record as KinesisRecord<unknown>
    let result: unknown
    try {
      result = handler(record, context, options)
    } catch (thrown) {
      runningRecord = undefined
      throw thrown
    }
    // The loop awaits `result` itself; this reaction, added first, runs just before it resumes.
    if (isThenable(result)) result.then(clearRunning, clearRunning)
    else runningRecord = undefined
    return result
  }
}

function clearRunning(): void {
  runningRecord = undefined
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null | undefined)?.then === 'function'
}
