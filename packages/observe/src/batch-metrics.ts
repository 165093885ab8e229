/**
 * `batchMetrics({ metrics })`: one line of CloudWatch's Embedded Metric Format per invocation,
 * through a Powertools `Metrics`, counting what became of the batch's records. It reads the
 * decoded batch and the answer when the chain is done, so the record loop pays nothing for it.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  ConfigurationError,
  checkOptions,
  compareSequenceNumbers,
  countStatuses,
  DecodeError,
  getBatch,
  type KinesisStreamEvent,
  messageOf,
  type OptionRules,
  option,
  ParseError,
  propertyOf,
  type RecordBatch,
  RecordHandlerError,
  RecordStatus,
  ValidationError,
} from '@shardwise/core'
import { pkg } from './package.js'
import { streamNameOf } from './stream-name.js'

/** The units the metrics use, as CloudWatch (and Powertools' `MetricUnit`) name them. */
export type MetricUnit = 'Count' | 'Bytes' | 'Milliseconds'

/**
 * What `batchMetrics` needs of a Powertools `Metrics` (`@aws-lambda-powertools/metrics`): it
 * adds its metrics and dimensions, then publishes them with whatever the handler added.
 */
export interface MetricsPublisher {
  addMetric(name: string, unit: MetricUnit, value: number): unknown
  addDimension(name: string, value: string): unknown
  publishStoredMetrics(): unknown
}

export interface BatchMetricsOptions {
  /** A Powertools `Metrics`; its namespace and default dimensions (`service`) apply. */
  metrics: MetricsPublisher
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
  metrics: (metrics, name) =>
    ['addMetric', 'addDimension', 'publishStoredMetrics'].every(
      (method) => typeof (metrics as Record<string, unknown> | null)?.[method] === 'function',
    )
      ? undefined
      : `Option '${name}' needs addMetric, addDimension and publishStoredMetrics methods: a Powertools Metrics`,
  dimensions: option.shape({
    streamName: option.boolean,
    functionName: option.boolean,
    shardId: option.boolean,
  }),
}

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

  const publish = (request: Request, response: unknown, failed: boolean) => {
    const batch = getBatch(request.event)
    if (batch === undefined) return false
    const at = started.get(request)
    started.delete(request)
    addDimensions(metrics, wanted, request, batch)
    addCounts(metrics, batch)
    const now = Date.now()
    if (at !== undefined) {
      metrics.addMetric(MetricName.BatchDuration, 'Milliseconds', performance.now() - at)
    }
    const newest = newestArrival(batch)
    if (newest !== undefined) {
      metrics.addMetric(MetricName.IteratorAge, 'Milliseconds', Math.max(0, now - newest * 1000))
    }
    // A thrown invocation is retried whole: its checkpoint is the first record.
    const checkpoint = failed
      ? request.event?.Records?.[0]?.kinesis?.approximateArrivalTimestamp
      : checkpointArrival(request.event, response)
    if (typeof checkpoint === 'number') {
      const age = Math.max(0, now - checkpoint * 1000)
      metrics.addMetric(MetricName.CheckpointIteratorAge, 'Milliseconds', age)
    }
    metrics.publishStoredMetrics()
    return true
  }

  // Metrics never change the answer: a Metrics that throws (a dimension or metric over
  // Powertools' limits, a publisher of your own that fails) or an answer whose getters throw
  // loses this invocation's line, said on stderr, and the invocation answers as it would.
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

function addDimensions(
  metrics: MetricsPublisher,
  wanted: { streamName: boolean; functionName: boolean; shardId: boolean },
  request: Request,
  batch: RecordBatch,
): void {
  const first = batch.records[0] ?? undefined
  const arn = first?.eventSourceARN ?? request.event?.Records?.[0]?.eventSourceARN
  if (wanted.streamName) {
    const name = streamNameOf(arn)
    if (name !== undefined) metrics.addDimension('StreamName', name)
  }
  if (wanted.functionName) {
    const name = request.context?.functionName || process.env.AWS_LAMBDA_FUNCTION_NAME
    if (name) metrics.addDimension('FunctionName', name)
  }
  if (wanted.shardId && first?.shardId) metrics.addDimension('ShardId', first.shardId)
}

function addCounts(metrics: MetricsPublisher, batch: RecordBatch): void {
  const { succeeded, failed, diverted, pending: notHandled } = countStatuses(batch)
  const stages = { decode: 0, parse: 0, validation: 0, handler: 0, poisonSink: 0, other: 0 }
  for (const [index, error] of batch.errors) {
    const status = batch.status[index]
    if (status !== RecordStatus.Failed && status !== RecordStatus.Diverted) continue
    if (error instanceof DecodeError) stages.decode++
    else if (error instanceof ValidationError) stages.validation++
    else if (error instanceof ParseError) stages.parse++
    else if (error instanceof RecordHandlerError) stages.handler++
    else if (error.name === 'PoisonSinkError') stages.poisonSink++
    else stages.other++
  }
  metrics.addMetric(MetricName.RecordsReceived, 'Count', batch.records.length)
  const counts: ReadonlyArray<readonly [string, number]> = [
    [MetricName.RecordsSucceeded, succeeded],
    [MetricName.RecordsFailed, failed + diverted],
    [MetricName.RecordsFailedDecode, stages.decode],
    [MetricName.RecordsFailedParse, stages.parse],
    [MetricName.RecordsFailedValidation, stages.validation],
    [MetricName.RecordsFailedHandler, stages.handler],
    [MetricName.RecordsFailedPoisonSink, stages.poisonSink],
    [MetricName.RecordsFailedOther, stages.other],
    [MetricName.RecordsSentToPoisonSink, diverted],
    [MetricName.RecordsNotHandled, notHandled],
    [MetricName.KplAggregates, batch.decoded?.kplAggregates ?? 0],
  ]
  // Each addMetric costs a Powertools Metrics about a microsecond (it reads process.env several
  // times): a healthy batch publishes 4 metrics instead of 16.
  for (const [name, count] of counts) if (count > 0) metrics.addMetric(name, 'Count', count)
  const bytes = batch.decoded?.bytesDecompressed ?? 0
  if (bytes > 0) metrics.addMetric(MetricName.BytesDecompressed, 'Bytes', bytes)
}

function newestArrival(batch: RecordBatch): number | undefined {
  let newest: number | undefined
  for (const record of batch.records) {
    const arrival = record.approximateArrivalTimestamp
    if (typeof arrival === 'number' && (newest === undefined || arrival > newest)) newest = arrival
  }
  return newest
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
