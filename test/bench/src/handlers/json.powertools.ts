import { jsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler parses'
export const make = (sink: Sink) => powertoolsBatch((kinesis) => jsonOfBase64(kinesis.data), sink)
