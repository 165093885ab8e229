/** Test helpers: Kinesis events around payloads, and the whole chain around a parser. */
import middy from '@middy/core'
import { type Context, getBatch, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import type { AvroParser } from './index.js'

/** Kinesis records of one shard carrying the given payloads, numbered from sequence 100. */
export function shardEvent(payloads: Uint8Array[]): KinesisStreamEvent {
  const arn = 'arn:aws:kinesis:eu-west-1:123456789012:stream/orders'
  return {
    Records: payloads.map((payload, n) => {
      const sequenceNumber = String(100 + n)
      return {
        eventSource: 'aws:kinesis',
        eventSourceARN: arn,
        eventID: `shardId-000000000001:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        eventVersion: '1.0',
        awsRegion: 'eu-west-1',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/consumer',
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: `order-${n}`,
          sequenceNumber,
          data: Buffer.from(payload).toString('base64'),
          approximateArrivalTimestamp: 1_700_000_000 + n,
        },
      }
    }),
  }
}

/** Runs kinesisDecode, the parser and eachRecord; returns what each record became. */
export async function parseThrough<T>(parser: AvroParser<T>, payloads: Uint8Array[]) {
  const event = shardEvent(payloads)
  const handled: T[] = []
  const handler = middy(eachRecord<T>((record) => void handled.push(record.data)))
    .use(kinesisDecode())
    .use(parser)
    .use(partialFailures({ logger: false }))
  const response = await handler(event, { functionName: 'avro-parse-test' } as Context)
  const batch = getBatch<T>(event)
  if (batch === undefined) throw new Error('kinesisDecode attaches the batch')
  return {
    response,
    handled,
    errors: batch.errors,
    status: batch.status,
    /** Each record's data, or its error's message. */
    outcomes: batch.records.map((record, i) => batch.errors.get(i)?.message ?? record.data),
  }
}
