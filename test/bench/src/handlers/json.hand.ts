import { jsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import type { Sink } from '../types.js'

export const label = 'hand-written loop'
export const make = (sink: Sink) => handLoop((kinesis) => jsonOfBase64(kinesis.data), sink)
