/**
 * The whole chain as a user wires it, on the AWS sample event, under middy 7 and middy 6.
 */
import { readFileSync } from 'node:fs'
import middy from '@middy/core'
import middy6 from '@middy/core-6'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { lambdaContext } from '@shardwise/testing'
import type { KinesisStreamEvent } from 'aws-lambda'
import { describe, expect, it } from 'vitest'

const awsSample = (): KinesisStreamEvent =>
  JSON.parse(
    readFileSync(new URL('../../examples/events/kinesis-sample.json', import.meta.url), 'utf8'),
  )
const SECOND = '49590338271490256608559692540925702759324208523137515618'
const utf8 = new TextDecoder()

function chain(engine: typeof middy, failOn?: string) {
  const seen: string[] = []
  const handler = engine(
    eachRecord(async (record) => {
      seen.push(utf8.decode(record.data))
      if (record.sequenceNumber === failOn) throw new Error('cannot store it')
    }),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
  return { handler, seen }
}

describe.each([
  ['middy 7', middy],
  ['middy 6', middy6 as unknown as typeof middy],
])('the chain under %s', (_name, engine) => {
  it('decodes the AWS sample event to its two messages and reports nothing', async () => {
    const { handler, seen } = chain(engine)
    expect(await handler(awsSample(), lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual(['Hello, this is a test.', 'This is only a test.'])
  })

  it("reports exactly the second record's sequence number when its handler throws", async () => {
    const { handler, seen } = chain(engine, SECOND)
    expect(await handler(awsSample(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: SECOND }],
    })
    expect(seen).toEqual(['Hello, this is a test.', 'This is only a test.'])
  })

  it('gives every decoded record its coordinates', async () => {
    const records: unknown[] = []
    const handler = engine(
      eachRecord(async (record) => {
        const { data, rawData, lambdaRecord, ...coordinates } = record
        records.push({
          ...coordinates,
          data: Buffer.from(data).toString(),
          hasRaw: rawData === data,
        })
      }),
    ).use(kinesisDecode())
    await handler(awsSample(), lambdaContext())
    expect(records[0]).toEqual({
      data: 'Hello, this is a test.',
      partitionKey: '1',
      explicitHashKey: undefined,
      sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
      subSequenceNumber: undefined,
      approximateArrivalTimestamp: 1545084650.987,
      shardId: 'shardId-000000000006',
      eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
      hasRaw: true,
    })
  })

  it.each([
    ['an SQS event', { Records: [{ eventSource: 'aws:sqs', body: '{}' }] }, /got aws:sqs/],
    [
      'a DynamoDB stream event',
      { Records: [{ eventSource: 'aws:dynamodb', dynamodb: {} }] },
      /got aws:dynamodb/,
    ],
    ['an event without Records', { detail: {} }, /got an event without Records/],
  ])(
    'refuses %s, naming what it got and that it expected aws:kinesis',
    async (_kind, event, got) => {
      const { handler } = chain(engine)
      const failure = handler(event as unknown as KinesisStreamEvent, lambdaContext())
      await expect(failure).rejects.toThrow(/expected an aws:kinesis event/)
      await expect(
        handler(event as unknown as KinesisStreamEvent, lambdaContext()),
      ).rejects.toThrow(got)
    },
  )

  it('answers an empty batch with an empty list', async () => {
    const { handler } = chain(engine)
    expect(await handler({ Records: [] }, lambdaContext())).toEqual({ batchItemFailures: [] })
  })
})
