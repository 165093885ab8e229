/**
 * The hand-written loop a careful user writes without a library: decode, parse, await the
 * record handler, stop at the first failure and report it (Lambda retries from there).
 */
import type {
  KinesisStreamBatchResponse,
  KinesisStreamEvent,
  KinesisStreamRecord,
} from 'aws-lambda'
import type { BenchHandler, Sink } from '../types.js'

/** `decode` turns one Lambda record's payload into the values it carries (one, or several for KPL). */
export function handLoop(
  decode: (kinesis: KinesisStreamRecord['kinesis']) => unknown,
  sink: Sink,
): BenchHandler {
  const handle = async (value: unknown) => {
    sink(value)
  }
  return async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const records = event.Records
    for (let i = 0; i < records.length; i++) {
      const kinesis = (records[i] as KinesisStreamRecord).kinesis
      try {
        await handle(decode(kinesis))
      } catch {
        return { batchItemFailures: [{ itemIdentifier: kinesis.sequenceNumber }] }
      }
    }
    return { batchItemFailures: [] }
  }
}

/** Like `handLoop`, for payloads that carry many user records (KPL): each is handed on alone. */
export function handLoopMany(
  decode: (kinesis: KinesisStreamRecord['kinesis']) => unknown[],
  sink: Sink,
): BenchHandler {
  const handle = async (value: unknown) => {
    sink(value)
  }
  return async (event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> => {
    const records = event.Records
    for (let i = 0; i < records.length; i++) {
      const kinesis = (records[i] as KinesisStreamRecord).kinesis
      try {
        const values = decode(kinesis)
        for (let v = 0; v < values.length; v++) await handle(values[v])
      } catch {
        return { batchItemFailures: [{ itemIdentifier: kinesis.sequenceNumber }] }
      }
    }
    return { batchItemFailures: [] }
  }
}
