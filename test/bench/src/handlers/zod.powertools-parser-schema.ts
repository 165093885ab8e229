import { parser } from '@aws-lambda-powertools/batch/parser'
import { Base64Encoded } from '@aws-lambda-powertools/parser/helpers'
import {
  KinesisDataStreamRecord,
  KinesisDataStreamRecordPayload,
} from '@aws-lambda-powertools/parser/schemas/kinesis'
import { powertoolsParser } from '../peers/powertools.js'
import { orderZod } from '../schema-zod.js'
import type { Sink } from '../types.js'

/** The record schema built once, by hand: what `innerSchema` rebuilds for every record. */
const schema = KinesisDataStreamRecord.extend({
  kinesis: KinesisDataStreamRecordPayload.extend({ data: Base64Encoded(orderZod) }),
})

export const label = 'Powertools batch + parser (zod record schema built once)'
export const make = (sink: Sink) => powertoolsParser({ parser, schema }, sink)
