import { jsonParse } from '@shardwise/json-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import { orderValibot } from '../schema-valibot.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise + jsonParse({ schema: valibot })'
export const make = (sink: Sink) =>
  shardwiseParsed(jsonParse({ schema: orderValibot }), async (record) => {
    sink(record.data)
  })
