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
import { batchMetrics, recordLogContext } from '@shardwise/observe'
import {
  type EachRecordOptions,
  eachRecord,
  partialFailures,
  type RecordHandler,
} from '@shardwise/partial-failures'
import type { BenchHandler } from '../types.js'

/**
 * The core chain with `@shardwise/observe`'s metrics (one EMF line per invocation) and record log
 * context (a Powertools Logger hooked, writing nothing: what a line costs is the user's). The
 * EMF line is serialized and written as in Lambda, but to /dev/null with a synchronous write,
 * not to the stdout that the bench's children share with the tables.
 */
export function shardwiseObserved(
  handler: RecordHandler<Uint8Array>,
  options?: EachRecordOptions,
): BenchHandler {
  const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'bench' })
  ;(metrics as unknown as { console: Console }).console = new Console({ stdout: devNull() })
  const logger = new Logger({ serviceName: 'bench' })
  return middy(eachRecord(handler, options))
    .use(batchMetrics({ metrics }))
    .use(kinesisDecode())
    .use(recordLogContext({ logger }))
    .use(partialFailures({ logger: false })) as unknown as BenchHandler
}

function devNull(): Writable {
  const fd = openSync('/dev/null', 'w')
  return new Writable({
    write(chunk, _encoding, done) {
      writeSync(fd, chunk)
      done()
    },
  })
}
