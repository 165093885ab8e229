/** What a path produced: the values its record handler received, and the checkpoint it answered. */
import { createHash } from 'node:crypto'
import type { Context, KinesisStreamBatchResponse } from 'aws-lambda'
import type { Sink } from './types.js'

export interface Output {
  values: unknown[]
  /** The lowest reported sequence number: where Lambda would resume; null when all succeeded. */
  checkpoint: string | null
}

export function collector(): { sink: Sink; values: unknown[] } {
  const values: unknown[] = []
  return { sink: (value) => values.push(value), values }
}

export function checkpointOf(response: KinesisStreamBatchResponse | undefined): string | null {
  let lowest: string | null = null
  for (const item of response?.batchItemFailures ?? []) {
    const id = item.itemIdentifier
    if (
      lowest === null ||
      id.length < lowest.length ||
      (id.length === lowest.length && id < lowest)
    ) {
      lowest = id
    }
  }
  return lowest
}

/** A short fingerprint of an output, so child processes can be compared without sending it all. */
export function digestOf(output: Output): string {
  const hash = createHash('sha256')
  for (const value of output.values) hash.update(JSON.stringify(value)).update('\n')
  hash.update(String(output.checkpoint))
  return `${output.values.length} values, checkpoint ${output.checkpoint ?? 'none'}, ${hash.digest('hex').slice(0, 16)}`
}

/** Enough of a Lambda context for middy, Powertools and Shardwise: 15 minutes from its creation. */
export function lambdaContext(): Context {
  const deadline = Date.now() + 900_000
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-2:123456789012:function:bench',
    memoryLimitInMB: '1024',
    awsRequestId: '00000000-0000-4000-8000-000000000000',
    logGroupName: '/aws/lambda/bench',
    logStreamName: '2026/11/25/[$LATEST]bench',
    getRemainingTimeInMillis: () => deadline - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  }
}

/** Quartiles by linear interpolation. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const at = (sorted.length - 1) * q
  const low = Math.floor(at)
  const high = Math.ceil(at)
  const a = sorted[low] as number
  const b = sorted[high] as number
  return a + (b - a) * (at - low)
}

export interface Spread {
  median: number
  p25: number
  p75: number
  mean: number
}

export function spreadOf(samples: number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b)
  let sum = 0
  for (const sample of sorted) sum += sample
  return {
    median: quantile(sorted, 0.5),
    p25: quantile(sorted, 0.25),
    p75: quantile(sorted, 0.75),
    mean: sum / sorted.length,
  }
}
