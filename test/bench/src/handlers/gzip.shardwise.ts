import { gunzipSync } from 'node:zlib'
import { isGzip, jsonOfBytes } from '../decoders.js'
import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

// Until kinesisDecode decompresses (issue 4), the handler gunzips; once it does, records
// arrive decompressed and the check is all that is left of it.
export const label = 'Shardwise core chain (handler gunzips until kinesisDecode decompresses)'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    const bytes = isGzip(record.data) ? gunzipSync(record.data) : record.data
    sink(jsonOfBytes(bytes))
  })
