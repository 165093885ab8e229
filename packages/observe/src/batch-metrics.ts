/**
 * `batchMetrics({ metrics })`: one line of CloudWatch's Embedded Metric Format per invocation,
 * counting what became of the batch's records. It takes a Powertools `Metrics` for its
 * configuration (namespace, service and default dimensions, whether metrics are disabled, the
 * console it prints with), reads it once, and writes the line itself as Powertools prints it:
 * a Powertools `Metrics` costs some 25 µs per invocation for the same line, mostly reading
 * `process.env` at each `addMetric`, `addDimension` and `publishStoredMetrics`. It reads the
 * decoded batch and the answer when the chain is done, so the record loop pays nothing for it.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  ConfigurationError,
  checkOptions,
  compareSequenceNumbers,
  countStatuses,
  getBatch,
  type KinesisStreamEvent,
  messageOf,
  type OptionRules,
  option,
  propertyOf,
  type RecordBatch,
  RecordStatus,
  stageOf,
} from '@shardwise/core'
import { pkg } from './package.js'
import { streamNameOf } from './stream-name.js'

/** The units the metrics use, as CloudWatch (and Powertools' `MetricUnit`) name them. */
export type MetricUnit = 'Count' | 'Bytes' | 'Milliseconds'

/**
 * What `batchMetrics` uses of a Powertools `Metrics` (`@aws-lambda-powertools/metrics` 2):
 * `singleMetric().serializeMetrics()` gives its namespace and default dimensions as it prints
 * them; metrics the handler stored in it are published by it after the batch's line (its
 * `addMetric` is hooked to know when there are some). It also reads the `Metrics`' `console`
 * and `isDisabled()`, which its type keeps private, so they are checked when the middleware is
 * built.
 */
export interface PowertoolsMetrics {
  singleMetric(): { serializeMetrics(): unknown }
  addMetric(name: string, unit: never, value: number): unknown
  hasStoredMetrics(): boolean
  publishStoredMetrics(): unknown
}

export interface BatchMetricsOptions {
  /**
   * A Powertools `Metrics`: its namespace, default dimensions (`service`) and console apply,
   * as they are when `batchMetrics` is built; with `POWERTOOLS_METRICS_DISABLED` (or
   * `POWERTOOLS_DEV`) it prints nothing, as Powertools would.
   */
  metrics: PowertoolsMetrics
  /**
   * Which dimensions to add besides the `Metrics`' defaults. Default: `streamName` and
   * `functionName`. `shardId` gives each shard its own metrics, and multiplies their cost by the
   * number of shards.
   */
  dimensions?: { streamName?: boolean; functionName?: boolean; shardId?: boolean }
}

/** The metrics' names, as they reach CloudWatch. */
export const MetricName = {
  /** User records in the batch (a KPL aggregate counts its user records). */
  RecordsReceived: 'RecordsReceived',
  /** The record handler finished them. */
  RecordsSucceeded: 'RecordsSucceeded',
  /** A step failed them (decoding, parsing, validation, the handler), sent to the poison sink or not. */
  RecordsFailed: 'RecordsFailed',
  RecordsFailedDecode: 'RecordsFailedDecode',
  RecordsFailedParse: 'RecordsFailedParse',
  RecordsFailedValidation: 'RecordsFailedValidation',
  RecordsFailedHandler: 'RecordsFailedHandler',
  /** The poison sink refused them, so they stay failed (their first stage is not counted). */
  RecordsFailedPoisonSink: 'RecordsFailedPoisonSink',
  /** Failed by an error of another kind (a middleware of your own). */
  RecordsFailedOther: 'RecordsFailedOther',
  /** Failed, then acknowledged by the poison sink: the shard moved past them. */
  RecordsSentToPoisonSink: 'RecordsSentToPoisonSink',
  /** Never started (after a failure) or not finished (cut off by the timeout guard). */
  RecordsNotHandled: 'RecordsNotHandled',
  /** Kinesis records that were KPL aggregates. */
  KplAggregates: 'KplAggregates',
  /** Bytes that decompression produced. */
  BytesDecompressed: 'BytesDecompressed',
  /** From this middleware's `before` to its `after` (or `onError`). */
  BatchDuration: 'BatchDuration',
  /** From the newest record's arrival in the stream to the answer. */
  IteratorAge: 'IteratorAge',
  /** From the arrival of the record Lambda will retry from to the answer; only when there is one. */
  CheckpointIteratorAge: 'CheckpointIteratorAge',
} as const

const optionRules: OptionRules = {
  metrics: (metrics, name) => {
    const held = metrics as Record<string, unknown> | null
    const usable =
      ['singleMetric', 'addMetric', 'hasStoredMetrics', 'publishStoredMetrics', 'isDisabled'].every(
        (method) => typeof held?.[method] === 'function',
      ) && typeof (held?.console as Record<string, unknown> | undefined)?.log === 'function'
    return usable
      ? undefined
      : `Option '${name}' must be a Powertools Metrics (@aws-lambda-powertools/metrics 2): it needs singleMetric, addMetric, hasStoredMetrics, publishStoredMetrics, isDisabled and a console`
  },
  dimensions: option.shape({
    streamName: option.boolean,
    functionName: option.boolean,
    shardId: option.boolean,
  }),
}

/** The most dimensions a dimension set may hold (the EMF specification). */
const MAX_DIMENSIONS = 30

/**
 * When the invocation's batch started, kept on its middy request (one per invocation), as
 * kinesisDecode and partialFailures keep their marks: a WeakMap entry per invocation costs about
 * a microsecond, a fifth of what the metrics may cost a 100-record batch.
 */
const STARTED: unique symbol = Symbol('batch started')

/**
 * @example
 * const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(batchMetrics({ metrics }))
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function batchMetrics(
  options: BatchMetricsOptions,
): MiddlewareObj<KinesisStreamEvent, unknown> {
  const { metrics, dimensions = {} } = checkOptions(pkg, optionRules, options, ['metrics'])
  const { streamName = true, functionName = true, shardId = false } = dimensions
  const wanted = { streamName, functionName, shardId }
  const emf = emfConfigOf(metrics, wanted)
  const stores = watchStores(metrics)
  // Read once: the runtime sets it before the function's code loads.
  const functionNameOfEnv = process.env.AWS_LAMBDA_FUNCTION_NAME

  const dimensionsOf = dimensionsCache(emf, wanted, functionNameOfEnv)
  const print = printerOf(metrics as unknown as HeldMetrics)

  const publish = (request: Request, response: unknown, failed: boolean) => {
    const batch = getBatch(request.event)
    if (batch === undefined) return false
    const at = request[STARTED]
    request[STARTED] = undefined
    if (!emf.disabled) {
      const dimensions = dimensionsOf(request, batch)
      given = 0
      addCounts(batch)
      if (at !== undefined) {
        // To the microsecond: the digits past it are noise, and printing them is dear.
        put(M.BatchDuration, Math.round((performance.now() - at) * 1000) / 1000)
      }
      const now = Date.now()
      const newest = newestArrival(request.event)
      if (typeof newest === 'number') {
        put(M.IteratorAge, Math.max(0, now - newest * 1000))
      }
      // A thrown invocation is retried whole: its checkpoint is the first record.
      const checkpoint = failed
        ? request.event?.Records?.[0]?.kinesis?.approximateArrivalTimestamp
        : checkpointArrival(request.event, response)
      if (typeof checkpoint === 'number') {
        put(M.CheckpointIteratorAge, Math.max(0, now - checkpoint * 1000))
      }
      print(serialize(dimensions, now))
    }
    // What the handler added to the same Metrics goes out in its own line, with its own
    // dimensions, as Powertools' logMetrics would publish it.
    if (stores.added) {
      stores.added = false
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics()
    }
    return true
  }

  // Metrics never change the answer: a console that throws, a Metrics of the handler's over
  // Powertools' limits, or an answer whose getters throw loses this invocation's line, said on
  // stderr, and the invocation answers as it would.
  const guardedPublish = (request: Request, response: unknown, failed: boolean) => {
    try {
      return publish(request, response, failed)
    } catch (thrown) {
      try {
        console.error(
          `${pkg}: batchMetrics could not publish this invocation's metrics; the answer to Lambda is unchanged: ${messageOf(thrown)}`,
        )
      } catch {
        // Nothing is left to say it with.
      }
      return true
    }
  }

  return {
    before(request) {
      ;(request as Request)[STARTED] = performance.now()
    },
    after(request) {
      if (!guardedPublish(request, request.response, false)) {
        throw new ConfigurationError(
          `${pkg}: batchMetrics found no decoded records; add .use(kinesisDecode()) to the middy chain`,
        )
      }
    },
    onError(request) {
      // The error goes on to Lambda; the metrics say what the batch got to before it. An error
      // thrown by a middleware whose after() runs after this one's has found them published.
      if ((request as Request)[STARTED] !== undefined) guardedPublish(request, undefined, true)
    },
  }
}

interface Request {
  event: KinesisStreamEvent
  context: { functionName?: string }
  [STARTED]?: number | undefined
}

const WATCHED: unique symbol = Symbol.for('@shardwise/observe/metrics-stores') as never

/**
 * Whether a metric was added to the `Metrics` since the last look, so that an invocation whose
 * handler added none does not ask it (`hasStoredMetrics()` reads `process.env`, about 0.3 to
 * 0.8 µs). Its `addMetric` is hooked, once for all the middlewares that share it.
 */
function watchStores(metrics: PowertoolsMetrics): { added: boolean } {
  const held = metrics as unknown as {
    addMetric: (...args: unknown[]) => unknown
    [WATCHED]?: { added: boolean }
  }
  const watched = held[WATCHED]
  if (watched !== undefined) return watched
  // Metrics added before the middleware was built are looked for at the first invocation.
  const stores = { added: true }
  const addMetric = held.addMetric
  held.addMetric = function (this: unknown, ...args: unknown[]) {
    stores.added = true
    return addMetric.apply(this, args)
  }
  held[WATCHED] = stores
  return stores
}

/** The fields of a Powertools `Metrics` that its type keeps private. */
interface HeldMetrics {
  console: MetricsConsole
  isDisabled(): boolean
}

/** A Node `Console`'s fields that its `log` writes with. */
interface MetricsConsole {
  log(line: string): void
  _stdout?: { write?: (chunk: string, done: (error?: Error | null) => void) => unknown }
  _stdoutErrorHandler?: (error?: Error | null) => void
  _ignoreErrors?: boolean
}

/**
 * Prints a line through the `Metrics`' own console, as Powertools prints: in Lambda the global
 * console prefixes each line with a timestamp and request id, which CloudWatch would not read.
 * The console Powertools makes is a Node `Console` on `process.stdout`, whose `log(line)` writes
 * the line and a newline to its stream, with its handler that keeps a failed write from
 * throwing; the line is written so, without `log`'s formatting of its arguments and its
 * listener added and removed at each call (about 0.4 µs together). A console of another kind,
 * or the global one, gets `log`. The console is looked at for each line, as it may be replaced.
 */
function printerOf(metrics: HeldMetrics): (line: string) => void {
  let known: MetricsConsole | undefined
  let write: ((line: string) => void) | undefined
  return (line) => {
    const console = metrics.console
    if (console !== known || write === undefined) {
      known = console
      write = writerOf(console)
    }
    write(line)
  }
}

function writerOf(console: MetricsConsole): (line: string) => void {
  const stream = console._stdout
  const onError = console._stdoutErrorHandler
  if (
    console === globalThis.console ||
    typeof stream?.write !== 'function' ||
    typeof onError !== 'function' ||
    console._ignoreErrors === false
  ) {
    return (line) => console.log(line)
  }
  return (line) => {
    stream.write?.(`${line}\n`, onError)
  }
}

/** What every line of this middleware shares, read from the `Metrics` once. */
interface EmfConfig {
  /** `"Namespace":"..."`, as JSON. */
  readonly namespace: string
  /** The default dimensions' names, each as JSON: `"service"`. */
  readonly defaultNames: readonly string[]
  /** Their members, as JSON: `,"service":"orders","env":"prod"`. */
  readonly defaultMembers: string
  readonly disabled: boolean
}

/**
 * The namespace and default dimensions as the `Metrics` prints them: what an empty line of it
 * holds (`singleMetric()` makes one with its configuration and none of its stored metrics,
 * dimensions or metadata). Refuses a configuration whose lines CloudWatch would reject.
 */
function emfConfigOf(
  metrics: PowertoolsMetrics,
  wanted: { streamName: boolean; functionName: boolean; shardId: boolean },
): EmfConfig {
  const empty = metrics.singleMetric().serializeMetrics() as Record<string, unknown>
  const directive = ((empty._aws as { CloudWatchMetrics?: unknown[] } | undefined)
    ?.CloudWatchMetrics?.[0] ?? {}) as { Namespace?: unknown; Dimensions?: unknown[] }
  const namespace = directive.Namespace
  if (typeof namespace !== 'string') {
    throw new ConfigurationError(
      `${pkg}: batchMetrics could not read the namespace of the Metrics; is it a Powertools Metrics (@aws-lambda-powertools/metrics 2)?`,
    )
  }
  const names = printedDefaults(
    metrics,
    Array.isArray(directive.Dimensions?.[0]) ? (directive.Dimensions[0] as string[]) : [],
  )
  const ours = [
    wanted.streamName && 'StreamName',
    wanted.functionName && 'FunctionName',
    wanted.shardId && 'ShardId',
  ].filter((name): name is string => typeof name === 'string')
  const defaults = names.filter((name) => !ours.includes(name))
  const clash = defaults.find((name) => Object.hasOwn(MetricName, name))
  if (clash !== undefined) {
    throw new ConfigurationError(
      `${pkg}: the Metrics has a default dimension named ${clash}, as a metric of batchMetrics; rename the dimension`,
    )
  }
  if (defaults.length + ours.length > MAX_DIMENSIONS) {
    throw new ConfigurationError(
      `${pkg}: the Metrics' ${defaults.length} default dimensions and batchMetrics' ${ours.length} (${ours.join(', ')}) are more than the ${MAX_DIMENSIONS} a metric may have; turn some off with the dimensions option`,
    )
  }
  return {
    namespace: `"Namespace":${JSON.stringify(namespace)}`,
    defaultNames: defaults.map((name) => JSON.stringify(name)),
    defaultMembers: defaults
      .map((name) => `,${JSON.stringify(name)}:${JSON.stringify(String(empty[name]))}`)
      .join(''),
    disabled: (metrics as unknown as HeldMetrics).isDisabled() === true,
  }
}

/**
 * Which of the copy's default dimensions (`names`) the `Metrics` itself prints, in its order:
 * `singleMetric()` gives its copy a `service` even when the `Metrics`' default dimensions were
 * cleared (`clearDefaultDimensions()`), and puts it first when they were set again without it
 * first. Its own line holds its defaults, in its order, besides anything stored in it now.
 */
function printedDefaults(metrics: PowertoolsMetrics, names: readonly string[]): string[] {
  const held = metrics as unknown as {
    serializeMetrics?: () => unknown
    shouldThrowOnEmptyMetrics?: unknown
  }
  if (typeof held.serializeMetrics !== 'function') return [...names]
  // Its line holds no metric: a Metrics told to throw on empty metrics is told not to, meanwhile.
  const throwing = held.shouldThrowOnEmptyMetrics
  if (throwing === true) held.shouldThrowOnEmptyMetrics = false
  try {
    const own = held.serializeMetrics()
    if (typeof own !== 'object' || own === null) return [...names]
    return Object.keys(own).filter((key) => names.includes(key))
  } finally {
    if (throwing === true) held.shouldThrowOnEmptyMetrics = true
  }
}

/** The dimensions of a line, as JSON, and the heads of its lines by the metrics they hold. */
interface LineDimensions {
  readonly namespace: string
  /** The value of `Dimensions`: `[["service","StreamName"]]`, or `[]` when there is none. */
  readonly names: string
  readonly members: string
  readonly heads: Map<number, string>
}

/**
 * The dimensions of each invocation's line, made again only when they change: a function reads
 * one stream (and shard) with one name, so its lines have the same dimensions, whose JSON is
 * made once instead of at each invocation.
 */
function dimensionsCache(
  emf: EmfConfig,
  wanted: { streamName: boolean; functionName: boolean; shardId: boolean },
  functionNameOfEnv: string | undefined,
): (request: Request, batch: RecordBatch) => LineDimensions {
  let arn: unknown
  let functionName: unknown
  let shard: unknown
  let made: LineDimensions | undefined
  return (request, batch) => {
    const nowArn = wanted.streamName ? request.event?.Records?.[0]?.eventSourceARN : undefined
    const nowFunction = wanted.functionName
      ? request.context?.functionName || functionNameOfEnv
      : undefined
    const nowShard = wanted.shardId ? batch.places.shardIds[0] : undefined
    if (made !== undefined && nowArn === arn && nowFunction === functionName && nowShard === shard)
      return made
    arn = nowArn
    functionName = nowFunction
    shard = nowShard
    const names = [...emf.defaultNames]
    let members = emf.defaultMembers
    // A value that is empty, or not a string, is left out, as Powertools leaves it out.
    const add = (name: string, value: unknown) => {
      if (typeof value !== 'string' || value === '') return
      names.push(`"${name}"`)
      members += `,"${name}":${JSON.stringify(value)}`
    }
    add('StreamName', streamNameOf(nowArn))
    add('FunctionName', nowFunction)
    add('ShardId', nowShard)
    // Powertools prints no dimension set when there is no dimension, not an empty one.
    const sets = names.length === 0 ? '[]' : `[[${names.join(',')}]]`
    made = { namespace: emf.namespace, names: sets, members, heads: new Map() }
    return made
  }
}

/** The metrics in the order their members take in a line, with their units. */
const LINE_ORDER: ReadonlyArray<readonly [keyof typeof MetricName, MetricUnit]> = [
  ['RecordsReceived', 'Count'],
  ['RecordsSucceeded', 'Count'],
  ['RecordsFailed', 'Count'],
  ['RecordsFailedDecode', 'Count'],
  ['RecordsFailedParse', 'Count'],
  ['RecordsFailedValidation', 'Count'],
  ['RecordsFailedHandler', 'Count'],
  ['RecordsFailedPoisonSink', 'Count'],
  ['RecordsFailedOther', 'Count'],
  ['RecordsSentToPoisonSink', 'Count'],
  ['RecordsNotHandled', 'Count'],
  ['KplAggregates', 'Count'],
  ['BytesDecompressed', 'Bytes'],
  ['BatchDuration', 'Milliseconds'],
  ['IteratorAge', 'Milliseconds'],
  ['CheckpointIteratorAge', 'Milliseconds'],
]

/** Each metric's place in a line's values. */
const M = Object.fromEntries(LINE_ORDER.map(([name], slot) => [name, slot])) as Record<
  keyof typeof MetricName,
  number
>

/** The start of each metric's member, as JSON: `,"RecordsReceived":`. */
const MEMBER_KEYS = LINE_ORDER.map(([name]) => `,${JSON.stringify(name)}:`)

/**
 * One invocation's metric values, by place, and which were given (bit `slot`). Lines are made
 * one at a time, from start to end within one call, so one holder serves every line.
 */
const values = new Float64Array(LINE_ORDER.length)
let given = 0

function put(slot: number, value: number): void {
  // A finite number's JSON is its String; CloudWatch takes no other.
  values[slot] = Number.isFinite(value) ? value : 0
  given |= 1 << slot
}

/**
 * One invocation's EMF document, as Powertools writes its own (`JSON.stringify` of `_aws`, the
 * default dimensions, the dimensions added, then the metrics' values), from text made once per
 * set of metrics: all but the timestamp and the values.
 */
function serialize(dimensions: LineDimensions, timestamp: number): string {
  let head = dimensions.heads.get(given)
  if (head === undefined) {
    head = headOf(dimensions, given)
    dimensions.heads.set(given, head)
  }
  const first = 31 - Math.clz32(given & -given)
  let line = `{"_aws":{"Timestamp":${timestamp}${head}${values[first]}`
  for (let slot = first + 1; slot < LINE_ORDER.length; slot++) {
    if ((given & (1 << slot)) !== 0) line += `${MEMBER_KEYS[slot]}${values[slot]}`
  }
  return `${line}}`
}

/** All of a line after its timestamp and up to its first value, for the metrics `given` holds. */
function headOf(dimensions: LineDimensions, given: number): string {
  const definitions: string[] = []
  let first = ''
  for (const [slot, [name, unit]] of LINE_ORDER.entries()) {
    if ((given & (1 << slot)) === 0) continue
    definitions.push(`{"Name":${JSON.stringify(name)},"Unit":"${unit}"}`)
    if (first === '') first = MEMBER_KEYS[slot] as string
  }
  const { namespace, names, members } = dimensions
  return `,"CloudWatchMetrics":[{${namespace},"Dimensions":${names},"Metrics":[${definitions.join(',')}]}]}${members}${first}`
}

function addCounts(batch: RecordBatch): void {
  put(M.RecordsReceived, batch.records.length)
  const { status } = batch
  // A healthy batch, the common case, is told by three searches instead of a count per record.
  if (
    status.indexOf(RecordStatus.Pending) === -1 &&
    status.indexOf(RecordStatus.Failed) === -1 &&
    status.indexOf(RecordStatus.Diverted) === -1
  ) {
    if (status.length > 0) put(M.RecordsSucceeded, status.length)
    addDecoded(batch)
    return
  }
  const { succeeded, failed, diverted, pending: notHandled } = countStatuses(batch)
  // A count of zero is left out: a healthy batch's line has 4 metrics instead of 16.
  if (succeeded > 0) put(M.RecordsSucceeded, succeeded)
  if (failed + diverted > 0) {
    put(M.RecordsFailed, failed + diverted)
    addStages(batch)
  }
  if (diverted > 0) put(M.RecordsSentToPoisonSink, diverted)
  if (notHandled > 0) put(M.RecordsNotHandled, notHandled)
  addDecoded(batch)
}

function addDecoded(batch: RecordBatch): void {
  const aggregates = batch.decoded?.kplAggregates ?? 0
  if (aggregates > 0) put(M.KplAggregates, aggregates)
  const bytes = batch.decoded?.bytesDecompressed ?? 0
  if (bytes > 0) put(M.BytesDecompressed, bytes)
}

/** The failed records by the step that failed them. */
function addStages(batch: RecordBatch): void {
  let decode = 0
  let parse = 0
  let validation = 0
  let handler = 0
  let poisonSink = 0
  let other = 0
  for (const [index, error] of batch.errors) {
    const status = batch.status[index]
    if (status !== RecordStatus.Failed && status !== RecordStatus.Diverted) continue
    const stage = stageOf(error)
    if (stage === 'decode') decode++
    else if (stage === 'validation') validation++
    else if (stage === 'parse') parse++
    else if (stage === 'handler') handler++
    else if (stage === 'poison sink') poisonSink++
    else other++
  }
  if (decode > 0) put(M.RecordsFailedDecode, decode)
  if (parse > 0) put(M.RecordsFailedParse, parse)
  if (validation > 0) put(M.RecordsFailedValidation, validation)
  if (handler > 0) put(M.RecordsFailedHandler, handler)
  if (poisonSink > 0) put(M.RecordsFailedPoisonSink, poisonSink)
  if (other > 0) put(M.RecordsFailedOther, other)
}

/**
 * The arrival of the batch's newest record, its last: the one Lambda's own `IteratorAge` is the
 * age of. KPL sub-records share their carrier's.
 */
function newestArrival(event: KinesisStreamEvent): unknown {
  const records = event?.Records
  return Array.isArray(records)
    ? records[records.length - 1]?.kinesis?.approximateArrivalTimestamp
    : undefined
}

/**
 * The arrival of the record Lambda retries from: the lowest sequence number the answer names.
 * `undefined` when the answer names none (the whole batch is done).
 */
function checkpointArrival(event: KinesisStreamEvent, response: unknown): number | undefined {
  const reported = propertyOf(response, 'batchItemFailures')
  if (!Array.isArray(reported) || reported.length === 0) return undefined
  let lowest: string | undefined
  for (const item of reported) {
    const id = propertyOf(item, 'itemIdentifier')
    if (typeof id === 'string' && (lowest === undefined || compareSequenceNumbers(id, lowest) < 0))
      lowest = id
  }
  const records = Array.isArray(event?.Records) ? event.Records : []
  for (const record of records) {
    if (record?.kinesis?.sequenceNumber === lowest)
      return record.kinesis.approximateArrivalTimestamp
  }
  // An identifier that is not in the batch makes Lambda retry it whole.
  return records[0]?.kinesis?.approximateArrivalTimestamp
}
