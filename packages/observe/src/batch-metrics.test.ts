import { gzipSync } from 'node:zlib'
import { Metrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import type { KinesisStreamEvent } from '@shardwise/core'
import { jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  NonRetryableError,
  partialFailures,
  type RecordHandler,
} from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { batchMetrics, MetricName } from './batch-metrics.js'
import { captureStdout, emfProblems, kplAggregate } from './emf.fixture.js'

const NOW = Date.parse('2026-12-04T12:00:00.000Z')
/** Epoch seconds, as Lambda gives approximateArrivalTimestamp, `ms` before NOW. */
const arrivedAgo = (ms: number) => (NOW - ms) / 1000

interface Order {
  orderId: string
  fail?: 'retryable' | 'poison'
}

/** A Standard Schema by hand: an object with a string orderId. */
const orderSchema = {
  '~standard': {
    version: 1 as const,
    vendor: 'test',
    validate: (value: unknown) =>
      typeof (value as { orderId?: unknown } | null)?.orderId === 'string'
        ? { value: value as Order }
        : { issues: [{ message: 'orderId must be a string', path: ['orderId'] }] },
  },
}

const orderHandler: RecordHandler<Order> = (record) => {
  if (record.data.fail === 'retryable') throw new Error('database unavailable')
  if (record.data.fail === 'poison') throw new NonRetryableError('order refused for good')
}

function chain(
  metrics: Metrics,
  options: { dimensions?: Parameters<typeof batchMetrics>[0]['dimensions'] } = {},
) {
  return middy(eachRecord<Order>(orderHandler))
    .use(batchMetrics({ metrics, ...options }))
    .use(kinesisDecode())
    .use(jsonParse({ schema: orderSchema }))
    .use(partialFailures({ logger: false, onPoison: async () => {} }))
}

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: NOW })
  stdout = captureStdout()
})
afterEach(() => {
  stdout.restore()
  vi.useRealTimers()
})

const order = (orderId: string, fail?: Order['fail']) => JSON.stringify({ orderId, fail })

describe('batchMetrics', () => {
  it('publishes one EMF line per invocation that counts each outcome and each failing stage', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
    const event = kinesisEvent([
      { data: order('a'), approximateArrivalTimestamp: arrivedAgo(9_000) },
      { data: { base64: 'not base64!' }, approximateArrivalTimestamp: arrivedAgo(8_000) },
      { data: '{"orderId":', approximateArrivalTimestamp: arrivedAgo(7_000) },
      { data: '{"orderId":42}', approximateArrivalTimestamp: arrivedAgo(6_000) },
      { data: order('b', 'poison'), approximateArrivalTimestamp: arrivedAgo(5_000) },
      { data: order('c', 'retryable'), approximateArrivalTimestamp: arrivedAgo(4_000) },
      { data: order('d'), approximateArrivalTimestamp: arrivedAgo(3_000) },
    ])
    const answer = await chain(metrics)(event, lambdaContext(60_000, 'orders-consumer'))
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(5) }] })

    const lines = stdout.emf()
    expect(lines).toHaveLength(1)
    const line = lines[0] as (typeof lines)[number]
    expect(emfProblems(line)).toEqual([])
    expect(line).toMatchObject({
      RecordsReceived: 7,
      RecordsSucceeded: 1,
      RecordsFailed: 5,
      RecordsFailedDecode: 1,
      RecordsFailedParse: 1,
      RecordsFailedValidation: 1,
      RecordsFailedHandler: 2,
      RecordsSentToPoisonSink: 4,
      RecordsNotHandled: 1,
      // The newest record arrived 3 s before the answer; Lambda retries from the one of 4 s.
      IteratorAge: 3_000,
      CheckpointIteratorAge: 4_000,
      StreamName: 'lambda-stream',
      FunctionName: 'orders-consumer',
      service: 'orders',
    })
    expect(line.BatchDuration).toBeGreaterThanOrEqual(0)
    const [directive] = line._aws.CloudWatchMetrics
    expect(directive?.Namespace).toBe('Shardwise')
    expect(directive?.Dimensions).toEqual([['service', 'StreamName', 'FunctionName']])
    // Counts of zero are left out.
    const absent = [
      'RecordsFailedPoisonSink',
      'RecordsFailedOther',
      'KplAggregates',
      'BytesDecompressed',
    ]
    expect(directive?.Metrics.map((metric) => metric.Name).sort()).toEqual(
      Object.values(MetricName)
        .filter((name) => !absent.includes(name))
        .sort(),
    )
    for (const name of absent) expect(line).not.toHaveProperty(name)
    expect(line._aws.Timestamp).toBe(NOW)
  })

  it('publishes the received count, durations and ages, and no count of zero, when the whole batch succeeded', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise' })
    const event = kinesisEvent([
      { data: order('a'), approximateArrivalTimestamp: arrivedAgo(2_000) },
      { data: order('b'), approximateArrivalTimestamp: arrivedAgo(1_500) },
    ])
    await chain(metrics)(event, lambdaContext())
    const [line] = stdout.emf()
    expect(emfProblems(line)).toEqual([])
    expect(line).toMatchObject({ RecordsReceived: 2, RecordsSucceeded: 2, IteratorAge: 1_500 })
    expect(line).not.toHaveProperty('CheckpointIteratorAge')
    expect(line?._aws.CloudWatchMetrics[0]?.Metrics.map((metric) => metric.Name)).toEqual([
      'RecordsReceived',
      'RecordsSucceeded',
      'BatchDuration',
      'IteratorAge',
    ])
  })

  it('counts KPL aggregates and the bytes decompression produced', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise' })
    const compressed = order('zipped')
    const aggregate = kplAggregate([
      { partitionKey: 'k1', data: Buffer.from(order('x')) },
      { partitionKey: 'k2', data: gzipSync(compressed) },
      { partitionKey: 'k1', data: Buffer.from(order('y')) },
    ])
    const event = kinesisEvent([
      { data: aggregate },
      { data: gzipSync(order('plain-gzip')) },
      { data: kplAggregate([{ partitionKey: 'k3', data: Buffer.from(order('z')) }]) },
    ])
    await chain(metrics)(event, lambdaContext())
    const [line] = stdout.emf()
    expect(emfProblems(line)).toEqual([])
    expect(line).toMatchObject({
      RecordsReceived: 5,
      RecordsSucceeded: 5,
      KplAggregates: 2,
      BytesDecompressed: Buffer.byteLength(compressed) + Buffer.byteLength(order('plain-gzip')),
    })
  })

  it('adds the shard id as a dimension only when asked, and leaves out what is turned off', async () => {
    const event = () => kinesisEvent([{ data: order('a') }], 'shardId-000000000042')
    await chain(new Metrics({ namespace: 'Shardwise' }), {
      dimensions: { shardId: true },
    })(event(), lambdaContext(60_000, 'fn'))
    await chain(new Metrics({ namespace: 'Shardwise' }), {
      dimensions: { streamName: false, functionName: false },
    })(event(), lambdaContext(60_000, 'fn'))
    const [asked, off] = stdout.emf()
    expect(asked?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([
      ['service', 'StreamName', 'FunctionName', 'ShardId'],
    ])
    expect(asked?.ShardId).toBe('shardId-000000000042')
    expect(off?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service']])
    expect(off).not.toHaveProperty('StreamName')
    expect(emfProblems(asked)).toEqual([])
    expect(emfProblems(off)).toEqual([])
  })

  it('publishes what the batch got to when the invocation throws, with the whole batch to retry', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise' })
    const handler = middy(async (_event: KinesisStreamEvent) => {
      throw new Error('the handler of the whole batch failed')
    })
      .use(batchMetrics({ metrics }))
      .use(kinesisDecode())
    const event = kinesisEvent([
      { data: order('a'), approximateArrivalTimestamp: arrivedAgo(7_000) },
      { data: order('b'), approximateArrivalTimestamp: arrivedAgo(1_000) },
    ])
    await expect(handler(event, lambdaContext())).rejects.toThrow('the handler of the whole batch')
    const [line] = stdout.emf()
    expect(emfProblems(line)).toEqual([])
    expect(line).toMatchObject({
      RecordsReceived: 2,
      RecordsNotHandled: 2,
      IteratorAge: 1_000,
      CheckpointIteratorAge: 7_000,
    })
  })

  it('never changes the answer: a Metrics that throws, or a batch answer whose getters throw, loses the line, said on stderr', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const down = {
        addMetric() {},
        addDimension() {},
        publishStoredMetrics() {
          throw new Error('metrics transport down')
        },
      }
      const event = () => kinesisEvent([{ data: order('a') }, { data: order('b', 'retryable') }])
      expect(await chain(down as never)(event(), lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      })
      expect(String(consoleError.mock.calls[0]?.[0])).toMatch(
        /batchMetrics could not publish this invocation's metrics; the answer to Lambda is unchanged: metrics transport down/,
      )
      // Over Powertools' own limit of dimensions, its addDimension throws.
      const metrics = new Metrics({ namespace: 'Shardwise' })
      expect(() => {
        for (let i = 0; i < 40; i++) metrics.addDimension(`D${i}`, 'x')
      }).toThrow(RangeError)
      const hostile = Object.defineProperty({}, 'batchItemFailures', {
        get() {
          throw new Error('no')
        },
      })
      const ownAnswer = middy(async () => hostile)
        .use(batchMetrics({ metrics }))
        .use(kinesisDecode())
      expect(await ownAnswer(event(), lambdaContext())).toBe(hostile)
      expect(consoleError).toHaveBeenCalledTimes(2)
    } finally {
      consoleError.mockRestore()
    }
  })

  it('refuses a chain without kinesisDecode, and options that are not right, naming the fix', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise' })
    const handler = middy(async () => ({ batchItemFailures: [] })).use(batchMetrics({ metrics }))
    await expect(handler(kinesisEvent([{ data: 'x' }]), lambdaContext())).rejects.toThrow(
      '@shardwise/observe: batchMetrics found no decoded records; add .use(kinesisDecode())',
    )
    expect(() => batchMetrics(undefined as never)).toThrow("Missing required option 'metrics'")
    expect(() => batchMetrics({ metrics: console as never })).toThrow(
      "Option 'metrics' needs addMetric, addDimension and publishStoredMetrics methods",
    )
    expect(() => batchMetrics({ metrics, dimensions: { shard: true } as never })).toThrow(
      "Unknown option 'dimensions.shard'",
    )
  })
})
