/**
 * `eachRecord(handler)`: the batch handler that hands each decoded record to the user's record
 * handler, keeps each failure with its record, and starts nothing after the first failure
 * (Lambda will redeliver everything from there, so running it would only repeat side effects).
 */
import {
  batchResponse,
  type Context,
  checkOptions,
  decodedBatch,
  getPoisonSink,
  getRecordObservers,
  type KinesisStreamBatchResponse,
  type KinesisStreamEvent,
  type OptionRules,
  observedRun,
  type RecordBatch,
  type RecordParser,
} from '@shardwise/core'
import * as option from '@shardwise/core/option-rules'
import { answered, notAnswered, windowStateOf } from './loop-answers.js'
import { type Ordering, type RecordHandler, type RunOptions, runBatch } from './run-batch.js'
import { handlerArguments, pkg, requireParsed } from './typed-parser.js'

export interface EachRecordOptions {
  /** Default `'shard'`. */
  ordering?: Ordering
  /** Records in flight at most, for `'partitionKey'` and `'none'`. Default 10. */
  concurrency?: number
  /**
   * Stop this many milliseconds before Lambda's timeout: start no new record, stop waiting for
   * the ones in flight (their `signal` aborts), and answer with the checkpoint at the first
   * record that did not finish, so the finished ones are not retried. Default 1000; 0 turns
   * the guard off.
   */
  timeoutMarginMs?: number
}

/**
 * The batch handler `eachRecord` returns, ready for `middy(...)`. It takes the event Lambda
 * sends; `kinesisDecode` attaches the decoded records to it before the handler runs. On a
 * tumbling window event the answer carries the window's `state` on, untouched.
 */
export type BatchHandler = (
  event: KinesisStreamEvent,
  context: Context,
  options?: { signal?: AbortSignal },
) => Promise<KinesisStreamBatchResponse & { state?: object }>

export const runOptionRules = {
  ordering: option.oneOf('shard', 'partitionKey', 'none'),
  concurrency: option.integer(1),
  timeoutMarginMs: option.integer(0),
} satisfies OptionRules

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function eachRecord<T = Uint8Array>(
  handler: RecordHandler<T>,
  options?: EachRecordOptions,
): BatchHandler
/**
 * `record.data` is typed by the parser (`jsonParse`, `avroParse`), and each invocation fails
 * with a `ConfigurationError` when that parser did not run on the batch.
 *
 * @example
 * const parse = jsonParse({ schema: Order })
 * export const handler = middy(eachRecord(parse, async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(parse)
 *   .use(partialFailures())
 */
export function eachRecord<T>(
  parser: RecordParser<T>,
  handler: RecordHandler<NoInfer<T>>,
  options?: EachRecordOptions,
): BatchHandler
export function eachRecord(...args: unknown[]): BatchHandler {
  const { parser, handler, options } = handlerArguments<RecordHandler<unknown>, EachRecordOptions>(
    'eachRecord',
    args,
  )
  const runOptions: RunOptions = {
    ordering: 'shard',
    concurrency: 10,
    timeoutMarginMs: 1000,
    ...checkOptions(pkg, runOptionRules, options),
  }

  return async (event, context, middyOptions) => {
    const batch = decodedBatchOf<unknown>(event)
    if (parser !== undefined) requireParsed('eachRecord', batch, parser)
    notAnswered(batch)
    const observers = getRecordObservers(event)
    const run = observedRun(handler, batch, observers, runOptions.ordering !== 'shard')
    const { signal } = middyOptions ?? {}
    await runBatch(batch, run.handler, runOptions, context, signal, getPoisonSink(event), run.turns)
    const answer: KinesisStreamBatchResponse & { state?: object } = batchResponse(batch)
    // On a tumbling window mapping, Lambda fails an answer without `state`, for ever.
    const state = windowStateOf(event)
    if (state !== undefined) answer.state = state
    return answered(batch, answer)
  }
}

export function decodedBatchOf<T>(event: unknown): RecordBatch<T> {
  return decodedBatch<T>(event, pkg, 'to the middy chain')
}
