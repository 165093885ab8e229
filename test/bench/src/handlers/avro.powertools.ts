import { avroOfBase64 } from '../avro.js'
import { powertoolsBatch } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch, handler decodes with avsc'
export const make = (sink: Sink) => powertoolsBatch((kinesis) => avroOfBase64(kinesis.data), sink)
