/** The Shardwise chain: kinesisDecode, a parser when there is one, eachRecord, partialFailures (no logging). */
import middy, { type MiddlewareObj } from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  type EachRecordOptions,
  eachRecord,
  partialFailures,
  type RecordHandler,
} from '@shardwise/partial-failures'
import type { BenchHandler } from '../types.js'

export function shardwiseChain(
  handler: RecordHandler<Uint8Array>,
  options?: EachRecordOptions,
): BenchHandler {
  return middy(eachRecord(handler, options))
    .use(kinesisDecode())
    .use(partialFailures({ logger: false })) as unknown as BenchHandler
}

/** With a parser (`jsonParse`, `avroParse`): the record handler receives the parsed value. */
export function shardwiseParsed(
  parser: MiddlewareObj<never>,
  handler: RecordHandler<unknown>,
): BenchHandler {
  return middy(eachRecord(handler))
    .use(kinesisDecode())
    .use(parser as MiddlewareObj)
    .use(partialFailures({ logger: false })) as unknown as BenchHandler
}
