import { jsonOfBytes } from '../decoders.js'
import { shardwiseChain } from '../peers/shardwise.js'
import { zodOrder } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise core chain, handler parses + zod'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    sink(zodOrder(jsonOfBytes(record.data)))
  })
