/** Powertools for AWS Lambda: `processPartialResponse` with a `BatchProcessor` for Kinesis. */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch'
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda'
import type { BenchHandler, Sink } from '../types.js'

/** The record handler decodes the payload itself, as the Powertools docs show without the parser. */
export function powertoolsBatch(
  decode: (kinesis: KinesisStreamRecord['kinesis']) => unknown,
  sink: Sink,
  { processInParallel = true } = {},
): BenchHandler {
  const processor = new BatchProcessor(EventType.KinesisDataStreams)
  const handle = async (value: unknown) => {
    sink(value)
  }
  const recordHandler = async (record: KinesisStreamRecord) => {
    await handle(decode(record.kinesis))
  }
  return (event: KinesisStreamEvent, context) =>
    processPartialResponse(event, recordHandler, processor, { context, processInParallel })
}

/**
 * For payloads that carry many user records (KPL): the record handler hands on each. Records
 * run one after the other: run in parallel (the default), the user records of different
 * Kinesis records interleave and the shard's order is lost.
 */
export function powertoolsBatchMany(
  decode: (kinesis: KinesisStreamRecord['kinesis']) => unknown[],
  sink: Sink,
): BenchHandler {
  const processInParallel = false
  const processor = new BatchProcessor(EventType.KinesisDataStreams)
  const handle = async (value: unknown) => {
    sink(value)
  }
  const recordHandler = async (record: KinesisStreamRecord) => {
    const values = decode(record.kinesis)
    for (let v = 0; v < values.length; v++) await handle(values[v])
  }
  return (event: KinesisStreamEvent, context) =>
    processPartialResponse(event, recordHandler, processor, { context, processInParallel })
}

/**
 * With the parser integration: the processor parses each record with `config` (a full record
 * `schema`, or an `innerSchema` with a transformer) and the handler receives `kinesis.data` parsed.
 */
export function powertoolsParser(
  config: ConstructorParameters<typeof BatchProcessor>[1],
  sink: Sink,
): BenchHandler {
  const processor = new BatchProcessor(EventType.KinesisDataStreams, config)
  const handle = async (value: unknown) => {
    sink(value)
  }
  const recordHandler = async (record: { kinesis: { data: unknown } }) => {
    await handle(record.kinesis.data)
  }
  return (event: KinesisStreamEvent, context) =>
    processPartialResponse(event, recordHandler, processor, { context })
}
