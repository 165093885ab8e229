import { Console } from 'node:console'
import { Writable } from 'node:stream'
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
import { captureStdout, type EmfLine, emfProblems, kplAggregate } from './emf.fixture.js'

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
  it("counts a record by the stage the logs name: a schema that throws is the validation's", async () => {
    // A schema that throws fails its record with a plain RecordError, which partialFailures logs
    // with stage 'validation'; the metrics counted it as RecordsFailedOther.
    const throwing = {
      '~standard': {
        version: 1 as const,
        vendor: 'broken',
        validate: () => {
          throw new Error('schema broke')
        },
      },
    }
    const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
    const lambda = middy(eachRecord(async () => {}))
      .use(batchMetrics({ metrics }))
      .use(kinesisDecode())
      .use(jsonParse({ schema: throwing }))
      .use(partialFailures({ logger: false }))
    const answer = await lambda(kinesisEvent([{ data: order('a') }]), lambdaContext(60_000))
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }] })
    const [line] = stdout.emf()
    expect(line).toMatchObject({ RecordsFailed: 1, RecordsFailedValidation: 1 })
    expect(line).not.toHaveProperty('RecordsFailedOther')
  })

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

  it('gives the batch duration to the microsecond', async () => {
    const handler = middy(async () => ({ batchItemFailures: [] }))
      .use(batchMetrics({ metrics: new Metrics({ namespace: 'Shardwise' }) }))
      .use(kinesisDecode())
    const now = vi
      .spyOn(performance, 'now')
      .mockReturnValueOnce(1_000)
      .mockReturnValueOnce(1_001.234_567_8)
    try {
      await handler(kinesisEvent([{ data: order('a') }]), lambdaContext())
    } finally {
      now.mockRestore()
    }
    expect(stdout.lines).toHaveLength(1)
    expect(stdout.lines[0]).toContain(',"BatchDuration":1.235,')
  })

  it('reads the default dimensions of a Metrics told to throw on empty metrics, and leaves it so', () => {
    const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
    metrics.setThrowOnEmptyMetrics(true)
    expect(() => batchMetrics({ metrics })).not.toThrow()
    expect(() => metrics.serializeMetrics()).toThrow(
      'The number of metrics recorded must be higher',
    )
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

  it('never changes the answer: a console that throws, or metrics of the handler Powertools cannot publish, lose their line, said on stderr', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const down = new Metrics({ namespace: 'Shardwise' })
      ;(down as unknown as { console: unknown }).console = {
        log() {
          throw new Error('metrics transport down')
        },
      }
      const event = () => kinesisEvent([{ data: order('a') }, { data: order('b', 'retryable') }])
      expect(await chain(down)(event(), lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      })
      expect(String(consoleError.mock.calls[0]?.[0])).toMatch(
        /batchMetrics could not publish this invocation's metrics; the answer to Lambda is unchanged: metrics transport down/,
      )
      // A metric named as a dimension: Powertools refuses to print the handler's line.
      const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
      const hostile = Object.defineProperty({}, 'batchItemFailures', {
        get() {
          throw new Error('no')
        },
      })
      const ownAnswer = middy(async () => {
        metrics.addMetric('service', 'Count', 1)
        return hostile
      })
        .use(batchMetrics({ metrics }))
        .use(kinesisDecode())
      expect(await ownAnswer(event(), lambdaContext())).toBe(hostile)
      expect(consoleError).toHaveBeenCalledTimes(2)
      expect(String(consoleError.mock.calls[1]?.[0])).toMatch(/EMF key collision on "service"/)
      // The batch's own line went out before.
      expect(stdout.emf()).toHaveLength(1)
      expect(metrics.hasStoredMetrics()).toBe(false)
    } finally {
      consoleError.mockRestore()
    }
  })

  it('publishes what the handler added to the same Metrics in a line of its own, with its own dimensions', async () => {
    const metrics = new Metrics({ namespace: 'Shardwise', serviceName: 'orders' })
    const handler = middy(
      eachRecord<Order>((record) => {
        if (record.data.orderId === 'a') metrics.addDimension('tenant', 'acme')
        metrics.addMetric('OrdersSaved', 'Count', 1)
        metrics.addMetadata('orderId', record.data.orderId)
      }),
    )
      .use(batchMetrics({ metrics }))
      .use(kinesisDecode())
      .use(jsonParse())
      .use(partialFailures({ logger: false }))
    await handler(kinesisEvent([{ data: order('a') }, { data: order('b') }]), lambdaContext())
    const [ours, theirs, ...more] = stdout.emf()
    expect(more).toEqual([])
    expect(ours).toMatchObject({ RecordsReceived: 2, RecordsSucceeded: 2 })
    expect(ours).not.toHaveProperty('OrdersSaved')
    expect(ours).not.toHaveProperty('tenant')
    expect(theirs).toMatchObject({ OrdersSaved: [1, 1], tenant: 'acme', orderId: 'b' })
    expect(theirs?._aws.CloudWatchMetrics[0]?.Dimensions).toEqual([['service', 'tenant']])
    expect(theirs).not.toHaveProperty('StreamName')
    for (const line of [ours, theirs]) expect(emfProblems(line)).toEqual([])
  })

  it("writes to the Metrics' console's stream what its log would: the line, a newline, and no throw on a failed write", async () => {
    const chunks: string[] = []
    let fail = false
    const stream = new Writable({
      decodeStrings: false,
      write(chunk: string, _encoding, done) {
        chunks.push(chunk)
        // A pipe's failed write is told to the callback, after the call returned.
        const error = fail ? new Error('EPIPE') : null
        setImmediate(() => done(error))
      },
    })
    const metrics = new Metrics({ namespace: 'Shardwise' })
    ;(metrics as unknown as { console: Console }).console = new Console({ stdout: stream })
    const lambda = chain(metrics)
    await lambda(kinesisEvent([{ data: order('a') }]), lambdaContext())
    expect(chunks).toHaveLength(1)
    const [ours] = chunks as [string]
    const logged: string[] = []
    const reference = new Writable({
      decodeStrings: false,
      write(chunk: string, _encoding, done) {
        logged.push(chunk)
        done()
      },
    })
    new Console({ stdout: reference }).log(ours.slice(0, -1))
    expect(logged).toEqual([ours])
    expect(ours.endsWith('}\n')).toBe(true)
    // As Console.log: the stream's error has a listener by the time it is emitted, so the
    // process does not crash on it, and the answer stands.
    fail = true
    const answer = await lambda(kinesisEvent([{ data: order('b') }]), lambdaContext())
    expect(answer).toEqual({ batchItemFailures: [] })
    await vi.waitFor(() => expect(stream.destroyed).toBe(true))
    expect(chunks).toHaveLength(2)
  })

  it('prints nothing when the Metrics is disabled, as Powertools would', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true')
    try {
      const metrics = new Metrics({ namespace: 'Shardwise' })
      const answer = await chain(metrics)(kinesisEvent([{ data: order('a') }]), lambdaContext())
      expect(answer).toEqual({ batchItemFailures: [] })
      expect(stdout.lines).toEqual([])
    } finally {
      vi.unstubAllEnvs()
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
      "Option 'metrics' must be a Powertools Metrics (@aws-lambda-powertools/metrics 2)",
    )
    const publisher = { addMetric() {}, addDimension() {}, publishStoredMetrics() {} }
    expect(() => batchMetrics({ metrics: publisher as never })).toThrow(
      "Option 'metrics' must be a Powertools Metrics",
    )
    const crowded = new Metrics({
      namespace: 'Shardwise',
      defaultDimensions: Object.fromEntries(Array.from({ length: 28 }, (_, i) => [`D${i}`, 'x'])),
    })
    // service and 28 defaults, with StreamName and FunctionName: 31, over EMF's 30.
    expect(() => batchMetrics({ metrics: crowded })).toThrow(
      "the Metrics' 29 default dimensions and batchMetrics' 2 (StreamName, FunctionName) are more than the 30 a metric may have",
    )
    expect(() =>
      batchMetrics({ metrics: crowded, dimensions: { functionName: false } }),
    ).not.toThrow()
    const clashing = new Metrics({
      namespace: 'Shardwise',
      defaultDimensions: { RecordsFailed: 'x' },
    })
    expect(() => batchMetrics({ metrics: clashing })).toThrow(
      'the Metrics has a default dimension named RecordsFailed, as a metric of batchMetrics',
    )
    expect(() => batchMetrics({ metrics, dimensions: { shard: true } as never })).toThrow(
      "Unknown option 'dimensions.shard'",
    )
  })
})

/**
 * What a Powertools `Metrics` of the same configuration prints for the same dimensions and
 * metrics (their values read from `line`), added as the line orders them.
 */
function printedByPowertools(metrics: Metrics, line: EmfLine) {
  const before = stdout.lines.length
  const [directive] = line._aws.CloudWatchMetrics
  for (const name of directive?.Dimensions[0] ?? []) {
    if (['StreamName', 'FunctionName', 'ShardId'].includes(name)) {
      metrics.addDimension(name, line[name] as string)
    }
  }
  for (const { Name, Unit } of directive?.Metrics ?? []) {
    metrics.addMetric(Name, Unit as never, line[Name] as number)
  }
  metrics.publishStoredMetrics()
  expect(stdout.lines.length).toBe(before + 1)
  return stdout.lines[before]
}

describe('batchMetrics, against Powertools', () => {
  const failing = () =>
    kinesisEvent(
      [
        { data: order('a'), approximateArrivalTimestamp: arrivedAgo(9_000) },
        { data: '{"orderId":', approximateArrivalTimestamp: arrivedAgo(8_000) },
        { data: order('b', 'poison'), approximateArrivalTimestamp: arrivedAgo(7_000) },
        { data: order('c', 'retryable'), approximateArrivalTimestamp: arrivedAgo(6_000) },
        { data: order('d') },
      ],
      'shardId-000000000042',
    )
  const cases: Array<{
    name: string
    options: ConstructorParameters<typeof Metrics>[0]
    dimensions?: Parameters<typeof batchMetrics>[0]['dimensions']
    env?: Record<string, string>
    /** Done to the Metrics before batchMetrics is built, and to Powertools' alike. */
    prepare?: (metrics: Metrics) => void
  }> = [
    {
      name: 'a namespace, a service, default dimensions and the shard id',
      options: {
        namespace: 'Shardwise',
        serviceName: 'orders',
        defaultDimensions: { env: 'prod' },
      },
      dimensions: { shardId: true },
    },
    { name: 'no namespace and no service (Powertools defaults)', options: {} },
    {
      name: 'namespace and service from the environment, without the default dimensions',
      options: {},
      dimensions: { streamName: false, functionName: false },
      env: { POWERTOOLS_METRICS_NAMESPACE: 'FromEnv', POWERTOOLS_SERVICE_NAME: 'env-service' },
    },
    // singleMetric(), which gives the namespace and default dimensions, puts `service` back.
    {
      name: 'default dimensions cleared (no service)',
      options: { namespace: 'Shardwise', serviceName: 'orders' },
      prepare: (metrics) => metrics.clearDefaultDimensions(),
    },
    {
      name: 'default dimensions cleared, and no dimension of ours (no dimension set)',
      options: { namespace: 'Shardwise', serviceName: 'orders' },
      dimensions: { streamName: false, functionName: false },
      prepare: (metrics) => metrics.clearDefaultDimensions(),
    },
    {
      name: 'default dimensions cleared, then others set, service after env',
      options: { namespace: 'Shardwise', serviceName: 'orders' },
      prepare: (metrics) => {
        metrics.clearDefaultDimensions()
        metrics.setDefaultDimensions({ env: 'prod', service: 'billing' })
      },
    },
  ]
  for (const { name, options, dimensions, env = {}, prepare } of cases) {
    it(`prints, byte for byte, the line Powertools prints for the same metrics: ${name}`, async () => {
      // Powertools warns, on its own stderr console, of a namespace left to its default.
      const warn = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
      for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value)
      try {
        const configured = () => {
          const metrics = new Metrics(options)
          prepare?.(metrics)
          return metrics
        }
        const ours = chain(configured(), { dimensions })
        for (const event of [failing(), kinesisEvent([{ data: order('e') }])]) {
          const before = stdout.lines.length
          await ours(event, lambdaContext(60_000, 'orders-consumer'))
          const printed = stdout.lines.slice(before)
          expect(printed).toHaveLength(1)
          const line = JSON.parse(printed[0] as string) as EmfLine
          expect(emfProblems(line)).toEqual([])
          expect(printed[0]).toBe(printedByPowertools(configured(), line))
        }
      } finally {
        vi.unstubAllEnvs()
        warn.mockRestore()
      }
    })
  }
})
