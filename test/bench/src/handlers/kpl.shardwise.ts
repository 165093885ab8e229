import { jsonOfBytes } from '../decoders.js'
import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise (kinesisDecode de-aggregates, handler parses)'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    sink([record.partitionKey, record.subSequenceNumber, jsonOfBytes(record.data)])
  })
