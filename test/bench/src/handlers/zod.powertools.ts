import { jsonOfBase64 } from '../decoders.js'
import { powertoolsBatch } from '../peers/powertools.js'
import { zodOrder } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler parses + zod'
export const make = (sink: Sink) =>
  powertoolsBatch((kinesis) => zodOrder(jsonOfBase64(kinesis.data)), sink)
