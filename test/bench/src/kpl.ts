/** KPL de-aggregation with aws-kinesis-agg, checksums on, as its users call it. */

import agg from 'aws-kinesis-agg'
import type { KinesisStreamRecord } from 'aws-lambda'

/** What the KPL paths hand on for each user record, so keys and positions are compared too. */
export type SubRecord = [
  partitionKey: string,
  subSequenceNumber: number | undefined,
  value: unknown,
]

export function deaggregatedJson(kinesis: KinesisStreamRecord['kinesis']): SubRecord[] {
  return deaggregated(kinesis, (data) => JSON.parse(Buffer.from(data, 'base64').toString('utf8')))
}

/**
 * De-aggregation alone: each user record's bytes, which aws-kinesis-agg hands out as base64. A
 * record that is no aggregate fails, so that the smoke test's bad record is one here too.
 */
export function deaggregatedBytes(kinesis: KinesisStreamRecord['kinesis']): SubRecord[] {
  const records = deaggregated(kinesis, (data) => Buffer.from(data, 'base64'))
  if (records[0]?.[1] === undefined) throw new Error('not a KPL aggregate')
  return records
}

function deaggregated(
  kinesis: KinesisStreamRecord['kinesis'],
  convert: (base64: string) => unknown,
): SubRecord[] {
  let out: SubRecord[] = []
  let failure: Error | undefined
  agg.deaggregateSync(kinesis, true, (error, userRecords) => {
    if (error) {
      failure = error
      return
    }
    out = (userRecords ?? []).map((user) => [
      user.partitionKey,
      user.subSequenceNumber,
      convert(user.data),
    ])
  })
  if (failure !== undefined) throw failure
  return out
}
