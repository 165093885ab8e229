import { parser } from '@aws-lambda-powertools/batch/parser'
import { powertoolsParser } from '../peers/powertools.js'
import { orderZod } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch + parser (zod innerSchema, base64 transformer)'
export const make = (sink: Sink) =>
  powertoolsParser({ parser, innerSchema: orderZod, transformer: 'base64' }, sink)
