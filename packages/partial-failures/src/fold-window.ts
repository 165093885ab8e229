/**
 * `foldWindow(reduce, options)`: the batch handler for a Kinesis event source mapping with a
 * tumbling window (`TumblingWindowInSeconds`). Lambda carries a state from one invocation of a
 * window to the next; this folds each record into it, in batch order, and on the window's final
 * invocation hands the result to `onWindowEnd`. The answer always carries `state` beside
 * `batchItemFailures`, as Lambda requires: without it the invocation counts as failed.
 *
 * When a record fails, the state returned is the fold of exactly the records before it: the
 * ones Lambda will not send again. So each record is folded once, however often the batch is
 * retried, provided `reduce` returns a new state rather than changing the old one before it can
 * throw.
 */
import {
  batchResponse,
  type Context,
  checkOptions,
  getPoisonSink,
  getRecordObservers,
  isObjectLike,
  type KinesisRecord,
  type KinesisStreamBatchResponse,
  type KinesisStreamEvent,
  messageOf,
  misconfigured,
  type OptionRules,
  observedRun,
  type RecordParser,
} from '@shardwise/core'
import * as option from '@shardwise/core/option-rules'
import { decodedBatchOf, runOptionRules } from './each-record.js'
import { answered, notAnswered } from './loop-answers.js'
import { runBatch } from './run-batch.js'
import { handlerArguments, pkg, requireParsed } from './typed-parser.js'

/** Where the invocation sits in its window, as Lambda describes it. */
export interface WindowInfo {
  start: string
  end: string
  shardId: string
  isFinalInvokeForWindow: boolean
  isWindowTerminatedEarly: boolean
}

export interface FoldWindowOptions<S> {
  /** The state a window starts from (Lambda sends none, or `{}`, on a window's first call). */
  initialState: () => S
  /**
   * Called on a window's final invocation, after the last records are folded; and for each part
   * of a window that ended early (`window.isWindowTerminatedEarly`), whether Lambda ended it or
   * the state grew past Lambda's 1 MB, as a window then goes on from a fresh state: add the parts
   * up rather than overwrite one with the next.
   */
  onWindowEnd?: (state: S, window: WindowInfo, context: Context) => Promise<unknown> | unknown
  /** As for `eachRecord`. Default 1000. */
  timeoutMarginMs?: number
}

export type WindowReduce<S, T> = (
  state: S,
  record: KinesisRecord<T>,
  context: Context,
) => S | Promise<S>

export type WindowHandler<S> = (
  event: KinesisStreamEvent,
  context: Context,
  options?: { signal?: AbortSignal },
) => Promise<KinesisStreamBatchResponse & { state: S }>

interface WindowEvent<S> extends KinesisStreamEvent {
  window?: { start: string; end: string }
  state?: S
  shardId?: string
  isFinalInvokeForWindow?: boolean
  isWindowTerminatedEarly?: boolean
}

const optionRules: OptionRules = {
  initialState: option.function,
  onWindowEnd: option.function,
  timeoutMarginMs: runOptionRules.timeoutMarginMs,
}

/**
 * @example
 * export const handler = middy(
 *   foldWindow((totals: Totals, record: KinesisRecord<Order>) => add(totals, record.data), {
 *     initialState: () => ({ orders: 0, amount: 0 }),
 *     onWindowEnd: (totals, window) => addToTotals(window.start, totals),
 *   }),
 * )
 *   .use(kinesisDecode())
 *   .use(jsonParse({ schema: Order }))
 *   .use(partialFailures())
 */
export function foldWindow<S extends object, T = Uint8Array>(
  reduce: WindowReduce<S, T>,
  options: FoldWindowOptions<S>,
): WindowHandler<S>
/**
 * `record` is typed by the parser, and each invocation fails with a `ConfigurationError` when
 * that parser did not run on the batch, as with `eachRecord(parse, handler)`.
 */
export function foldWindow<S extends object, T>(
  parser: RecordParser<T>,
  reduce: WindowReduce<S, NoInfer<T>>,
  options: FoldWindowOptions<S>,
): WindowHandler<S>
export function foldWindow<S extends object>(...args: unknown[]): WindowHandler<S> {
  const {
    parser,
    handler: reduce,
    options,
  } = handlerArguments<WindowReduce<S, unknown>, FoldWindowOptions<S>>('foldWindow', args, 'reduce')
  const {
    initialState,
    onWindowEnd,
    timeoutMarginMs = 1000,
  } = checkOptions(pkg, optionRules, options, ['initialState'])

  return async (event: WindowEvent<S>, context, middyOptions) => {
    if (typeof event?.window !== 'object' || event.window === null) {
      throw misconfigured(
        pkg,
        `foldWindow needs a tumbling window event; set TumblingWindowInSeconds on the event source mapping, or use eachRecord`,
      )
    }
    const batch = decodedBatchOf<unknown>(event)
    if (parser !== undefined) requireParsed('foldWindow', batch, parser)
    notAnswered(batch)
    let state = isEmpty(event.state)
      ? checkedState(initialState(), 'initialState()')
      : checkedState(event.state as S, "the event's state")
    const fold = async (record: KinesisRecord<unknown>) => {
      state = await reduce(state, record, context)
    }
    const run = observedRun(fold, batch, getRecordObservers(event), false)
    await runBatch(
      batch,
      run.handler,
      { ordering: 'shard', concurrency: 1, timeoutMarginMs },
      context,
      middyOptions?.signal,
      getPoisonSink(event),
      run.turns,
    )
    checkedState(state, 'reduce')
    const response = batchResponse(batch)
    const window = windowOf(event)
    // The window (or the part of it Lambda ended early, whose state it then drops) closes only
    // when every record made it into the state; a throw here fails the invocation, and Lambda
    // retries it until it succeeds.
    if (
      (window.isFinalInvokeForWindow || window.isWindowTerminatedEarly) &&
      response.batchItemFailures.length === 0 &&
      onWindowEnd !== undefined
    ) {
      await endWindow(onWindowEnd, state, window, context)
      // A part handed over is answered with a fresh state, so that whatever Lambda makes of the
      // state after an early end, no record reaches onWindowEnd twice.
      if (!window.isFinalInvokeForWindow) state = checkedState(initialState(), 'initialState()')
    } else if (onWindowEnd !== undefined && jsonBytes(state) > MAX_STATE_BYTES) {
      // Past 1 MB Lambda ends the window early, and does not say what becomes of that state:
      // the part is handed over here instead, and the window goes on from a fresh state.
      // Not the final part even on the final invocation: the records from the checkpoint on
      // come again, and close the window then.
      const part = { ...window, isFinalInvokeForWindow: false, isWindowTerminatedEarly: true }
      await endWindow(onWindowEnd, state, part, context)
      state = checkedState(initialState(), 'initialState()')
    }
    return answered(batch, { ...response, state })
  }
}

/**
 * `onWindowEnd` failed: the invocation fails, and Lambda retries it until it succeeds. Its
 * `cause` is what `onWindowEnd` threw, which may be anything: middy and the logs read this error
 * instead, which they can read whatever was thrown.
 */
export class WindowEndError extends Error {
  override name = 'WindowEndError'
}

async function endWindow<S>(
  onWindowEnd: NonNullable<FoldWindowOptions<S>['onWindowEnd']>,
  state: S,
  window: WindowInfo,
  context: Context,
): Promise<void> {
  try {
    await onWindowEnd(state, window, context)
  } catch (thrown) {
    throw new WindowEndError(
      `${pkg}: onWindowEnd failed for the window from ${window.start} to ${window.end} of ${window.shardId}; Lambda retries the invocation: ${messageOf(thrown)}`,
      { cause: thrown },
    )
  }
}

/** The most state Lambda carries from one invocation of a window to the next: 1 MB. */
const MAX_STATE_BYTES = 1_000_000

function jsonBytes(state: unknown): number {
  let json: string | undefined
  try {
    json = JSON.stringify(state)
    // A toJSON that answers undefined: Lambda would carry nothing.
    if (json === undefined) throw new TypeError('JSON.stringify gave undefined')
  } catch (error) {
    throw misconfigured(
      pkg,
      `foldWindow's state cannot be sent as JSON, as Lambda carries it: ${messageOf(error)}`,
      { cause: error },
    )
  }
  return Buffer.byteLength(json)
}

/**
 * Lambda carries the state between invocations as a JSON object: a number, an array, a `Map` or
 * a class instance would not come back as it went, so a state of another kind is a mistake in
 * the function, not a record.
 */
function checkedState<S>(state: S, from: string): S {
  let got: string | undefined
  try {
    const prototype = isObjectLike(state) && Object.getPrototypeOf(state)
    if (prototype !== Object.prototype && prototype !== null) got = kindOf(state)
  } catch {
    // A revoked Proxy, or one whose getPrototypeOf trap throws: nothing Lambda could carry.
    got = 'an object that cannot be read (a revoked Proxy?)'
  }
  if (got !== undefined) {
    throw misconfigured(
      pkg,
      `foldWindow's state must be a plain object, as Lambda carries it between invocations; ${from} gave ${got}`,
    )
  }
  return state
}

function kindOf(state: unknown): string {
  if (state === null) return 'null'
  if (Array.isArray(state)) return 'an array'
  if (typeof state !== 'object') return typeof state
  let name: unknown
  try {
    name = (state as object).constructor?.name
  } catch {
    // A constructor getter that throws: the instance is all that is said.
  }
  return `a ${typeof name === 'string' ? name : 'class'} instance`
}

function isEmpty(state: unknown): boolean {
  if (state === undefined || state === null) return true
  if (typeof state !== 'object') return false
  for (const _ in state) return false
  return true
}

function windowOf(event: WindowEvent<unknown>): WindowInfo {
  return {
    start: event.window?.start ?? '',
    end: event.window?.end ?? '',
    shardId: event.shardId ?? '',
    isFinalInvokeForWindow: event.isFinalInvokeForWindow === true,
    isWindowTerminatedEarly: event.isWindowTerminatedEarly === true,
  }
}
