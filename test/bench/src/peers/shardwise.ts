/** The Shardwise core chain: kinesisDecode, eachRecord, partialFailures (no logging). */
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures, type RecordHandler } from '@shardwise/partial-failures'
import type { BenchHandler } from '../types.js'

export function shardwiseChain(handler: RecordHandler<Uint8Array>): BenchHandler {
  return middy(eachRecord(handler))
    .use(kinesisDecode())
    .use(partialFailures({ logger: false })) as unknown as BenchHandler
}
