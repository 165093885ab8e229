import { gunzipJsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import type { Sink } from '../types.js'

export const label = 'hand-written loop (gunzipSync + JSON.parse)'
export const make = (sink: Sink) => handLoop((kinesis) => gunzipJsonOfBase64(kinesis.data), sink)
