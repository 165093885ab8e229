import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise (kinesisDecode de-aggregates), bytes only'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    // As on the aws-kinesis-agg path: a record that is no aggregate fails.
    if (record.subSequenceNumber === undefined) throw new Error('not a KPL aggregate')
    sink([record.partitionKey, record.subSequenceNumber, record.data])
  })
