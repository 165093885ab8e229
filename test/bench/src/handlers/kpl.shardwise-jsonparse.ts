import { jsonParse } from '@shardwise/json-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

export const label = 'Shardwise (kinesisDecode de-aggregates) + jsonParse()'
export const make = (sink: Sink) =>
  shardwiseParsed(jsonParse(), async (record) => {
    sink([record.partitionKey, record.subSequenceNumber, record.data])
  })
