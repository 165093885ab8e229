import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { handler, logger, store } from './observed.js'

const producerTrace = '0af7651916cd43dd8448eb211c80319c'
const producerSpan = 'b7ad6b7169203331'

const exporter = new InMemorySpanExporter()
const printed: string[] = []
beforeAll(() => {
  // This package's tests run with POWERTOOLS_LOG_LEVEL=SILENT; these look at the lines.
  logger.setLogLevel('INFO')
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  )
  // Powertools' Metrics and Logger print JSON lines on stdout (warnings and errors on stderr).
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: unknown) => {
      printed.push(...String(chunk).split('\n').filter(Boolean))
      return true
    })
  }
})
afterAll(() => {
  vi.restoreAllMocks()
  trace.disable()
  context.disable()
})

const order = (orderId: string, extra: object = {}) =>
  JSON.stringify({ orderId, amount: 12.5, ...extra })

describe('the observed orders handler', () => {
  it('prints its metrics, names each record in its log lines and traces each record', async () => {
    const save = vi.spyOn(store, 'save').mockImplementation(async (order) => {
      if (order.orderId === 'o-3') throw new Error('the orders table is throttling')
      store.saved.push(order.orderId)
    })
    const event = kinesisEvent([
      {
        data: order('o-1', { traceparent: `00-${producerTrace}-${producerSpan}-01` }),
        partitionKey: 'c-1',
      },
      { data: order('o-2'), partitionKey: 'c-2' },
      { data: order('o-3'), partitionKey: 'c-1' },
      { data: order('o-4'), partitionKey: 'c-2' },
      { data: '{"orderId": 7}', partitionKey: 'c-3' },
    ])
    const invocation = trace.getTracer('lambda').startSpan('orders-consumer')
    const answer = await context.with(trace.setSpan(context.active(), invocation), () =>
      handler(event, lambdaContext(60_000, 'orders-consumer')),
    )
    invocation.end()
    save.mockRestore()
    // o-3 failed to save: Lambda resumes there.
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }] })

    const lines = printed.map((line) => JSON.parse(line) as Record<string, unknown>)
    const [emf, ...more] = lines.filter((line) => '_aws' in line)
    expect(more).toEqual([])
    expect(emf).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'Shardwise',
            Dimensions: [['service', 'StreamName', 'FunctionName']],
          },
        ],
      },
      service: 'orders',
      StreamName: 'lambda-stream',
      FunctionName: 'orders-consumer',
      RecordsReceived: 5,
      RecordsFailed: 2,
      RecordsFailedValidation: 1,
      RecordsFailedHandler: 1,
    })
    expect(emf).not.toHaveProperty('RecordsSentToPoisonSink')
    // As CloudWatch's Embedded Metric Format specification reads it: an integer timestamp, each
    // dimension a string member, each metric a number member with a CloudWatch unit.
    const aws = emf?._aws as {
      Timestamp: unknown
      CloudWatchMetrics: Array<{
        Dimensions: string[][]
        Metrics: Array<{ Name: string; Unit: string }>
      }>
    }
    expect(Number.isInteger(aws.Timestamp)).toBe(true)
    for (const name of aws.CloudWatchMetrics[0]?.Dimensions.flat() ?? []) {
      expect(typeof emf?.[name]).toBe('string')
    }
    const metrics = aws.CloudWatchMetrics[0]?.Metrics ?? []
    expect(metrics.map((metric) => metric.Name)).toContain('IteratorAge')
    for (const { Name, Unit } of metrics) {
      expect(Number.isFinite(emf?.[Name])).toBe(true)
      expect(['Count', 'Bytes', 'Milliseconds']).toContain(Unit)
    }
    // o-1 and o-2 ran; o-4 (key c-2) may have started before o-3 (key c-1) failed.
    expect((emf?.RecordsSucceeded as number) + ((emf?.RecordsNotHandled as number) ?? 0)).toBe(3)
    expect(emf?.RecordsSucceeded).toBeGreaterThanOrEqual(2)

    const saving = lines.filter((line) => line.message === 'saving the order')
    expect(saving.length).toBeGreaterThanOrEqual(3)
    for (const line of saving) {
      const position = Number(String(line.sequenceNumber).slice(-7))
      expect(line).toMatchObject({
        shardId: 'shardId-000000000006',
        sequenceNumber: sequenceNumber(position),
        partitionKey: event.Records[position]?.kinesis.partitionKey,
        orderId: `o-${position + 1}`,
      })
      // Not a KPL sub-record: the key is left out, not written as null.
      expect(line).not.toHaveProperty('subSequenceNumber')
    }
    const summary = lines.find((line) => line.message === 'batch done with failures')
    expect(summary).toBeDefined()
    expect(summary).not.toHaveProperty('sequenceNumber')

    const spans = exporter.getFinishedSpans()
    const records = spans.filter((span) => span.name === 'process lambda-stream')
    const idOf = (span: (typeof spans)[number]) => span.attributes['messaging.message.id']
    expect(records.map(idOf)).toContain(sequenceNumber(0))
    for (const span of records) {
      expect(span.parentSpanContext?.spanId).toBe(invocation.spanContext().spanId)
    }
    const first = records.find((span) => idOf(span) === sequenceNumber(0))
    expect(first?.links.map((link) => link.context.traceId)).toEqual([producerTrace])
    const invalid = records.find((span) => idOf(span) === sequenceNumber(4))
    expect(invalid?.attributes['error.type']).toBe('ValidationError')
    const throttled = records.find((span) => idOf(span) === sequenceNumber(2))
    expect(throttled?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'the orders table is throttling',
    })
    for (const save of spans.filter((span) => span.name === 'save order')) {
      expect(records.map((span) => span.spanContext().spanId)).toContain(
        save.parentSpanContext?.spanId,
      )
    }
  })
})
