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
      JSON.parse(Buffer.from(user.data, 'base64').toString('utf8')),
    ])
  })
  if (failure !== undefined) throw failure
  return out
}
