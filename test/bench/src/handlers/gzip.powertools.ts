import { gunzipJsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler gunzips and parses'
export const make = (sink: Sink) =>
  powertoolsBatch((kinesis) => gunzipJsonOfBase64(kinesis.data), sink)
