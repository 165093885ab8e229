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

/** When each invocation's batch started, by middy request. */
const started = new WeakMap<object, number>()

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

  const publish = (request: Request, response: unknown, failed: boolean) => {
    const batch = getBatch(request.event)
    if (batch === undefined) return false
    const at = started.get(request)
    started.delete(request)
    if (!emf.disabled) {
      const line = new EmfLine(dimensionsOf(request, batch))
      addCounts(line, batch)
      if (at !== undefined) {
        line.add(M.BatchDuration, performance.now() - at)
      }
      const now = Date.now()
      const newest = newestArrival(request.event)
      if (typeof newest === 'number') {
        line.add(M.IteratorAge, Math.max(0, now - newest * 1000))
      }
      // A thrown invocation is retried whole: its checkpoint is the first record.
      const checkpoint = failed
        ? request.event?.Records?.[0]?.kinesis?.approximateArrivalTimestamp
        : checkpointArrival(request.event, response)
      if (typeof checkpoint === 'number') {
        const age = Math.max(0, now - checkpoint * 1000)
        line.add(M.CheckpointIteratorAge, age)
      }
      // Through the Metrics' own console, as Powertools prints: in Lambda the global console
      // prefixes each line with a timestamp and request id, which CloudWatch would not read.
      ;(metrics as unknown as HeldMetrics).console.log(line.serialize(now))
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
      started.set(request, performance.now())
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
      if (started.has(request)) guardedPublish(request, undefined, true)
    },
  }
}

interface Request {
  event: KinesisStreamEvent
  context: { functionName?: string }
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
  console: { log(line: string): void }
  isDisabled(): boolean
}

/** What every line of this middleware shares, read from the `Metrics` once. */
interface EmfConfig {
  /** `"Namespace":"..."`, as JSON. */
  readonly namespace: string
  /** The default dimensions' names, as the JSON of a list's items: `"service","env"`. */
  readonly defaultNames: string
  /** Their members, as JSON: `,"service":"orders","env":"prod"`. */
  readonly defaultMembers: string
  readonly disabled: boolean
}

/**
 * The namespace and default dimensions as the `Metrics` prints them: what an empty line of it
 * holds (`singleMetric()` makes one with its configuration and none of its stored metrics,
 * dimensions or metadata; it always has `service`, so default dimensions cleared with
 * `clearDefaultDimensions()` still print `service`). Refuses a configuration whose lines
 * CloudWatch would reject.
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
  const names = Array.isArray(directive.Dimensions?.[0])
    ? (directive.Dimensions[0] as string[])
    : []
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
    defaultNames: defaults.map((name) => JSON.stringify(name)).join(','),
    defaultMembers: defaults
      .map((name) => `,${JSON.stringify(name)}:${JSON.stringify(String(empty[name]))}`)
      .join(''),
    disabled: (metrics as unknown as HeldMetrics).isDisabled() === true,
  }
}

/** The dimensions of a line: their names as a list's items, and their members, as JSON. */
interface LineDimensions {
  readonly namespace: string
  readonly names: string
  readonly members: string
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
    let names = emf.defaultNames
    let members = emf.defaultMembers
    // A value that is empty, or not a string, is left out, as Powertools leaves it out.
    const add = (name: string, value: unknown) => {
      if (typeof value !== 'string' || value === '') return
      // A Metrics' copy always has its service: the default names are never empty.
      names += `,"${name}"`
      members += `,"${name}":${JSON.stringify(value)}`
    }
    add('StreamName', streamNameOf(nowArn))
    add('FunctionName', nowFunction)
    add('ShardId', nowShard)
    made = { namespace: emf.namespace, names, members }
    return made
  }
}

/** A metric's definition in `_aws`, and the start of its member, as JSON. */
interface Definition {
  readonly definition: string
  readonly key: string
}

const definition = (name: string, unit: MetricUnit): Definition => ({
  definition: `{"Name":"${name}","Unit":"${unit}"}`,
  key: `,"${name}":`,
})

/** Each metric's JSON pieces, made once. */
const M = {
  RecordsReceived: definition(MetricName.RecordsReceived, 'Count'),
  RecordsSucceeded: definition(MetricName.RecordsSucceeded, 'Count'),
  RecordsFailed: definition(MetricName.RecordsFailed, 'Count'),
  RecordsFailedDecode: definition(MetricName.RecordsFailedDecode, 'Count'),
  RecordsFailedParse: definition(MetricName.RecordsFailedParse, 'Count'),
  RecordsFailedValidation: definition(MetricName.RecordsFailedValidation, 'Count'),
  RecordsFailedHandler: definition(MetricName.RecordsFailedHandler, 'Count'),
  RecordsFailedPoisonSink: definition(MetricName.RecordsFailedPoisonSink, 'Count'),
  RecordsFailedOther: definition(MetricName.RecordsFailedOther, 'Count'),
  RecordsSentToPoisonSink: definition(MetricName.RecordsSentToPoisonSink, 'Count'),
  RecordsNotHandled: definition(MetricName.RecordsNotHandled, 'Count'),
  KplAggregates: definition(MetricName.KplAggregates, 'Count'),
  BytesDecompressed: definition(MetricName.BytesDecompressed, 'Bytes'),
  BatchDuration: definition(MetricName.BatchDuration, 'Milliseconds'),
  IteratorAge: definition(MetricName.IteratorAge, 'Milliseconds'),
  CheckpointIteratorAge: definition(MetricName.CheckpointIteratorAge, 'Milliseconds'),
} satisfies Record<keyof typeof MetricName, Definition>

/**
 * One invocation's EMF document, written as Powertools writes its own (`JSON.stringify` of
 * `_aws`, the default dimensions, the dimensions added, then the metrics' values), but as text
 * from pieces made once: the names and units are this module's, and the values are numbers.
 */
class EmfLine {
  private readonly dimensions: LineDimensions
  private definitions = ''
  private values = ''

  constructor(dimensions: LineDimensions) {
    this.dimensions = dimensions
  }

  add(metric: Definition, value: number): void {
    this.definitions += this.definitions === '' ? metric.definition : `,${metric.definition}`
    // A finite number's JSON is its String.
    this.values += `${metric.key}${Number.isFinite(value) ? value : 0}`
  }

  serialize(timestamp: number): string {
    const { namespace, names, members } = this.dimensions
    return `{"_aws":{"Timestamp":${timestamp},"CloudWatchMetrics":[{${namespace},"Dimensions":[[${names}]],"Metrics":[${this.definitions}]}]}${members}${this.values}}`
  }
}

function addCounts(line: EmfLine, batch: RecordBatch): void {
  const { succeeded, failed, diverted, pending: notHandled } = countStatuses(batch)
  line.add(M.RecordsReceived, batch.records.length)
  // A count of zero is left out: a healthy batch's line has 4 metrics instead of 16.
  if (succeeded > 0) line.add(M.RecordsSucceeded, succeeded)
  if (failed + diverted > 0) {
    line.add(M.RecordsFailed, failed + diverted)
    addStages(line, batch)
  }
  if (diverted > 0) line.add(M.RecordsSentToPoisonSink, diverted)
  if (notHandled > 0) line.add(M.RecordsNotHandled, notHandled)
  const aggregates = batch.decoded?.kplAggregates ?? 0
  if (aggregates > 0) line.add(M.KplAggregates, aggregates)
  const bytes = batch.decoded?.bytesDecompressed ?? 0
  if (bytes > 0) line.add(M.BytesDecompressed, bytes)
}

/** The failed records by the step that failed them. */
function addStages(line: EmfLine, batch: RecordBatch): void {
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
  if (decode > 0) line.add(M.RecordsFailedDecode, decode)
  if (parse > 0) line.add(M.RecordsFailedParse, parse)
  if (validation > 0) line.add(M.RecordsFailedValidation, validation)
  if (handler > 0) line.add(M.RecordsFailedHandler, handler)
  if (poisonSink > 0) line.add(M.RecordsFailedPoisonSink, poisonSink)
  if (other > 0) line.add(M.RecordsFailedOther, other)
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
