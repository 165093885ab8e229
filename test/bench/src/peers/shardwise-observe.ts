/**
 * The Shardwise core chain with `@shardwise/observe`, apart from `shardwise.ts` so that the other
 * Shardwise rows neither load Powertools in their processes nor bundle it for their cold starts.
 */
import { Console } from 'node:console'
import { openSync, writeSync } from 'node:fs'
import { Writable } from 'node:stream'
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
 * serialized and written as in Lambda, but to /dev/null with a synchronous write, not to the
 * stdout that the bench's children share with the tables. A child's stdout as a pipe that the
 * bench drained measured +36% for batchMetrics on json-100 (each line wakes the reader), and
 * /dev/null as Node's own stdout stream (a file: each line made a Buffer first) +9%: what the
 * platform charges for a log line, which any logger pays, is kept out of the library's cost.
 */
export function shardwiseObserved(
  handler: RecordHandler<Uint8Array>,
  observed: Observed,
  options?: EachRecordOptions,
): BenchHandler {
  const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'bench' })
  ;(metrics as unknown as { console: Console }).console = new Console({ stdout: devNull() })
  const logger = new Logger({ serviceName: 'bench' })
  const chain = middy(eachRecord(handler, options))
  if (observed.metrics) chain.use(batchMetrics({ metrics }))
  chain.use(kinesisDecode())
  if (observed.logContext) chain.use(recordLogContext({ logger }))
  if (observed.tracing) chain.use(recordTracing())
  return chain.use(partialFailures({ logger: false })) as unknown as BenchHandler
}

/**
 * A synchronous stream to /dev/null that takes the line as a string, as Lambda's stdout (a pipe)
 * does: a Writable that decoded strings to Buffers first timed an allocation and a copy that
 * the function does not pay.
 */
function devNull(): Writable {
  const fd = openSync('/dev/null', 'w')
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      if (typeof chunk === 'string') writeSync(fd, chunk)
      else writeSync(fd, chunk)
      done()
    },
  })
}
