import { SQSClient } from '@aws-sdk/client-sqs'
import { ConfigurationError, type KinesisRecord, RecordHandlerError } from '@shardwise/core'
import { hostileThrownValues, startFakeSqs } from '@shardwise/test-internals'
import { kinesisRecord, STREAM_ARN, sequenceNumber } from '@shardwise/testing'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  POISON_QUEUE_URL_ENV,
  type PoisonMessage,
  poisonMessageOf,
  sqsPoisonSink,
} from './index.js'

const QUEUE = 'https://sqs.us-east-2.amazonaws.com/123456789012/orders-poison'

/** A record as kinesisDecode hands it on, gzip-decompressed: data differs from rawData. */
function record(overrides: Partial<KinesisRecord<unknown>> = {}): KinesisRecord<unknown> {
  const raw = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x7b])
  const lambdaRecord = kinesisRecord({ data: raw, partitionKey: 'customer-2' }, 1)
  return {
    data: { id: 7 },
    // A view into a larger buffer, as decoding leaves it: only the view's bytes may be sent.
    rawData: new Uint8Array([9, 9, ...raw, 9]).subarray(2, 2 + raw.length),
    partitionKey: 'customer-2',
    explicitHashKey: undefined,
    sequenceNumber: sequenceNumber(1),
    subSequenceNumber: undefined,
    approximateArrivalTimestamp: 1545084650.987,
    shardId: 'shardId-000000000006',
    eventSourceARN: STREAM_ARN,
    lambdaRecord,
    ...overrides,
  }
}

const handlerError = (r: KinesisRecord<unknown>) =>
  new RecordHandlerError(r, new TypeError('the order has no customer'))

describe('sqsPoisonSink', () => {
  let sqs: Awaited<ReturnType<typeof startFakeSqs>>
  let client: SQSClient
  beforeAll(async () => {
    sqs = await startFakeSqs()
    client = new SQSClient({
      endpoint: sqs.url,
      region: 'us-east-2',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    })
  })
  afterAll(async () => {
    client.destroy()
    await sqs.close()
  })
  afterEach(() => {
    sqs.received.length = 0
    sqs.state.down = false
    delete process.env[POISON_QUEUE_URL_ENV]
  })

  it('sends the raw bytes, the coordinates and the error, enough to replay the record as it was', async () => {
    const r = record()
    await sqsPoisonSink({ queueUrl: QUEUE, client })(r, handlerError(r))
    expect(sqs.received).toHaveLength(1)
    const sent = sqs.received[0]
    expect(sent?.QueueUrl).toBe(QUEUE)
    expect(sent?.MessageGroupId).toBeUndefined()
    const message = JSON.parse(sent?.MessageBody ?? '') as PoisonMessage
    expect(message).toEqual({
      streamARN: STREAM_ARN,
      shardId: 'shardId-000000000006',
      sequenceNumber: sequenceNumber(1),
      subSequenceNumber: null,
      partitionKey: 'customer-2',
      explicitHashKey: null,
      approximateArrivalTimestamp: 1545084650.987,
      data: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00, 0x7b]).toString('base64'),
      error: {
        name: 'RecordHandlerError',
        message: expect.stringContaining('the order has no customer'),
        cause: 'the order has no customer',
      },
    })
    expect(message.error.message).toContain(sequenceNumber(1))
    expect(message.error.message).toContain('customer-2')
  })

  it('reads the queue URL from SHARDWISE_POISON_QUEUE_URL, as the construct sets it', async () => {
    process.env[POISON_QUEUE_URL_ENV] = `${QUEUE}-from-env`
    const r = record()
    await sqsPoisonSink({ client })(r, handlerError(r))
    expect(sqs.received[0]?.QueueUrl).toBe(`${QUEUE}-from-env`)
  })

  it('keeps a KPL sub-record apart from its siblings on a FIFO queue, grouped by shard', async () => {
    const r = record({ subSequenceNumber: 3, explicitHashKey: '12345' })
    await sqsPoisonSink({ queueUrl: `${QUEUE}.fifo`, client })(r, handlerError(r))
    expect(sqs.received[0]).toMatchObject({
      MessageGroupId: 'shardId-000000000006',
      MessageDeduplicationId: `${sequenceNumber(1)}:3`,
    })
    const message = JSON.parse(sqs.received[0]?.MessageBody ?? '') as PoisonMessage
    expect([message.subSequenceNumber, message.explicitHashKey]).toEqual([3, '12345'])
  })

  it('keeps the base64 text Lambda delivered when it could not be decoded', () => {
    const r = record({ rawData: new Uint8Array(0) })
    r.lambdaRecord.kinesis.data = 'not base64!'
    expect(poisonMessageOf(r, handlerError(r)).data).toBe('not base64!')
  })

  it('reads rawData once, which a record decoded at its turn decodes again at each read', () => {
    const r = record()
    const raw = Buffer.from(r.rawData)
    let reads = 0
    Object.defineProperty(r, 'rawData', {
      get: () => {
        reads++
        return Buffer.from(raw)
      },
    })
    expect(poisonMessageOf(r, handlerError(r)).data).toBe(raw.toString('base64'))
    expect(reads).toBe(1)
  })

  it('rejects when SQS does not take the message, so the record holds its shard', async () => {
    sqs.state.down = true
    const r = record()
    await expect(sqsPoisonSink({ queueUrl: QUEUE, client })(r, handlerError(r))).rejects.toThrow()
    expect(sqs.received).toEqual([])
  })

  it('refuses to be built without a queue URL, naming the environment variable', () => {
    expect(() => sqsPoisonSink({ client })).toThrow(ConfigurationError)
    expect(() => sqsPoisonSink({ client })).toThrow(
      /@shardwise\/sqs-poison-sink: no queue URL: set the environment variable SHARDWISE_POISON_QUEUE_URL/,
    )
    expect(() => sqsPoisonSink({ queueUrl: '', client })).toThrow(
      "@shardwise/sqs-poison-sink: Option 'queueUrl' must be a non-empty string",
    )
    expect(() => sqsPoisonSink({ queueUrl: QUEUE, queue: QUEUE } as never)).toThrow(
      "@shardwise/sqs-poison-sink: Unknown option 'queue'",
    )
  })

  it('refuses a client that cannot send, naming the option', () => {
    for (const client of [{}, 42, { send: 'no' }]) {
      expect(() => sqsPoisonSink({ queueUrl: QUEUE, client: client as never })).toThrow(
        "@shardwise/sqs-poison-sink: Option 'client' must be an SQSClient",
      )
    }
  })

  it('refuses options that cannot be read with a ConfigurationError that keeps what reading them threw', () => {
    const unreadable = hostileThrownValues.filter(([name]) => name.includes('Proxy'))
    expect(unreadable).toHaveLength(2)
    for (const [name, make] of unreadable) {
      for (const options of [make(), { queueUrl: QUEUE, client: make() }]) {
        let thrown: unknown
        try {
          sqsPoisonSink(options as never)
        } catch (error) {
          thrown = error
        }
        expect(thrown, name).toBeInstanceOf(ConfigurationError)
        expect((thrown as Error).message, name).toMatch(
          /^@shardwise\/sqs-poison-sink: the options cannot be read: /,
        )
        expect((thrown as Error).cause, name).toBeInstanceOf(Error)
      }
    }
  })
})
