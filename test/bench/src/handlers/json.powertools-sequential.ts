import { jsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import type { Sink } from '../types.js'

// What a user who needs the shard's order sets: records one after the other.
export const label = 'Powertools batch (processInParallel: false), handler parses'
export const make = (sink: Sink) =>
  powertoolsBatch((kinesis) => jsonOfBase64(kinesis.data), sink, { processInParallel: false })
