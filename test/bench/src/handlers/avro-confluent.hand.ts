import { confluentOfBase64 } from '../avro.js'
import { handLoop } from '../peers/hand.js'
import type { Sink } from '../types.js'

export const label = 'raw avsc loop (Confluent header, Type.fromBuffer)'
export const make = (sink: Sink) => handLoop((kinesis) => confluentOfBase64(kinesis.data), sink)
