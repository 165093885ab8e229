/**
 * The dead-letter path end to end with real AWS clients: the handler's SQSClient sends to an
 * SQS endpoint on 127.0.0.1, and what arrived there is put back on a Kinesis stream (kinesalite,
 * in memory, as @shardwise/local starts it) with the Kinesis client, byte for byte.
 */
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
} from '@aws-sdk/client-kinesis'
import { SQSClient } from '@aws-sdk/client-sqs'
import { type LocalKinesis, startLocalKinesis } from '@shardwise/local'
import type { PoisonMessage } from '@shardwise/sqs-poison-sink'
import { startFakeSqs } from '@shardwise/test-internals'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ordersHandler } from './orders-dlq.js'

describe('the orders handler with an SQS dead-letter queue', () => {
  let fakeSqs: Awaited<ReturnType<typeof startFakeSqs>>
  let sqs: SQSClient
  let kinesis: LocalKinesis
  const queueUrl = 'https://sqs.us-east-2.amazonaws.com/123456789012/orders-dlq'

  beforeAll(async () => {
    fakeSqs = await startFakeSqs()
    sqs = new SQSClient({
      endpoint: fakeSqs.url,
      region: 'us-east-2',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    })
    kinesis = await startLocalKinesis({ region: 'us-east-2' })
  })
  afterAll(async () => {
    sqs.destroy()
    await fakeSqs.close()
    await kinesis.close()
  })

  const orders = () =>
    kinesisEvent([
      { data: JSON.stringify({ id: 'o-1' }), partitionKey: 'customer-1' },
      { data: '{"id": 7 broken', partitionKey: 'customer-2' },
      { data: JSON.stringify({ qty: 3 }), partitionKey: 'customer-3' },
      { data: JSON.stringify({ id: 'o-4' }), partitionKey: 'customer-1' },
    ])

  it('sends each poison record to the queue and lets the shard move on', async () => {
    fakeSqs.received.length = 0
    const response = await ordersHandler({ client: sqs, queueUrl }, recordingLogger() as never)(
      orders(),
      lambdaContext(),
    )
    expect(response).toEqual({ batchItemFailures: [] })
    const letters = fakeSqs.received.map(
      (message) => JSON.parse(message.MessageBody) as PoisonMessage,
    )
    expect(fakeSqs.received.every((message) => message.QueueUrl === queueUrl)).toBe(true)
    expect(
      letters.map((letter) => [letter.sequenceNumber, letter.partitionKey, letter.error.name]),
    ).toEqual([
      [sequenceNumber(1), 'customer-2', 'RecordHandlerError'],
      [sequenceNumber(2), 'customer-3', 'RecordHandlerError'],
    ])
  })

  it('keeps what is needed to put the record back on a stream, byte for byte', async () => {
    const letter = JSON.parse(
      (fakeSqs.received[0] as { MessageBody: string }).MessageBody,
    ) as PoisonMessage
    await kinesis.createStream('orders-replay', 1)
    const { client } = kinesis
    const stream = await client.send(new DescribeStreamCommand({ StreamName: 'orders-replay' }))
    await client.send(
      new PutRecordCommand({
        StreamName: 'orders-replay',
        PartitionKey: letter.partitionKey,
        Data: Buffer.from(letter.data, 'base64'),
      }),
    )
    const { ShardIterator } = await client.send(
      new GetShardIteratorCommand({
        StreamName: 'orders-replay',
        ShardId: stream.StreamDescription?.Shards?.[0]?.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    )
    const { Records } = await client.send(new GetRecordsCommand({ ShardIterator }))
    expect(Records).toHaveLength(1)
    expect(Records?.[0]?.PartitionKey).toBe('customer-2')
    expect(Buffer.from(Records?.[0]?.Data ?? []).toString()).toBe('{"id": 7 broken')
  })

  it('reports the record when the queue is down, and starts nothing after it', async () => {
    fakeSqs.received.length = 0
    fakeSqs.state.down = true
    try {
      const response = await ordersHandler({ client: sqs, queueUrl }, recordingLogger() as never)(
        orders(),
        lambdaContext(),
      )
      expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
      expect(fakeSqs.received).toEqual([])
    } finally {
      fakeSqs.state.down = false
    }
  })
})
