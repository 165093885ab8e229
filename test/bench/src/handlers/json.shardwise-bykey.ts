import { jsonOfBytes } from '../decoders.js'
import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = "Shardwise core chain, ordering: 'partitionKey'"
export const make = (sink: Sink) =>
  shardwiseChain(
    async (record) => {
      sink(jsonOfBytes(record.data))
    },
    { ordering: 'partitionKey' },
  )
