/**
 * `throwOnFullBatchFailure()`: an invocation in which every record failed retryably throws, so
 * that Lambda counts it in the function's `Errors` metric and the alarms on it fire, as
 * Powertools' `throwOnFullBatchFailure` does. Otherwise the answer (`batchItemFailures` naming
 * the first record) would count as a success while the shard makes no progress.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  ConfigurationError,
  getBatch,
  type KinesisStreamEvent,
  propertyOf,
  type RecordBatch,
  type RecordError,
  RecordStatus,
} from '@shardwise/core'
import { pkg } from './package.js'

/**
 * Every record of the batch failed retryably (or was not reached after the failure of the
 * first), so Lambda retries it whole: `cause` is the first record's error.
 */
export class FullBatchFailureError extends Error {
  override name = 'FullBatchFailureError'
}

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(throwOnFullBatchFailure())
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function throwOnFullBatchFailure(): MiddlewareObj<KinesisStreamEvent, unknown> {
  return {
    after(request) {
      const batch = getBatch(request.event)
      if (batch === undefined) {
        throw new ConfigurationError(
          `${pkg}: throwOnFullBatchFailure found no decoded records; add .use(kinesisDecode()) to the middy chain`,
        )
      }
      const first = fullFailure(batch, request.event, request.response)
      if (first !== undefined) {
        throw new FullBatchFailureError(
          `all ${batch.records.length} records of the batch failed or were not reached, and each failure can be retried; Lambda retries the whole batch. First: ${first.message}`,
          { cause: first },
        )
      }
    },
  }
}

/**
 * The first record's error when the batch failed whole: the answer retries it from its first
 * record, that record failed retryably, no record succeeded or went to the poison sink, and no
 * record failed for good (a poison record is for the sink, or bisection, to corner, not an
 * outage).
 */
function fullFailure(
  batch: RecordBatch,
  event: KinesisStreamEvent,
  response: unknown,
): RecordError | undefined {
  if (batch.records.length === 0) return undefined
  const first = batch.errors.get(0)
  if (first === undefined || !first.retryable || batch.status[0] !== RecordStatus.Failed) {
    return undefined
  }
  for (let i = 0; i < batch.status.length; i++) {
    const status = batch.status[i]
    if (status === RecordStatus.Succeeded || status === RecordStatus.Diverted) return undefined
    if (status === RecordStatus.Failed && batch.errors.get(i)?.retryable !== true) return undefined
  }
  // The answer may be a batch handler's own, whose getters may throw: read with care.
  const reported = propertyOf(response, 'batchItemFailures')
  const firstSequence = event.Records?.[0]?.kinesis?.sequenceNumber
  const retriesAll =
    Array.isArray(reported) &&
    reported.some((item) => propertyOf(item, 'itemIdentifier') === firstSequence)
  return retriesAll ? first : undefined
}
