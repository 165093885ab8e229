/**
 * The parsers inside the whole chain: KPL aggregates (built by aws-kinesis-agg) whose user records
 * are JSON or Avro, a bad user record failing alone with its sub-record in the error, and the
 * answer naming its carrier; the same chain under middy 6.
 */
import { createRequire } from 'node:module'
import middy from '@middy/core'
import middy6 from '@middy/core-6'
import { avroParse } from '@shardwise/avro-parse'
import { getBatch, ParseError, ValidationError } from '@shardwise/core'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'

interface Aggregator {
  addUserRecord(record: { partitionKey: string; data: Buffer }): void
  build(): { data: Buffer }
}
const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => Aggregator
}

function aggregate(payloads: Buffer[]): Buffer {
  const aggregator = new RecordAggregator()
  payloads.forEach((data, n) => {
    aggregator.addUserRecord({ partitionKey: `customer-${n}`, data })
  })
  return aggregator.build().data
}

const Order = z.object({ orderId: z.string(), quantity: z.number().int().positive() })
const json = (value: unknown) => Buffer.from(JSON.stringify(value))

describe('parsers in the chain with KPL aggregates', () => {
  it('fails one bad JSON user record alone, names its sub-record, and reports its carrier', async () => {
    const parse = jsonParse({ schema: Order })
    const handled: string[] = []
    const handler = middy(
      eachRecord<InferData<typeof parse>>((record) => {
        handled.push(`${record.data.orderId}@${record.subSequenceNumber ?? '-'}`)
      }),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent([
      { data: json({ orderId: 'plain', quantity: 1 }) },
      {
        data: aggregate([
          json({ orderId: 'a0', quantity: 1 }),
          json({ orderId: 'a1', quantity: 2 }),
          json({ orderId: 'a2', quantity: 0 }),
          json({ orderId: 'a3', quantity: 1 }),
        ]),
      },
      { data: json({ orderId: 'after', quantity: 1 }) },
    ])
    const response = await handler(event, lambdaContext())
    const carrier = event.Records[1]?.kinesis.sequenceNumber as string
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: carrier }] })
    expect(handled).toEqual(['plain@-', 'a0@0', 'a1@1'])

    const batch = getBatch(event)
    const error = batch?.errors.get(3)
    expect(error).toBeInstanceOf(ValidationError)
    expect(error?.message).toBe(
      `record ${carrier} sub-record 2 of shardId-000000000006 (partition key "customer-2"): does not match the schema: quantity: Too small: expected number to be >0`,
    )
    // The user records after the bad one were parsed, waiting for Lambda's redelivery.
    expect(batch?.records[4]?.data).toEqual({ orderId: 'a3', quantity: 1 })
  })

  it('decodes Avro user records out of an aggregate, and fails a truncated one alone', async () => {
    const Reading = avro.Type.forSchema({
      type: 'record',
      name: 'Reading',
      fields: [
        { name: 'sensor', type: 'string' },
        { name: 'celsius', type: 'double' },
      ],
    })
    const good = (sensor: string) => Reading.toBuffer({ sensor, celsius: 21.5 })
    const seen: unknown[] = []
    const handler = middy(eachRecord((record) => void seen.push(record.data)))
      .use(kinesisDecode())
      .use(avroParse({ schema: Reading }))
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent([
      { data: aggregate([good('s0'), good('s1'), good('s2').subarray(0, 5), good('s3')]) },
    ])
    const response = await handler(event, lambdaContext())
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]?.kinesis.sequenceNumber }],
    })
    expect(seen).toEqual([
      { sensor: 's0', celsius: 21.5 },
      { sensor: 's1', celsius: 21.5 },
    ])
    const error = getBatch(event)?.errors.get(2)
    expect(error).toBeInstanceOf(ParseError)
    expect(error?.message).toMatch(
      / sub-record 2 of .*: is not a valid Avro datum of the schema: it ends early, after 5 bytes$/,
    )
  })

  it('works the same under middy 6', async () => {
    const seen: unknown[] = []
    const handler = middy6(eachRecord((record) => void seen.push(record.data)))
      .use(kinesisDecode())
      .use(jsonParse({ schema: Order }))
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent([
      { data: json({ orderId: 'a', quantity: 1 }) },
      { data: '{"orderId":' },
    ])
    const response = await handler(event, lambdaContext())
    expect(seen).toEqual([{ orderId: 'a', quantity: 1 }])
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]?.kinesis.sequenceNumber }],
    })
  })
})
