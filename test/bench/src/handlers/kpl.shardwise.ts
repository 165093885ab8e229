import { jsonOfBytes } from '../decoders.js'
import { deaggregatedJson } from '../kpl.js'
import { shardwiseChain } from '../peers/shardwise.js'
import type { Sink } from '../types.js'

const isAggregate = (bytes: Uint8Array) =>
  bytes[0] === 0xf3 && bytes[1] === 0x89 && bytes[2] === 0x9a && bytes[3] === 0xc2

const handle = async (sink: Sink, value: unknown) => {
  sink(value)
}

// Until kinesisDecode de-aggregates (issue 4), the handler does it with aws-kinesis-agg; once
// it does, records arrive expanded and only the second branch runs.
export const label =
  'Shardwise core chain (aws-kinesis-agg in the handler until kinesisDecode de-aggregates)'
export const make = (sink: Sink) =>
  shardwiseChain(async (record) => {
    if (record.subSequenceNumber === undefined && isAggregate(record.data)) {
      const values = deaggregatedJson(record.lambdaRecord.kinesis)
      for (let v = 0; v < values.length; v++) await handle(sink, values[v])
    } else {
      sink([record.partitionKey, record.subSequenceNumber, jsonOfBytes(record.data)])
    }
  })
