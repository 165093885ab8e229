import { jsonParse } from '@shardwise/json-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise + jsonParse()'
export const make = (sink: Sink) =>
  shardwiseParsed(jsonParse(), async (record) => {
    sink(record.data)
  })
