/**
 * The record loop behind `eachRecord` and `foldWindow`: runs a handler over a decoded batch in
 * the chosen order, keeps each failure with its record, lets a poison sink take the records
 * that can never succeed, and stops in time to answer before Lambda's timeout.
 *
 * The limit is the heart of it: no record at or after it may start. It begins at the first
 * record that failed before the loop (decoding, parsing), drops to each failure as it happens,
 * and to 0 when time runs out or the loop ends, however it ends. Records before it all start,
 * so all of them finish.
 *
 * A record may wait for a step a parser left for its turn (an asynchronous validation): the loop
 * waits for it under the same guard, as part of the record.
 *
 * A record that can never succeed goes to the poison sink only when the answer will move past
 * it: when every record before it succeeded or went to the sink. In the concurrent orders a
 * record before it may still be running; the record then waits for it (see `advanceFrontier`).
 */
import {
  type Context,
  coordinatesAt,
  DIVERTED,
  FAILED,
  failRecord,
  isThenable,
  type KinesisRecord,
  MAX_TIMER_MS,
  messageOf,
  type PoisonSink,
  type RecordBatch,
  RecordError,
  RecordHandlerError,
  type RecordTurns,
  SUCCEEDED,
  shownValue,
} from '@shardwise/core'

/**
 * - `'shard'`: one record at a time, in batch order (Kinesis' own ordering guarantee).
 * - `'partitionKey'`: records of different keys run concurrently; each key's in batch order.
 * - `'none'`: any records run concurrently, taken in batch order; a record that waits for a
 *   step (an asynchronous validation) starts once that is done, which may be before a record
 *   ahead of it whose step is slower.
 */
export type Ordering = 'shard' | 'partitionKey' | 'none'

export interface RecordHandlerOptions {
  /** Aborted when the invocation must end: at the timeout margin, or by middy's own timeout. */
  signal: AbortSignal
}

export type RecordHandler<T> = (
  record: KinesisRecord<T>,
  context: Context,
  options: RecordHandlerOptions,
) => Promise<unknown> | unknown

export interface RunOptions {
  ordering: Ordering
  concurrency: number
  timeoutMarginMs: number
}

/** The sink failed to take a poison record, so the record stays failed and the shard stops. */
export class PoisonSinkError extends RecordError {
  override name = 'PoisonSinkError'
  constructor(poisoned: RecordError, cause: unknown) {
    super(poisoned, `the poison sink failed (${messageOf(cause)}) for: ${poisoned.message}`, {
      cause,
    })
  }
}

/** Time ran out before the record could be started or finished. */
export class TimeoutError extends Error {
  override name = 'TimeoutError'
}

interface Run<T> {
  readonly batch: RecordBatch<T>
  readonly handler: RecordHandler<T>
  readonly context: Context
  readonly options: RecordHandlerOptions
  readonly sink: PoisonSink | undefined
  /** What the record observers hear of each record's start and end; none without observers. */
  readonly turns: RecordTurns | undefined
  limit: number
  /** Set when time is up or the loop has ended: no record or sink call starts any more. */
  stopped: boolean
  /**
   * Every record before it succeeded or went to the sink: the first the answer may name. Kept
   * in the concurrent orders with a sink, where it decides which records go to the sink.
   */
  frontier: number
  /** Whether a worker is moving the frontier (and may be waiting for the sink). */
  movingFrontier: boolean
  /** Called when the sink took a record, for `runByKey` to free its partition key. */
  onDiverted: ((index: number) => void) | undefined
  readonly guard: Guard
}

/**
 * The timeout guard's clock. Its timer fires only when the loop yields to the event loop, which a
 * handler that never waits for I/O (synchronous, or CPU work behind `async`) never lets it do;
 * so the loop also reads the clock before records start. A read costs about 50 ns here, as much
 * as a tenth of a light record, so it reads every `stride` records: at most `MAX_STRIDE`, and
 * fewer when the records before went slowly (about an eighth of the margin's worth of records
 * between two reads). Records that suddenly slow down may run `MAX_STRIDE` of them past a read.
 */
interface Guard {
  readonly stop: AbortController
  readonly marginMs: number
  /** `performance.now()` after which no record may start; `Infinity` without a guard. */
  readonly deadline: number
  /** Records still to start before the next read of the clock. */
  untilRead: number
  /** Records between two reads, set at each read from the pace since the one before. */
  stride: number
  /** `performance.now()` at the last read. */
  lastRead: number
}

/** The most records between two reads of the clock, however fast they go. */
const MAX_STRIDE = 16

const runners = { shard: runInOrder, partitionKey: runByKey, none: runUnordered }

/** Runs `handler` over the batch; resolves when done, or when the timeout margin is reached. */
export async function runBatch<T>(
  batch: RecordBatch<T>,
  handler: RecordHandler<T>,
  options: RunOptions,
  context: Context,
  middySignal: AbortSignal | undefined,
  sink: PoisonSink | undefined,
  turns?: RecordTurns,
): Promise<void> {
  // The margin is checked before any record starts: a batch that cannot run must not begin.
  const remaining = options.timeoutMarginMs === 0 ? undefined : remainingTime(batch, context)
  const guarded = remaining !== undefined
  const delay = guarded ? remaining - options.timeoutMarginMs : 0
  if (guarded && delay <= 0) {
    throw new TimeoutError(
      `only ${remaining} ms left, within timeoutMarginMs (${options.timeoutMarginMs} ms): raise the function's timeout or lower timeoutMarginMs`,
    )
  }
  const stop = new AbortController()
  const now = guarded ? performance.now() : 0
  const run: Run<T> = {
    batch,
    handler,
    context,
    options: { signal: stop.signal },
    sink,
    turns,
    limit: failureLimit(batch, sink, batch.records.length),
    stopped: false,
    frontier: 0,
    movingFrontier: false,
    onDiverted: undefined,
    guard: {
      stop,
      marginMs: options.timeoutMarginMs,
      deadline: guarded ? now + delay : Infinity,
      untilRead: guarded ? 1 : Infinity,
      stride: 1,
      lastRead: now,
    },
  }
  // middy aborts its own signal at its early timeout, and the invocation has then failed: the
  // handler hears it through the same signal, and no record may start any more, as Lambda
  // redelivers them all and a loop left running would go on in a frozen or reused environment.
  // A listener, not AbortSignal.any: 4 µs against 9 per invocation here, controller included.
  // middy 6 hands every invocation the same module-level signal until one aborts it, so the
  // listener must go when the batch ends: left on, each would keep its batch alive for good.
  let onAbort: (() => void) | undefined
  if (middySignal?.aborted) {
    stopRun(run, middySignal.reason)
  } else if (middySignal !== undefined) {
    onAbort = () => stopRun(run, middySignal.reason)
    middySignal.addEventListener('abort', onAbort, { once: true })
  }
  let timer: NodeJS.Timeout | undefined
  try {
    const running = runners[options.ordering](run as Run<unknown>, options.concurrency)
    if (!guarded) return await running
    // One promise that the loop or the timer settles: Promise.race with a second promise for
    // the timer cost about 2 µs an invocation more.
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        stopRun(run)
        resolve()
      }, delay)
      running.then(resolve, reject)
    })
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) middySignal?.removeEventListener('abort', onAbort)
    // However the loop ended, the answer comes next: nothing may start after it, in a frozen
    // environment or beside the redelivered copies of these records.
    endRun(run)
    turns?.finish()
  }
}

/**
 * What the timeout guard has to say about a batch, for `partialFailures` to log at debug level:
 * why it did not guard the batch.
 */
export const guardNotes = new WeakMap<RecordBatch<unknown>, string>()

/**
 * The context's remaining time, or `undefined` when no deadline is known: no context, or a
 * `getRemainingTimeInMillis` that throws or answers something else than a number of
 * milliseconds a timer can wait (`Infinity`, `NaN`, more than 2^31 - 1, a negative number, as
 * local runners and tests give); Lambda's own is always one, as its timeout is 900 s at most.
 */
function remainingTime(batch: RecordBatch<unknown>, context: Context): number | undefined {
  const read = context?.getRemainingTimeInMillis
  if (typeof read !== 'function') return undefined
  let remaining: unknown
  let answer: string
  try {
    remaining = read.call(context)
    if (typeof remaining === 'number' && remaining >= 0 && remaining <= MAX_TIMER_MS) {
      return remaining
    }
    answer = `answered ${shownValue(remaining)}, not 0 to 2^31 - 1 ms`
  } catch (thrown) {
    answer = `threw (${messageOf(thrown)})`
  }
  guardNotes.set(
    batch,
    `no deadline known: getRemainingTimeInMillis() ${answer}; the timeout guard is off for this batch`,
  )
  return undefined
}

/** No record starts any more, nor what a parser left for their turns (`batch.turnSteps`). */
function endRun<T>(run: Run<T>): void {
  run.limit = 0
  run.stopped = true
  run.batch.turnSteps?.stop()
}

/**
 * Time is up, by the timeout margin or by middy's early timeout (then `reason` is middy's): no
 * record starts any more, nor what a parser left for their turns (a look-up, a validation: middy
 * answers without waiting for the loop), and the handler's signal aborts.
 */
function stopRun<T>(run: Run<T>, reason?: unknown): void {
  endRun(run)
  const { stop, marginMs } = run.guard
  stop.abort(reason ?? new TimeoutError(`the invocation stops ${marginMs} ms before its timeout`))
}

/**
 * Called before each record starts: reads the clock when its stride says so, stops the run when
 * the deadline has passed (then `true`), and sets the next stride from the records' pace.
 */
function pastDeadline(run: Run<unknown>): boolean {
  const guard = run.guard
  if (--guard.untilRead > 0) return false
  const now = performance.now()
  if (now >= guard.deadline) {
    stopRun(run)
    return true
  }
  const perRecord = (now - guard.lastRead) / guard.stride
  const stride = perRecord > 0 ? Math.floor(guard.marginMs / 8 / perRecord) : MAX_STRIDE
  guard.stride = Math.max(1, Math.min(stride, MAX_STRIDE))
  guard.untilRead = guard.stride
  guard.lastRead = now
  return false
}

/**
 * `limit`, or the first record before it that failed and stops the loop: any, or with a sink
 * only one that retrying could help (the sink may take the others). Asked before the loop, and
 * after a record waited for a step, which may have failed records before it that have not had
 * their turn (a look-up or a validation done ahead): nothing after them may start, as when they
 * failed before the loop. The errors are in the order the steps found them, not in batch order.
 */
function failureLimit(batch: RecordBatch, sink: PoisonSink | undefined, limit: number): number {
  for (const [index, error] of batch.errors) {
    if (index < limit && batch.status[index] === FAILED && (sink === undefined || error.retryable))
      limit = index
  }
  return limit
}

/**
 * Runs one record at its turn in the concurrent orders; resolves `true` when it succeeded, never
 * rejects. A failure lowers the limit in the same step that observes it, so no other worker
 * can start a later record first; with a sink, a record that can never succeed waits for the
 * frontier instead, and the frontier lowers the limit if the sink does not take it.
 */
async function handle(run: Run<unknown>, index: number): Promise<boolean> {
  const { batch } = run
  if (pastDeadline(run)) return false
  const step = batch.turnSteps?.at(index)
  if (step !== undefined) {
    await step
    // A record before it may have failed, or time run out, while it waited.
    run.limit = failureLimit(batch, run.sink, run.limit)
    if (index >= run.limit) return false
  }
  const status = batch.status[index]
  // The frontier may have sent a record that failed before the loop to the sink already.
  if (status === DIVERTED) return false
  if (status !== FAILED) {
    const record = batch.records[index] as KinesisRecord<unknown>
    run.turns?.start(index)
    try {
      const result = run.handler(record, run.context, run.options)
      if (isThenable(result)) await result
      batch.status[index] = SUCCEEDED
    } catch (thrown) {
      failRecord(batch, index, new RecordHandlerError(coordinatesAt(batch, index), thrown))
    }
    run.turns?.end()
  }
  const failed = batch.status[index] === FAILED
  if (failed && !mayDivert(run, index) && index < run.limit) run.limit = index
  if (run.sink !== undefined) {
    const moving = advanceFrontier(run)
    if (moving !== undefined) await moving
  }
  return !failed
}

/**
 * Moves the frontier over the records that succeeded or went to the sink. At a record that
 * failed for good it calls the sink, and goes on if the sink took it; it stops at a record still
 * pending (whoever finishes it moves the frontier on), and at one that failed otherwise, which
 * the answer will name: the limit drops to it, and no record after it goes to the sink, as all
 * of them come again. One worker moves it at a time; one that finds it moving leaves the work
 * to that one, which looks again after each sink call. `undefined` when no sink was called.
 */
function advanceFrontier(run: Run<unknown>): Promise<void> | undefined {
  if (run.movingFrontier) return undefined
  const { status } = run.batch
  let at = run.frontier
  while (at < status.length) {
    const s = status[at]
    if (s !== SUCCEEDED && s !== DIVERTED) break
    at++
  }
  run.frontier = at
  if (at === status.length || status[at] !== FAILED) return undefined
  run.movingFrontier = true
  return divertAtFrontier(run).finally(() => {
    run.movingFrontier = false
  })
}

async function divertAtFrontier(run: Run<unknown>): Promise<void> {
  const { status, errors } = run.batch
  for (let at = run.frontier; at < status.length; at = ++run.frontier) {
    const s = status[at]
    if (s === SUCCEEDED || s === DIVERTED) continue
    if (s !== FAILED) return
    if (!run.stopped && mayDivert(run, at)) {
      if (await divert(run, run.sink as PoisonSink, at, errors.get(at) as RecordError)) {
        run.onDiverted?.(at)
        continue
      }
    }
    if (at < run.limit) run.limit = at
    return
  }
}

/** Whether the record at `index`, which failed, may go to the sink. */
function mayDivert(run: Run<unknown>, index: number): boolean {
  return run.sink !== undefined && !(run.batch.errors.get(index) as RecordError).retryable
}

/** A record failed, in batch order: a poison sink may take it; otherwise nothing after it may start. */
async function afterFailure(run: Run<unknown>, index: number): Promise<boolean> {
  // Every record before this one is done: the sink call is all that may come between a failure
  // and the limit (until the sink says no, the record is not lost, so later records may go on).
  if (mayDivert(run, index) && !run.stopped) {
    const error = run.batch.errors.get(index) as RecordError
    if (await divert(run, run.sink as PoisonSink, index, error)) return true
  }
  if (index < run.limit) run.limit = index
  return false
}

/** Hands a record that can never succeed to the poison sink; `true` when the sink took it. */
async function divert(
  run: Run<unknown>,
  sink: PoisonSink,
  index: number,
  error: RecordError,
): Promise<boolean> {
  try {
    await sink(run.batch.records[index] as KinesisRecord<unknown>, error)
    run.batch.status[index] = DIVERTED
    return true
  } catch (thrown) {
    run.batch.errors.set(index, new PoisonSinkError(error, thrown))
    return false
  }
}

/**
 * The default mode, and the hot path: the handler's promise is awaited here directly (a sync
 * handler is not awaited at all), one step per record instead of two through `handle`.
 */
async function runInOrder(run: Run<unknown>): Promise<void> {
  const { batch } = run
  const steps = batch.turnSteps
  for (let i = 0; i < run.limit; i++) {
    if (pastDeadline(run)) return
    const step = steps?.at(i)
    if (step !== undefined) {
      await step
      // Time may have run out while it waited.
      if (i >= run.limit) return
    }
    if (batch.status[i] !== FAILED) {
      run.turns?.start(i)
      try {
        const result = startHandler(run, i)
        if (isThenable(result)) await result
        run.turns?.end()
        batch.status[i] = SUCCEEDED
        continue
      } catch (thrown) {
        run.turns?.end()
        failRecord(batch, i, new RecordHandlerError(coordinatesAt(batch, i), thrown))
      }
    }
    if (!(await afterFailure(run, i))) return
  }
}

/**
 * Calls the record handler with the record at `index`. A function of its own so that
 * `runInOrder`, whose frame lives across its awaits, holds no record: it held the last one it
 * handed on until the next was read, so the value of a record parsed at its turn (`jsonParse`)
 * stayed alive through the next record's decoding and parse, where a hand-written loop's dies
 * after its turn (3 MB more at the peak of 4 records of 1 MiB, the bench's json-6mb).
 */
function startHandler(run: Run<unknown>, index: number): unknown {
  return run.handler(run.batch.records[index] as KinesisRecord<unknown>, run.context, run.options)
}

/** Workers take the next record in batch order until the limit. */
async function runUnordered(run: Run<unknown>, concurrency: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < run.limit) await handle(run, next++)
  }
  await startWorkers(worker, Math.min(concurrency, run.limit))
}

/**
 * Each partition key is a queue in batch order; a key is ready when none of its records is in
 * flight. Workers take the ready key whose next record comes first in the batch (a min-heap of
 * positions), so the batch advances in order as far as the keys allow.
 */
async function runByKey(run: Run<unknown>, concurrency: number): Promise<void> {
  // The keys as decoded, as the answer reads the sequence numbers.
  const { partitionKeys } = run.batch.places
  const size = run.limit

  // nextOfKey[i]: the next position with the same partition key as i, or -1.
  const nextOfKey = new Int32Array(size).fill(-1)
  const lastOfKey = new Map<string, number>()
  const ready = new MinHeap(size)
  for (let i = 0; i < size; i++) {
    const key = partitionKeys[i] as string
    const last = lastOfKey.get(key)
    if (last === undefined) ready.push(i)
    else nextOfKey[last] = i
    lastOfKey.set(key, i)
  }

  // The sink took a record whose key was held while it waited: the key's next may start.
  run.onDiverted = (index) => {
    const after = nextOfKey[index] as number
    if (after !== -1) ready.push(after)
  }

  // A worker with nothing ready waits until a record in flight finishes and frees its key.
  let running = 0
  let progress: Promise<void> | undefined
  let signalProgress: (() => void) | undefined
  const waitForProgress = () => {
    progress ??= new Promise<void>((resolve) => {
      signalProgress = resolve
    })
    return progress
  }

  const worker = async () => {
    for (;;) {
      if (ready.size > 0 && ready.peek() < run.limit) {
        const index = ready.pop()
        running++
        const succeeded = await handle(run, index)
        running--
        const after = nextOfKey[index] as number
        if (succeeded && after !== -1) ready.push(after)
        const wake = signalProgress
        progress = signalProgress = undefined
        wake?.()
      } else if (running > 0) {
        await waitForProgress()
      } else {
        return
      }
    }
  }
  await startWorkers(worker, Math.min(concurrency, size))
}

async function startWorkers(worker: () => Promise<void>, count: number): Promise<void> {
  const workers: Promise<void>[] = []
  for (let w = 0; w < count; w++) workers.push(worker())
  await Promise.all(workers)
}

/** A binary min-heap of record positions with a fixed capacity. */
class MinHeap {
  private readonly items: Int32Array
  size = 0

  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(capacity, 1))
  }

  peek(): number {
    return this.items[0] as number
  }

  push(value: number): void {
    const items = this.items
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = items[parent] as number
      if (p <= value) break
      items[i] = p
      i = parent
    }
    items[i] = value
  }

  pop(): number {
    const items = this.items
    const top = items[0] as number
    const last = items[--this.size] as number
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= this.size) break
      const right = left + 1
      const child =
        right < this.size && (items[right] as number) < (items[left] as number) ? right : left
      if ((items[child] as number) >= last) break
      items[i] = items[child] as number
      i = child
    }
    items[i] = last
    return top
  }
}
