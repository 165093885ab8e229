import { avroOf } from '../avro.js'
import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise core chain, handler decodes with avsc'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    sink(avroOf(record.data))
  })
