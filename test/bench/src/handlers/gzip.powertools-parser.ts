import { parser } from '@aws-lambda-powertools/batch/parser'
import { KinesisDataStreamRecord } from '@aws-lambda-powertools/parser/schemas/kinesis'
import { powertoolsParser } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label = 'Powertools batch + parser (KinesisDataStreamRecord schema, gunzips)'
export const make = (sink: Sink) =>
  powertoolsParser({ parser, schema: KinesisDataStreamRecord }, sink)
export const lenient =
  'Base64Encoded hands a payload that is not JSON to the record handler as a string (z.any accepts it)'
