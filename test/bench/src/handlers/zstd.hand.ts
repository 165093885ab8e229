import { zstdJsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import type { Sink } from '../types.js'

export const label = 'hand-written loop (zstdDecompressSync + JSON.parse)'
export const make = (sink: Sink) => handLoop((kinesis) => zstdJsonOfBase64(kinesis.data), sink)
