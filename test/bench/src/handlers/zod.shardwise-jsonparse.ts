import { jsonParse } from '@shardwise/json-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import { orderZod } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise + jsonParse({ schema: zod })'
export const make = (sink: Sink) =>
  shardwiseParsed(jsonParse({ schema: orderZod }), async (record) => {
    sink(record.data)
  })
