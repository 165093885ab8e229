import { zstdJsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler decompresses (zstd) and parses'
export const make = (sink: Sink) =>
  powertoolsBatch((kinesis) => zstdJsonOfBase64(kinesis.data), sink)
