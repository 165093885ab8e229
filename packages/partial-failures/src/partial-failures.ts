/**
 * `partialFailures()`: shapes the answer Lambda reads, `{ batchItemFailures }`, so that it
 * checkpoints exactly at the first record that did not succeed, and logs what failed.
 *
 * It reads three sources, takes the lowest sequence number of all, and never names a record
 * that is not in the batch:
 * - the decoded batch (records failed by decoding or parsing, and by `eachRecord`);
 * - a handler's own `{ batchItemFailures }`;
 * - the middy convention: an array of `Promise.allSettled` results in `event.Records` order.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  checkOptions,
  compareSequenceNumbers,
  coordinatesAt,
  countStatuses,
  DIVERTED,
  FAILED,
  firstUnfinished,
  getBatch,
  isObjectLike,
  type KinesisRecord,
  type KinesisStreamBatchResponse,
  type KinesisStreamEvent,
  type KinesisStreamRecord,
  messageOf,
  noSequenceNumber,
  type OptionRules,
  PENDING,
  POISON_SINK,
  type PoisonSink,
  propertyOf,
  type RecordBatch,
  type RecordStage,
  shardIdOf,
  shownValue,
  stageOf,
} from '@shardwise/core'
import * as option from '@shardwise/core/option-rules'
import { type GuardedLogger, guarded, type Logger, levels } from './guarded-logger.js'
import { loopAnswerOf, NOT_ANSWERED, windowStateOf } from './loop-answers.js'
import { guardNotes } from './run-batch.js'
import { pkg } from './typed-parser.js'

export interface PartialFailuresOptions {
  /** Where failures and the batch summary go. Default `console`; `false` logs nothing. */
  logger?: Logger | false
  /**
   * Takes each record that can never succeed (a decoding, parsing or validation error, or a
   * `NonRetryableError` from the handler), at its turn, for example onto an SQS dead-letter
   * queue. When it resolves, the record counts as handled and the shard moves on; when it
   * rejects, or without a sink, the record is reported like any failure. Retryable failures
   * never reach it. Needs `eachRecord` or `foldWindow` as the handler.
   */
  onPoison?: PoisonSink
}

const optionRules: OptionRules = {
  logger: (logger, name) =>
    logger === false ||
    levels.every(
      (level) => typeof (logger as Record<string, unknown> | null)?.[level] === 'function',
    )
      ? undefined
      : `${name} needs ${levels.join(', ')} methods, or false`,
  onPoison: option.function,
}

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(partialFailures({ logger: new Logger() }))
 */
export function partialFailures(
  options?: PartialFailuresOptions,
): MiddlewareObj<KinesisStreamEvent, KinesisStreamBatchResponse> {
  const { logger = console, onPoison } = checkOptions(pkg, optionRules, options)
  // Logging never changes the answer: whatever the logger does, the invocation answers.
  const log = logger === false ? undefined : guarded(logger)

  return {
    before(request) {
      log?.invocationStarts()
      keepSequenceNumbers(request)
      if (onPoison !== undefined) {
        ;(request.event as unknown as { [POISON_SINK]?: PoisonSink })[POISON_SINK] = onPoison
      }
    },
    after(request) {
      const batch = getBatch(request.event)
      if (onPoison !== undefined && batch !== undefined && !loopAnswerOf(batch)) {
        // Only eachRecord and foldWindow hand records to the sink, at their turn.
        log?.error(
          'onPoison needs eachRecord or foldWindow as the batch handler: with your own, no record goes to the sink, and poison records hold the shard',
        )
      }
      request.response = answer(request.event, request.response, log, keptOf(request))
    },
    // A thrown batch handler is rethrown, untouched: Lambda then retries the whole batch, and
    // with BisectBatchOnFunctionError splits it to corner the record that throws. Reporting
    // the first record instead would retry the same way but hide the error from Lambda's
    // error metrics and switch bisection off.
    onError(request) {
      if (log === undefined) return
      const error = request.error
      log.line('error', failureMessage(request.event, error), errorFields(error))
      log.debug('the invocation failed: its stack and causes', { error })
    },
  }
}

/**
 * The sequence numbers of `event.Records`, taken before the batch handler runs: the answer
 * names records by them, and a handler of the user's own may write over its event. Kept on the
 * middy request (one per invocation) with the event they are of, not in a WeakMap: adding an
 * entry to a weak collection at every invocation costs about a microsecond.
 */
const KEPT: unique symbol = Symbol('sequence numbers')

interface Kept {
  event: unknown
  [KEPT]?: { event: object; numbers: string[] }
}

function keepSequenceNumbers(request: Kept): void {
  const { event } = request
  if (!isObjectLike(event)) return
  request[KEPT] = { event, numbers: sequenceNumbersOf(event as KinesisStreamEvent) }
}

/** The numbers kept, if the request still carries the event they were taken from. */
function keptOf(request: Kept): string[] | undefined {
  const kept = request[KEPT]
  return kept !== undefined && kept.event === request.event ? kept.numbers : undefined
}

function sequenceNumbersOf(event: KinesisStreamEvent | undefined): string[] {
  const records: unknown = event?.Records
  if (!Array.isArray(records)) return []
  const numbers = new Array<string>(records.length)
  for (let i = 0; i < records.length; i++) {
    // Read here, not through propertyOf, whose keyed reads have seen every key of the library.
    let sequenceNumber: unknown
    try {
      sequenceNumber = (records[i] as KinesisStreamRecord).kinesis.sequenceNumber
    } catch {
      // A record that is null, or whose getter throws: it cannot be named.
    }
    // '' (an empty one too) names no record: see nameOf.
    numbers[i] = typeof sequenceNumber === 'string' ? sequenceNumber : ''
  }
  return numbers
}

/**
 * The sequence number that names `Records[at]` in the answer; `undefined` past the batch. Lambda
 * can be told of a record only by its sequence number: for a record without one (an event Lambda
 * never sends), failing the invocation, so that the whole batch is retried, is all that is left.
 */
function nameOf(numbers: string[], at: number): string | undefined {
  const sequenceNumber = numbers[at]
  if (sequenceNumber !== '') return sequenceNumber
  throw noSequenceNumber(pkg, at)
}

function failureMessage(event: unknown, error: unknown): string {
  const batch = getBatch(event)
  // The error may be anything a batch handler threw: it is read with care.
  const middyTimeout =
    propertyOf(error, 'name') === 'TimeoutError' &&
    propertyOf(propertyOf(error, 'cause'), 'package') === '@middy/core'
  if (middyTimeout && batch !== undefined && loopAnswerOf(batch)) {
    return "middy's timeoutEarlyInMillis fired before eachRecord's or foldWindow's timeout guard; Lambda will retry the whole batch: make timeoutMarginMs larger"
  }
  return 'the invocation failed; Lambda will retry the whole batch'
}

/** Where a record failed: the step of the chain, or the answer that named it. */
export type Stage = RecordStage | 'answer'

interface Failure {
  sequenceNumber: string
  /** The log line; 'record failed' unless said otherwise. */
  message?: string
  stage: Stage
  /** The record's coordinates, as far as they are known, and what else the line says. */
  fields: object
  /** The error, if there is one: its name and message go on the line, itself to `debug`. */
  error?: unknown
}

/** The name and message of a thrown value, read with care: it may be anything. */
function errorFields(error: unknown): { errorName: string; errorMessage: string } {
  const name = propertyOf(error, 'name')
  return {
    errorName: typeof name === 'string' ? name : typeof error,
    errorMessage: messageOf(error),
  }
}

/**
 * The failures found so far, and their sequence numbers, so that a source that names a record
 * again is noticed in one step: a handler of the user's own may report all 10,000 records.
 */
class Failures {
  readonly list: Failure[] = []
  readonly named = new Set<string>()
  add(failure: Failure): void {
    this.list.push(failure)
    this.named.add(failure.sequenceNumber)
  }
}

function answer(
  event: KinesisStreamEvent,
  response: unknown,
  log: GuardedLogger | undefined,
  kept: string[] | undefined,
): KinesisStreamBatchResponse & { state?: object } {
  const lambdaRecords: KinesisStreamEvent['Records'] = Array.isArray(event?.Records)
    ? event.Records
    : []
  const lambdaSequences = kept ?? sequenceNumbersOf(event)
  const batch = getBatch(event)
  const failures = new Failures()

  if (batch !== undefined) collectBatchFailures(batch, failures)
  // The record loop's own answer, when it is not the response: a copy (a handler that wraps
  // eachRecord, a middleware) still says how far the loop got; if the loop never answered
  // (middy's early timeout answered instead), the batch's marks do.
  const loopAnswer = batch === undefined ? undefined : loopAnswerOf(batch)
  const replaced = loopAnswer !== undefined && loopAnswer !== response
  if (replaced && loopAnswer !== NOT_ANSWERED) {
    collectReportedFailures(loopAnswer, lambdaSequences, batch, failures, log)
  } else if (replaced && batch !== undefined) {
    collectUndone(event, response, batch, failures, log)
  }
  if (Array.isArray(response)) {
    collectSettledFailures(response, lambdaRecords, lambdaSequences, failures)
  } else {
    collectReportedFailures(response, lambdaSequences, batch, failures, log)
  }

  let checkpoint: string | undefined
  for (const failure of failures.list) {
    if (
      checkpoint === undefined ||
      compareSequenceNumbers(failure.sequenceNumber, checkpoint) < 0
    ) {
      checkpoint = failure.sequenceNumber
    }
  }
  // With a tumbling window, Lambda counts an answer without `state` as a failed invocation, and
  // the state answered must hold exactly the records before the checkpoint. Only the loop's own
  // answer pairs them; without it, the batch is retried whole from the state Lambda sent.
  let state: object | undefined
  if (!replaced) {
    state = stateOf(event, response)
  } else if (loopAnswer !== NOT_ANSWERED && checkpoint === checkpointOf(loopAnswer)) {
    state = stateOf(event, loopAnswer)
  } else {
    state = windowStateOf(event)
    if (state !== undefined) checkpoint = nameOf(lambdaSequences, 0)
  }

  if (log !== undefined) {
    for (const failure of failures.list) {
      logFailure(log, 'error', failure.message ?? 'record failed', failure)
    }
    const diverted = batch === undefined ? [] : divertedOf(batch)
    for (const failure of diverted)
      logFailure(log, 'warn', 'record sent to the poison sink', failure)
    const guardNote = batch === undefined ? undefined : guardNotes.get(batch)
    if (guardNote !== undefined) log.debug(guardNote)
    if (failures.list.length > 0 || diverted.length > 0) {
      const summary = summarize(batch, lambdaRecords.length, failures.list, diverted, checkpoint)
      log.line('warn', 'batch done with failures', summary)
    }
  }

  const batchItemFailures = checkpoint === undefined ? [] : [{ itemIdentifier: checkpoint }]
  return state === undefined ? { batchItemFailures } : { batchItemFailures, state }
}

function checkpointOf(loopAnswer: object | undefined): string | undefined {
  return (loopAnswer as KinesisStreamBatchResponse | undefined)?.batchItemFailures[0]
    ?.itemIdentifier
}

function stateOf(event: unknown, response: unknown): object | undefined {
  const answered = propertyOf(response, 'state')
  if (isObjectLike(answered)) return answered
  return windowStateOf(event)
}

/**
 * One line for the record: its coordinates, the stage, the error's name and message; then, at
 * `debug`, the error itself, for its stack and `cause` chain (a structured logger formats them
 * only when it writes debug lines).
 */
function logFailure(
  log: GuardedLogger,
  level: 'error' | 'warn',
  message: string,
  failure: Failure,
) {
  const { fields, stage, error } = failure
  if (error === undefined) {
    log.line(level, message, { ...fields, stage })
    return
  }
  log.line(level, message, { ...fields, stage, ...errorFields(error) })
  log.debug(`${message}: its stack and causes`, { ...fields, error })
}

function divertedOf(batch: RecordBatch): Failure[] {
  const diverted: Failure[] = []
  for (let i = 0; i < batch.status.length; i++) {
    if (batch.status[i] === DIVERTED) diverted.push(batchFailure(batch, i))
  }
  return diverted
}

/** Every record that a step of the chain failed. */
function collectBatchFailures(batch: RecordBatch, failures: Failures) {
  for (const index of batch.errors.keys()) {
    if (batch.status[index] === FAILED) failures.add(batchFailure(batch, index))
  }
}

/**
 * The failure of the batch's record at `index`. Its coordinates are what the record had when it
 * was decoded, whatever a handler wrote over its record.
 */
function batchFailure(batch: RecordBatch, index: number): Failure {
  const error = batch.errors.get(index)
  return {
    sequenceNumber: batch.places.sequenceNumbers[index] as string,
    stage: stageOf(error),
    fields: coordinatesAt(batch, index),
    error,
  }
}

/**
 * The record loop's answer did not reach this middleware. Without a tumbling window, the batch's
 * marks say how far the loop got: the first record it did not finish is reported. With one, the
 * state folded so far went with the lost answer, so the whole batch is retried from the state
 * Lambda sent; reporting a later record would drop the records before it from the window.
 */
function collectUndone(
  event: KinesisStreamEvent,
  response: unknown,
  batch: RecordBatch,
  failures: Failures,
  log: GuardedLogger | undefined,
) {
  const windowed = windowStateOf(event) !== undefined
  const at = windowed ? 0 : firstUnfinished(batch)
  if (at === -1 || at >= batch.records.length || batch.status[at] === FAILED) return
  const record = coordinatesAt(batch, at)
  // A copy of the loop's answer (a handler that wraps eachRecord) may already say as much.
  const reported = propertyOf(response, 'batchItemFailures')
  if (
    Array.isArray(reported) &&
    reported.some((item) => propertyOf(item, 'itemIdentifier') === record.sequenceNumber)
  ) {
    return
  }
  log?.line(
    'error',
    "the record loop's answer was replaced (by middy's timeoutEarlyResponse or another middleware); its unfinished records are reported",
    { windowed },
  )
  failures.add({
    sequenceNumber: record.sequenceNumber,
    message: windowed
      ? 'window batch not answered: retried whole, from the state Lambda sent'
      : 'record not finished: the record loop did not answer',
    stage: 'handler',
    fields: record,
  })
}

function collectSettledFailures(
  results: unknown[],
  lambdaRecords: KinesisStreamEvent['Records'],
  lambdaSequences: string[],
  failures: Failures,
) {
  for (let i = 0; i < results.length; i++) {
    if (propertyOf(results[i], 'status') !== 'rejected') continue
    // A result without a record cannot be placed; retrying from the start loses nothing.
    const at = i < lambdaSequences.length ? i : 0
    const sequenceNumber = nameOf(lambdaSequences, at)
    if (sequenceNumber === undefined) continue
    const lambdaRecord = lambdaRecords[at]
    failures.add({
      sequenceNumber,
      stage: 'handler',
      fields: {
        shardId: shardIdOf(lambdaRecord?.eventID),
        sequenceNumber,
        subSequenceNumber: undefined,
        partitionKey: propertyOf(lambdaRecord?.kinesis, 'partitionKey'),
      },
      error: propertyOf(results[i], 'reason'),
    })
  }
}

function collectReportedFailures(
  response: unknown,
  lambdaSequences: string[],
  batch: RecordBatch | undefined,
  failures: Failures,
  log: GuardedLogger | undefined,
) {
  const reported = reportedItems(response)
  // An empty batch has no record to name.
  if (reported === undefined || lambdaSequences.length === 0) return
  if (typeof reported === 'string') {
    // Lambda cannot read it as a list of failures: the whole batch is retried, as for an
    // identifier that is not in it, rather than taken as "all succeeded".
    log?.line(
      'error',
      `the batch handler answered ${reported}, not { batchItemFailures }; retrying the whole batch`,
    )
    failures.add(
      reportedFailure(
        nameOf(lambdaSequences, 0) as string,
        'batch answered in a form Lambda cannot read: retried whole',
      ),
    )
    return
  }
  if (reported.length === 0) return
  const known = new Set<string>(lambdaSequences)
  const positions = batch === undefined ? undefined : firstPositions(batch)
  const unknown: unknown[] = []
  for (const item of reported) {
    // Only a string can be in `known`; '' stands for the records without a sequence number,
    // and names none of them.
    const id = propertyOf(item, 'itemIdentifier') as string
    if (id !== '' && known.has(id)) {
      if (!failures.named.has(id)) failures.add(unfinished(id, batch, positions))
      continue
    }
    unknown.push(id)
  }
  // Lambda fails the whole batch on an empty or unknown identifier; say so explicitly, with a
  // record that exists, rather than send something whose effect is undocumented.
  if (unknown.length === 0) return
  log?.line(
    'error',
    `the handler reported ${unknown.length} identifier(s) not in the batch; retrying all`,
    { itemIdentifier: unknown[0], itemIdentifiers: unknown.slice(0, SHOWN_IDENTIFIERS) },
  )
  failures.add(
    reportedFailure(nameOf(lambdaSequences, 0) as string, undefined, {
      itemIdentifier: unknown[0],
    }),
  )
}

/** A record that the handler's answer named, or that Lambda is to retry from for its answer. */
function reportedFailure(sequenceNumber: string, message?: string, more?: object): Failure {
  return {
    sequenceNumber,
    message,
    stage: 'answer',
    fields: { sequenceNumber, reportedBy: 'handler', ...more },
  }
}

/** How many identifiers that are not in the batch the log line shows. */
const SHOWN_IDENTIFIERS = 10

/**
 * The items of a `{ batchItemFailures }` answer; `undefined` when it reports nothing (no answer,
 * `null`, an object without `batchItemFailures` or with it `null`: Lambda's "complete success");
 * or, when Lambda cannot read it as a list, a description of what was answered: a string, a
 * number, `batchItemFailures` that is not an array, or cannot be read.
 */
function reportedItems(response: unknown): unknown[] | string | undefined {
  if (response === undefined || response === null) return undefined
  if (typeof response !== 'object') return `${typeof response} ${shownValue(response)}`
  let items: unknown
  try {
    items = (response as { batchItemFailures?: unknown }).batchItemFailures
  } catch (thrown) {
    return `an object whose batchItemFailures cannot be read (${messageOf(thrown)})`
  }
  if (items === undefined || items === null) return undefined
  if (Array.isArray(items)) return items
  return `batchItemFailures: ${shownValue(items)}, which is not an array`
}

/** Where each sequence number first appears in the batch, found once for all the items. */
function firstPositions(batch: RecordBatch): Map<string, number> {
  const first = new Map<string, number>()
  const { sequenceNumbers } = batch.places
  for (let i = sequenceNumbers.length - 1; i >= 0; i--) first.set(sequenceNumbers[i] as string, i)
  return first
}

/**
 * A record the handler reported that no step failed: with `eachRecord`, the one the timeout
 * guard cut off; with a handler of the user's own, whatever it reported. Which of the two is
 * not recorded anywhere, so the log names both and gives the record's coordinates.
 */
function unfinished(
  sequenceNumber: string,
  batch: RecordBatch | undefined,
  positions: Map<string, number> | undefined,
): Failure {
  const index = positions?.get(sequenceNumber) ?? -1
  if (batch === undefined || index === -1 || batch.status[index] !== PENDING) {
    return reportedFailure(sequenceNumber)
  }
  return {
    sequenceNumber,
    message: 'record not finished: cut off by the timeout guard, or reported by the handler',
    stage: 'handler',
    fields: coordinatesAt(batch, index),
  }
}

/**
 * The batch in one line: how many records Lambda sent, how many records that made (KPL) and where
 * they stand, the failed and diverted ones by stage, and the checkpoint Lambda is answered.
 */
function summarize(
  batch: RecordBatch | undefined,
  lambdaRecords: number,
  failed: Failure[],
  diverted: Failure[],
  checkpoint: string | undefined,
) {
  const summary: Record<string, unknown> = { lambdaRecords, failed: failed.length }
  if (batch !== undefined) {
    const counts = countStatuses(batch)
    summary.records = batch.records.length
    summary.succeeded = counts.succeeded
    summary.diverted = counts.diverted
    summary.notHandled = counts.pending
  }
  const byStage: Record<string, number> = {}
  for (const { stage } of [...failed, ...diverted]) byStage[stage] = (byStage[stage] ?? 0) + 1
  summary.stages = byStage
  summary.checkpoint = checkpoint ?? null
  return summary
}

export type { KinesisRecord, Logger }
