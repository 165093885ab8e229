import { jsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import { zodOrder } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'hand-written loop + zod safeParse'
export const make = (sink: Sink) =>
  handLoop((kinesis) => zodOrder(jsonOfBase64(kinesis.data)), sink)
