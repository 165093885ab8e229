/**
 * See what a Kinesis consumer is doing. Each piece reads the decoded batch through
 * `@shardwise/core`, as every Shardwise middleware does, and composes with the chain:
 *
 * - `batchMetrics({ metrics })`: one Embedded Metric Format line per invocation, counting what
 *   became of the records, with iterator ages and the batch's duration;
 * - `recordLogContext({ logger })`: each log line written while a record runs names the record;
 * - `recordTracing()`: one OpenTelemetry span per record, linked to the producer's trace;
 * - `throwOnFullBatchFailure()`: an invocation whose every record failed retryably throws, so
 *   Lambda's `Errors` metric and the alarms on it see it.
 */
export {
  type BatchMetricsOptions,
  batchMetrics,
  MetricName,
  type MetricUnit,
  type PowertoolsMetrics,
} from './batch-metrics.js'
export { FullBatchFailureError, throwOnFullBatchFailure } from './full-batch-failure.js'
export {
  currentRecord,
  type PowertoolsLogger,
  type RecordLogContextOptions,
  recordLogContext,
} from './record-log-context.js'
export { type RecordTracingOptions, recordTracing, SEMCONV_VERSION } from './record-tracing.js'
