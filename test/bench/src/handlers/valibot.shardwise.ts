import { jsonOfBytes } from '../decoders.js'
import { shardwiseChain } from '../peers/shardwise.js'
import { valibotOrder } from '../schema-valibot.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise core chain, handler parses + valibot'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    sink(valibotOrder(jsonOfBytes(record.data)))
  })
