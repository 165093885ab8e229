import { jsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import { valibotOrder } from '../schema-valibot.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler parses + valibot'
export const make = (sink: Sink) =>
  powertoolsBatch((kinesis) => valibotOrder(jsonOfBase64(kinesis.data)), sink)
