import { jsonOfBytes } from '../decoders.js'
import { shardwiseObserved } from '../peers/shardwise-observe.js'
import type { Sink } from '../types.js'

export const label =
  'Shardwise core chain + batchMetrics + recordLogContext + recordTracing (no SDK)'
export const make = (sink: Sink) =>
  shardwiseObserved(
    async (record) => {
      sink(jsonOfBytes(record.data))
    },
    { metrics: true, logContext: true, tracing: true },
  )
