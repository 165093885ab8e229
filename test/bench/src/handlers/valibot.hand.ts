import { jsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import { valibotOrder } from '../schema-valibot.js'
import type { Sink } from '../types.js'

export const label = 'hand-written loop + valibot safeParse'
export const make = (sink: Sink) =>
  handLoop((kinesis) => valibotOrder(jsonOfBase64(kinesis.data)), sink)
