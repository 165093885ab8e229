/**
 * The Shardwise core chain with `@shardwise/observe`, apart from `shardwise.ts` so that the other
 * Shardwise rows neither load Powertools in their processes nor bundle it for their cold starts.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { batchMetrics, recordLogContext, recordTracing } from '@shardwise/observe'
import {
  type EachRecordOptions,
  eachRecord,
  partialFailures,
  type RecordHandler,
} from '@shardwise/partial-failures'
import type { BenchHandler } from '../types.js'

/** Which of observe's middlewares the chain uses; none is observability off. */
export interface Observed {
  metrics?: boolean
  logContext?: boolean
  /** `recordTracing()`, with no OpenTelemetry SDK registered (the API's no-op spans). */
  tracing?: boolean
}

/**
 * The core chain with `@shardwise/observe`'s metrics (one EMF line per invocation), record log
 * context (a Powertools Logger hooked, writing nothing: what a line costs is the user's) and
 * tracing, as `observed` asks; with none of them, the same process and module graph as the
 * others, Powertools loaded and its Metrics and Logger built: observability off. The EMF line is
 * serialized and written as in Lambda, by the Metrics' own console to the process's standard
 * output, which the bench points at /dev/null (`forkMeasure`).
 */
export function shardwiseObserved(
  handler: RecordHandler<Uint8Array>,
  observed: Observed,
  options?: EachRecordOptions,
): BenchHandler {
  const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'bench' })
  const logger = new Logger({ serviceName: 'bench' })
  const chain = middy(eachRecord(handler, options))
  if (observed.metrics) chain.use(batchMetrics({ metrics }))
  chain.use(kinesisDecode())
  if (observed.logContext) chain.use(recordLogContext({ logger }))
  if (observed.tracing) chain.use(recordTracing())
  return chain.use(partialFailures({ logger: false })) as unknown as BenchHandler
}
