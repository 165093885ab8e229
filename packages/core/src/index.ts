/**
 * The shared language of the Shardwise middlewares: the decoded record, the batch that the
 * middlewares pass along on the event, the errors, and Lambda's checkpoint rule.
 *
 * Data flows one way. `kinesisDecode` builds the batch and attaches it to the event; parsers
 * replace `data` and mark the records they cannot read; `eachRecord` runs the user's handler and
 * marks outcomes; `partialFailures` turns the marks into the answer Lambda reads.
 */

import type {
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda'

import { misconfigured } from './options.js'
import { DIVERTED, FAILED, SUCCEEDED } from './record-status.js'

export type {
  Context,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda'
export {
  DIVERTED,
  FAILED,
  PENDING,
  RecordStatus,
  SUCCEEDED,
} from './record-status.js'

/** One user record of a Kinesis batch, after decoding; `data` is the payload in its current form. */
export interface KinesisRecord<T = Uint8Array> {
  /** The payload: bytes after `kinesisDecode`, the parsed value after a parser. */
  data: T
  /**
   * The user record's bytes as they are in the stream, before decompression: what a dead-letter
   * sink keeps so that the record can be put back on a stream as it was.
   */
  rawData: Uint8Array
  /**
   * The record's coordinates are read-only: the answer to Lambda and the errors take them from
   * the batch (`RecordBatch.places`), never from here, so that writing over them (a handler's
   * `Object.assign(record, record.data)` on a payload with a `sequenceNumber` of its own) cannot
   * move the checkpoint.
   */
  readonly partitionKey: string
  /** Set only for KPL sub-records that carried an explicit hash key. */
  readonly explicitHashKey: string | undefined
  /** Decimal string of up to 129 digits: compare with `compareSequenceNumbers`, never as numbers. */
  readonly sequenceNumber: string
  /** Position inside a KPL aggregate; `undefined` for a record that was not aggregated. */
  readonly subSequenceNumber: number | undefined
  /** Epoch seconds with a fraction, as Lambda sends it. */
  readonly approximateArrivalTimestamp: number
  readonly shardId: string
  readonly eventSourceARN: string
  /** The record exactly as Lambda delivered it (for a KPL sub-record: its carrier). */
  lambdaRecord: KinesisStreamRecord
}

/**
 * The decoded batch, carried on the event under `BATCH`. `records` are in batch order with KPL
 * sub-records expanded in place; `status[i]` and `errors.get(i)` describe `records[i]`.
 */
export interface RecordBatch<T = unknown> {
  readonly records: KinesisRecord<T>[]
  /**
   * Each record's coordinates as decoded, by position, kept apart from the records the user's
   * handlers get and may write over: what the answer and the errors name (see `coordinatesAt`).
   */
  readonly places: RecordPlaces
  readonly status: Uint8Array
  readonly errors: Map<number, RecordError>
  /** What decoding did beyond the records themselves; set by `kinesisDecode`. */
  readonly decoded?: DecodeStats
  /**
   * The positions of the records `kinesisDecode` decodes at their turn (large plain records), if
   * any: their `data` and `rawData` are decoded from their base64 text at each read, until a step
   * sets them, so that the batch keeps none of their bytes. A parser may leave them for their
   * turn too (`turnSteps`), as `jsonParse()` without a schema does.
   */
  readonly deferred?: ReadonlySet<number>
  /**
   * What a parser left for each record's turn in the record loop (`eachRecord`, `foldWindow`),
   * so that it runs under the loop's timeout guard: a schema's asynchronous validation.
   */
  turnSteps?: TurnSteps
  /** The parser middleware that ran on this batch (`markParsed`), for `eachRecord(parse, ...)`. */
  parsedBy?: RecordParser<unknown>[]
}

/** The coordinates of a batch's records, one array per coordinate, in batch order. */
export interface RecordPlaces {
  readonly shardIds: ReadonlyArray<string>
  readonly sequenceNumbers: ReadonlyArray<string>
  readonly subSequenceNumbers: ReadonlyArray<number | undefined>
  readonly partitionKeys: ReadonlyArray<string>
}

/**
 * Takes the places of `records` as they are now: called when the batch is built, before any
 * handler has seen a record.
 */
export function placesOf(records: ReadonlyArray<RecordCoordinates>): RecordPlaces {
  const count = records.length
  const shardIds = new Array<string>(count)
  const sequenceNumbers = new Array<string>(count)
  const subSequenceNumbers = new Array<number | undefined>(count)
  const partitionKeys = new Array<string>(count)
  for (let i = 0; i < count; i++) {
    const record = records[i] as RecordCoordinates
    shardIds[i] = record.shardId
    sequenceNumbers[i] = record.sequenceNumber
    subSequenceNumbers[i] = record.subSequenceNumber
    partitionKeys[i] = record.partitionKey
  }
  return { shardIds, sequenceNumbers, subSequenceNumbers, partitionKeys }
}

/** The coordinates of `records[index]` as decoded, whatever a handler wrote over the record. */
export function coordinatesAt(batch: RecordBatch, index: number): RecordCoordinates {
  const { places } = batch
  return {
    shardId: places.shardIds[index] as string,
    sequenceNumber: places.sequenceNumbers[index] as string,
    subSequenceNumber: places.subSequenceNumbers[index],
    partitionKey: places.partitionKeys[index] as string,
  }
}

/** What `kinesisDecode` did to the batch's bytes, for metrics. */
export interface DecodeStats {
  /** Kinesis records that were KPL aggregates and were expanded into their user records. */
  readonly kplAggregates: number
  /** Bytes that decompression (gzip, zstd, zlib) produced for the payloads it handed on. */
  readonly bytesDecompressed: number
}

/**
 * A step some records wait for before their handler may run. Data still flows one way: the
 * parser leaves it on the batch, and the loop asks for it at each record's turn.
 */
export interface TurnSteps {
  /**
   * Starts what `records[index]` waits for, if it has not started, and resolves (never rejects)
   * once the record is ready, its `data` set, or failed; `undefined` when it waits for nothing,
   * or for nothing more than what this call did at once.
   */
  at(index: number): Promise<void> | undefined
  /** The loop has stopped, and answers: nothing may start any more. */
  stop(): void
}

/** `Symbol.for` so that two copies of this package in one bundle still find each other's batch. */
export const BATCH: unique symbol = Symbol.for('@shardwise/batch') as never

/** A Kinesis event that went through `kinesisDecode`. */
export interface DecodedEvent<T = Uint8Array> extends KinesisStreamEvent {
  [BATCH]: RecordBatch<T>
}

/**
 * The event type a parser middleware declares to middy: a Kinesis event whose batch, once decoded
 * and parsed, holds records of `T`. The batch is optional so that a plain `KinesisStreamEvent`
 * still type-checks as the handler's input.
 */
export interface ParsedEvent<T> extends KinesisStreamEvent {
  readonly [BATCH]?: RecordBatch<T>
}

/** Where a parser middleware (`jsonParse`, `avroParse`) says what it is: see `RecordParser`. */
export const PARSER: unique symbol = Symbol.for('@shardwise/parser') as never

/** Never set: it carries a parser's output type, for the compiler alone. */
declare const PARSER_OUTPUT: unique symbol

/**
 * What a parser middleware carries beside `before`: its name, for the errors that name it
 * (`'jsonParse() of @shardwise/json-parse'`), and, in types only, `T`, what it makes of
 * `record.data`, so that `eachRecord(parse, handler)` types the handler by the parser.
 */
export interface RecordParser<T> {
  readonly [PARSER]: string
  readonly [PARSER_OUTPUT]?: T
}

export function isRecordParser(value: unknown): value is RecordParser<unknown> {
  if (!isObjectLike(value)) return false
  try {
    return typeof (value as Partial<RecordParser<unknown>>)[PARSER] === 'string'
  } catch {
    // A Proxy whose trap throws, or a revoked one: no parser of ours.
    return false
  }
}

/**
 * Records on the batch that `parser` ran on it; throws when another parser ran on it first. A
 * second parser found the small records' values, not bytes, and threw; but the records that
 * `kinesisDecode` decodes at their turn still read as bytes before their turn, so a second
 * jsonParse() took them over, the first one's schema never asked (a batch of large records
 * went through without it), and an avroParse() failed them all as bad Avro, for the sink.
 */
export function markParsed(batch: RecordBatch, parser: RecordParser<unknown>): void {
  const first = batch.parsedBy?.[0]
  if (first) {
    throw misconfigured(parser[PARSER], `${first[PARSER]} parsed the batch before it; keep one`)
  }
  batch.parsedBy = [parser]
}

export function wasParsedBy(batch: RecordBatch, parser: RecordParser<unknown>): boolean {
  return batch.parsedBy?.includes(parser) ?? false
}

/**
 * What a parser middleware makes of `record.data`, for typing the record handler:
 * `eachRecord<InferData<typeof parse>>(async (record) => ...)`.
 */
export type InferData<Parser> =
  Parser extends RecordParser<infer T>
    ? T
    : Parser extends { before?: (request: infer Request) => unknown }
      ? Request extends { event: ParsedEvent<infer T> }
        ? T
        : never
      : never

/** Returns the decoded batch of an event, or `undefined` when `kinesisDecode` did not run. */
export function getBatch<T = unknown>(event: unknown): RecordBatch<T> | undefined {
  return propertyOf(event, BATCH) as RecordBatch<T> | undefined
}

/**
 * The event's decoded batch, for a middleware (`pkg`) that needs `kinesisDecode` to have run:
 * without it, a `ConfigurationError` says to add `.use(kinesisDecode())` `where`.
 */
export function decodedBatch<T = unknown>(
  event: unknown,
  pkg: string,
  where: string,
): RecordBatch<T> {
  const batch = getBatch<T>(event)
  if (batch === undefined) {
    throw misconfigured(pkg, `the event has no decoded records; add .use(kinesisDecode()) ${where}`)
  }
  return batch
}

/**
 * Takes a record that cannot succeed (its error is not retryable) off the shard's path, for
 * example onto a dead-letter queue. Resolving means the record is safe and counts as handled;
 * rejecting leaves it failed, so the shard stops at it as at any failure.
 */
export type PoisonSink = (record: KinesisRecord<unknown>, error: RecordError) => Promise<unknown>

/** Where `partialFailures({ onPoison })` leaves its sink on the event for `eachRecord`. */
export const POISON_SINK: unique symbol = Symbol.for('@shardwise/poison-sink') as never

export function getPoisonSink(event: unknown): PoisonSink | undefined {
  return propertyOf(event, POISON_SINK) as PoisonSink | undefined
}

/** Records a failure of `records[index]`; the first failure of a record is the one kept. */
export function failRecord(batch: RecordBatch, index: number, error: RecordError): void {
  if (batch.status[index] === FAILED) return
  batch.status[index] = FAILED
  batch.errors.set(index, error)
}

/** Position of the first record that did not succeed and was not diverted, or -1. */
export function firstUnfinished(batch: RecordBatch): number {
  const { status } = batch
  for (let i = 0; i < status.length; i++) {
    const s = status[i]
    if (s !== SUCCEEDED && s !== DIVERTED) return i
  }
  return -1
}

/** How many records of a batch stand at each status: for logs and metrics. */
export interface StatusCounts {
  pending: number
  succeeded: number
  failed: number
  diverted: number
}

export function countStatuses(batch: RecordBatch): StatusCounts {
  const counts: StatusCounts = { pending: 0, succeeded: 0, failed: 0, diverted: 0 }
  for (const s of batch.status) {
    if (s === SUCCEEDED) counts.succeeded++
    else if (s === FAILED) counts.failed++
    else if (s === DIVERTED) counts.diverted++
    else counts.pending++
  }
  return counts
}

/**
 * Lambda's checkpoint rule: it retries from the lowest reported sequence number, so the answer
 * names exactly the first record that did not finish. A KPL sub-record reports its carrier.
 */
export function batchResponse(batch: RecordBatch): KinesisStreamBatchResponse {
  const first = firstUnfinished(batch)
  if (first === -1) return { batchItemFailures: [] }
  return {
    batchItemFailures: [{ itemIdentifier: batch.places.sequenceNumbers[first] as string }],
  }
}

/** Orders Kinesis sequence numbers (decimal strings of up to 129 digits) without losing digits. */
export function compareSequenceNumbers(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}

/** True when `bytes` start with the KPL aggregate magic, `F3 89 9A C2`. */
export function hasKplMagic(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0xf3 &&
    bytes[1] === 0x89 &&
    bytes[2] === 0x9a &&
    bytes[3] === 0xc2
  )
}

/**
 * What a parser adds to its message for a record that starts with the KPL magic, so that the
 * user learns it is an aggregate `kinesisDecode` did not expand, not a payload of theirs.
 */
export function aggregateNote(bytes: Uint8Array): string {
  return hasKplMagic(bytes)
    ? ' (it starts with the KPL magic: an aggregate kinesisDecode did not expand, as its MD5 is wrong or deaggregate is false)'
    : ''
}

/** Where a record sits in its stream: what a person needs to find it again. */
export interface RecordCoordinates {
  shardId: string
  sequenceNumber: string
  subSequenceNumber: number | undefined
  partitionKey: string
}

export function coordinatesOf(record: RecordCoordinates): RecordCoordinates {
  return {
    shardId: record.shardId,
    sequenceNumber: record.sequenceNumber,
    subSequenceNumber: record.subSequenceNumber,
    partitionKey: record.partitionKey,
  }
}

function describe(at: RecordCoordinates): string {
  const sub =
    at.subSequenceNumber === undefined ? '' : ` sub-record ${shownValue(at.subSequenceNumber)}`
  return `record ${textOf(at.sequenceNumber)}${sub} of ${textOf(at.shardId)} (partition key ${shownValue(at.partitionKey)})`
}

/** A coordinate as it is when it is a string; a handler may have written anything over it. */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value : shownValue(value)
}

/** Base of every error that belongs to one record; carries the record's coordinates. */
export class RecordError extends Error {
  override name = 'RecordError'
  // `declare`: set once in the constructor, where a field declaration would set each twice.
  declare readonly shardId: string
  declare readonly sequenceNumber: string
  declare readonly subSequenceNumber: number | undefined
  declare readonly partitionKey: string
  /** True when retrying the record cannot help: bad bytes, bad JSON, a schema mismatch. */
  declare readonly retryable: boolean

  constructor(
    at: RecordCoordinates,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(`${describe(at)}: ${message}`, { cause: options?.cause })
    this.shardId = at.shardId
    this.sequenceNumber = at.sequenceNumber
    this.subSequenceNumber = at.subSequenceNumber
    this.partitionKey = at.partitionKey
    this.retryable = options?.retryable ?? true
  }
}

/**
 * The record's bytes could not be decoded (base64, decompression, KPL framing). Not retryable
 * unless told: bad bytes stay bad, but a record refused only because its batch ran out of
 * room (kinesis-decode's `maxBatchDecompressedBytes`) decodes in a later invocation.
 */
export class DecodeError extends RecordError {
  override name = 'DecodeError'
  constructor(
    at: RecordCoordinates,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(at, message, { cause: options?.cause, retryable: options?.retryable ?? false })
  }
}

/**
 * Deflate's highest ratio, 1032 to 1 (gzip, zlib): the most a byte of deflated data can become.
 * A decompression that fails hands back nothing of what it produced, so a batch's budget is
 * charged this much per byte of its input at most (a corrupt 13-byte payload charged a whole
 * per-record limit spent a batch's budget with 16 of them).
 */
export const MAX_DEFLATE_RATIO = 1032

/**
 * The default budget of what decompression may produce in one invocation, for each middleware
 * that decompresses (`kinesisDecode`'s `maxBatchDecompressedBytes`, the Glue registry's
 * `maxBatchInflatedBytes`): an invocation carries at most 6 MB of base64, about 4.5 MB of bytes,
 * and 256 MiB holds a full batch of records that compress 50 to 1, while a batch of small
 * deflate bombs could otherwise make about 1 GiB per MiB it carries.
 */
export const DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES = 256 * 1024 * 1024

/** Where a record that a batch's decompression budget refused stands; see `overBatchBudget`. */
export interface BatchBudgetRefusal {
  /** What did not fit: `its data (gzip)`, `its zlib-compressed Glue datum`. */
  readonly subject: string
  /** The option that sets the budget, and its value. */
  readonly option: string
  readonly limit: number
  /** `decompress` or `inflate`, and as `it` does it: `decompresses`, `inflates`. */
  readonly verb: string
  readonly verbs: string
}

/** Where a batch's decompression budget stood at the record's Kinesis record (its carrier). */
export interface BudgetAtKinesisRecord {
  /** What was left of the budget when the Kinesis record began. */
  readonly leftAtKinesisRecord: number
  /** What the Kinesis record's payloads that failed to decompress were charged. */
  readonly failedAtKinesisRecord: number
}

/**
 * Why a record does not fit in what is left of its batch's decompression budget, and whether a
 * later delivery can help. Lambda delivers again from the record's Kinesis record, with the whole
 * budget: that helps only when records before it spent part of this one (a smaller batch, as
 * bisect gives, holds it); otherwise its Kinesis record alone is too much, for good.
 */
export function overBatchBudget(
  refusal: BatchBudgetRefusal,
  budget: BudgetAtKinesisRecord,
): { message: string; retryable: boolean } {
  const { subject, option, limit, verb, verbs } = refusal
  const failed = budget.failedAtKinesisRecord
  const retryable = budget.leftAtKinesisRecord < limit
  const counting =
    failed === 0
      ? ''
      : `, counting ${failed} bytes (the most they could make) for its payloads that failed to ${verb}`
  const outcome = retryable
    ? 'Lambda delivers it again, in a later invocation with a fresh budget'
    : `its Kinesis record alone ${verbs} to more than that${counting}, so no invocation can ${verb} it`
  const message = `${subject} does not fit in what is left of ${option} (${limit}), the most one invocation ${verbs}; ${outcome}`
  return { message, retryable }
}

/** The record's bytes are not a valid payload of the expected format (JSON, Avro). */
export class ParseError extends RecordError {
  override name = 'ParseError'
  constructor(at: RecordCoordinates, message: string, options?: { cause?: unknown }) {
    super(at, message, { cause: options?.cause, retryable: false })
  }
}

/** One problem a schema found, with the path to the offending value. */
export interface ValidationIssue {
  readonly message: string
  readonly path: ReadonlyArray<PropertyKey>
}

/** The payload parsed but does not match the schema. */
export class ValidationError extends RecordError {
  override name = 'ValidationError'
  /** Every issue the schema found; the message lists the first few. */
  declare readonly issues: ReadonlyArray<ValidationIssue>
  constructor(at: RecordCoordinates, issues: ReadonlyArray<ValidationIssue>) {
    super(at, `does not match the schema: ${listed(issues)}`, { retryable: false })
    this.issues = issues
  }
}

/**
 * How many issues a ValidationError's message lists, and how long each part may be: a record of
 * 20,000 bad items made a 1.3 MB message, and validators quote the value they refused (valibot
 * quotes a whole string), so one bad 1 MiB field made a 1 MiB line in the log.
 */
const LISTED_ISSUES = 10
const ISSUE_PART_CHARS = 200

function listed(issues: ReadonlyArray<ValidationIssue>): string {
  if (issues.length === 0) return '(the schema gave no issue)'
  const parts: string[] = []
  for (let i = 0; i < issues.length && i < LISTED_ISSUES; i++) {
    const { path, message } = issues[i] as ValidationIssue
    parts.push(
      `${clipped(path.length ? path.map(textOf).join('.') : '(root)', ISSUE_PART_CHARS)}: ${clipped(textOf(message), ISSUE_PART_CHARS)}`,
    )
  }
  const more = issues.length - parts.length
  return more > 0 ? `${parts.join('; ')}; and ${more} more issues` : parts.join('; ')
}

/** `text`, or its first `most` characters and how many it has. */
function clipped(text: string, most: number): string {
  return text.length <= most ? text : `${text.slice(0, most)}… (${text.length} characters)`
}

/**
 * Throw this (or an error with `retryable: false`) from a record handler when retrying the
 * record cannot succeed, so a poison sink may take it instead of blocking the shard.
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError'
  readonly retryable = false
}

/** The user's record handler threw or rejected; the thrown value is the `cause`. */
export class RecordHandlerError extends RecordError {
  override name = 'RecordHandlerError'
  constructor(at: RecordCoordinates, cause: unknown) {
    super(at, `the record handler failed: ${messageOf(cause)}`, {
      cause,
      retryable: !isNonRetryable(cause),
    })
  }
}

/** The step of the chain where a record failed, told by its error; `unknown` for another kind. */
export type RecordStage = 'decode' | 'parse' | 'validation' | 'handler' | 'poison sink' | 'unknown'

/**
 * The stage of each error class of the chain, by name: names are set explicitly on every class,
 * so they survive minification, and hold across two copies of `@shardwise/core`, unlike
 * `instanceof`. A plain `RecordError` comes from a schema that threw or answered nonsense.
 */
const STAGES: Record<string, RecordStage> = {
  DecodeError: 'decode',
  SchemaRegistryError: 'decode',
  ParseError: 'parse',
  ValidationError: 'validation',
  RecordError: 'validation',
  RecordHandlerError: 'handler',
  PoisonSinkError: 'poison sink',
}

/** Where the record that `error` failed, failed: the logs' `stage` and the metrics' counts. */
export function stageOf(error: unknown): RecordStage {
  const name = propertyOf(error, 'name')
  return (typeof name === 'string' && Object.hasOwn(STAGES, name) && STAGES[name]) || 'unknown'
}

/**
 * Whether a thrown value says that retrying cannot help (`retryable: false`). A value whose
 * `retryable` cannot be read (a getter that throws, a revoked Proxy) is taken as retryable:
 * retrying loses nothing, while checkpointing past the record would.
 */
export function isNonRetryable(thrown: unknown): boolean {
  return propertyOf(thrown, 'retryable') === false
}

/** Whether `value` is an object or an array: not `null`, not a primitive, not a function. */
export function isObjectLike(value: unknown): value is object {
  return typeof value === 'object' && value !== null
}

/**
 * `value[key]` for a value the library did not create, or `undefined` when it has none or
 * reading it throws (a getter that throws, a revoked Proxy).
 */
export function propertyOf(value: unknown, key: PropertyKey): unknown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined
  try {
    return (value as Record<PropertyKey, unknown>)[key]
  } catch {
    return undefined
  }
}

/**
 * A readable one-line message for any thrown value, `Error` or not. It never throws: the value
 * is the user's, and may be a Proxy, revoked, or have a `message` getter or a `toString` that
 * throws; then the message says what could be read.
 */
export function messageOf(thrown: unknown): string {
  if (typeof thrown === 'string') return thrown
  if (!isInstance(thrown, Error)) return `non-Error value thrown: ${shownValue(thrown)}`
  try {
    const { message } = thrown as Error
    if (typeof message === 'string' && message !== '') return message
    const { name } = thrown as Error
    if (typeof name === 'string' && name !== '') return name
  } catch {
    return 'an Error whose message or name getter threw'
  }
  return 'an Error without a message'
}

/** `value instanceof type`, false where asking throws (a revoked Proxy throws on every question). */
export function isInstance<T>(
  value: unknown,
  type: abstract new (...args: never[]) => T,
): value is T {
  try {
    return value instanceof type
  } catch {
    return false
  }
}

/** The most characters `shownValue` gives: a thrown megabyte must not become a log line. */
const SHOWN_CHARS = 500

/**
 * A value as a message shows it: its JSON, or its `String()`, clipped; or, when both throw (a
 * revoked Proxy, `toJSON` and `toString` that throw), what kind of value it is. Never throws.
 */
export function shownValue(value: unknown): string {
  // JSON would show NaN and Infinity as null.
  const type = typeof value
  if (value === undefined || type === 'symbol' || type === 'function' || type === 'number') {
    return safeString(value) ?? `a ${type}`
  }
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    // A cycle, a BigInt, a toJSON that throws: String() may still say something.
  }
  if (typeof text !== 'string') text = safeString(value)
  if (text === undefined)
    return `an ${typeof value} that JSON.stringify and String cannot show (both threw)`
  return clipped(text, SHOWN_CHARS)
}

/** What kind of value a message got: `null`, `undefined`, `an array`, `an object`, `a string`, ... */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function safeString(value: unknown): string | undefined {
  try {
    return String(value)
  } catch {
    return undefined
  }
}

export {
  currentCoordinates,
  getRecordObservers,
  isThenable,
  type ObservedRun,
  observedRun,
  observeRecords,
  type RecordObserver,
  type RecordTurns,
  unobserveRecords,
} from './observers.js'
export * as option from './option-rules.js'
export {
  ConfigurationError,
  checkOptions,
  MAX_TIMER_MS,
  misconfigured,
  noSequenceNumber,
  type OptionRule,
  type OptionRules,
} from './options.js'

/**
 * The shard a record comes from: the part of its `eventID` before the colon. `previous` is the
 * shard of the record before it; a batch comes from one shard, so its records can share one
 * string instead of each keeping a slice of its `eventID` alive.
 */
export function shardIdOf(eventID: unknown, previous?: string): string {
  // Only the shard id comes from eventID; a record without one can still be reported by its
  // sequence number, so it does not fail the batch.
  if (typeof eventID !== 'string') return ''
  // indexOf, not startsWith or lastIndexOf(previous, 0), which cost 3 and 1.5 times as much on
  // these strings; it searches the whole string only for a record of another shard.
  if (
    previous !== undefined &&
    eventID.charCodeAt(previous.length) === 58 /* : */ &&
    eventID.indexOf(previous) === 0
  ) {
    return previous
  }
  const colon = eventID.indexOf(':')
  return colon === -1 ? eventID : eventID.slice(0, colon)
}

/** What `eventSource` an event claims, for an error message that says what arrived instead. */
export function eventSourceOf(event: unknown): string {
  if (!isObjectLike(event)) return kindOf(event)
  const records = (event as { Records?: unknown }).Records
  if (!Array.isArray(records)) return 'an event without Records'
  const first = records[0] as { eventSource?: unknown; EventSource?: unknown } | undefined
  const source = first?.eventSource ?? first?.EventSource
  return typeof source === 'string' ? source : 'records without eventSource'
}
