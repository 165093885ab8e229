import { avroParse } from '@shardwise/avro-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import { orderAvroSchema } from '../schemas.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise + avroParse({ schema })'
export const make = (sink: Sink) =>
  shardwiseParsed(avroParse({ schema: orderAvroSchema }), async (record) => {
    sink(record.data)
  })
