/**
 * middy 6 with `@middy/event-normalizer` (base64 and JSON done for every record) and the record
 * handlers run with `Promise.allSettled`, the answer built from the rejected ones.
 */
import middy from '@middy/core-6'
import eventNormalizer from '@middy/event-normalizer'
import type {
  KinesisStreamBatchItemFailure,
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
} from 'aws-lambda'
import type { BenchHandler, Sink } from '../types.js'

export function middyNormalizer(check: (value: unknown) => unknown, sink: Sink): BenchHandler {
  const handle = async (value: unknown) => {
    sink(check(value))
  }
  const batchHandler = async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const records = event.Records
    const results = await Promise.allSettled(records.map((record) => handle(record.kinesis.data)))
    const batchItemFailures: KinesisStreamBatchItemFailure[] = []
    for (let i = 0; i < results.length; i++) {
      if ((results[i] as PromiseSettledResult<void>).status === 'rejected') {
        batchItemFailures.push({ itemIdentifier: records[i]?.kinesis.sequenceNumber as string })
      }
    }
    return { batchItemFailures }
  }
  return middy(batchHandler).use(eventNormalizer()) as unknown as BenchHandler
}
