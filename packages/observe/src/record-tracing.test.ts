import middy from '@middy/core'
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  type Ordering,
  partialFailures,
  type RecordHandler,
} from '@shardwise/partial-failures'
import { hostileThrownValues } from '@shardwise/test-internals'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { kplAggregate } from './emf.fixture.js'
import { type RecordTracingOptions, recordTracing } from './record-tracing.js'

const PRODUCER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PRODUCER_SPAN = '00f067aa0ba902b7'
const traceparent = `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`

let exporter: InMemorySpanExporter
let provider: BasicTracerProvider

function registerSdk() {
  exporter = new InMemorySpanExporter()
  provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(provider)
}

afterEach(() => {
  trace.disable()
  context.disable()
})

function chain(
  handler: RecordHandler<unknown>,
  ordering: Ordering = 'shard',
  options?: RecordTracingOptions,
) {
  return middy(eachRecord(handler, { ordering, concurrency: 4 }))
    .use(kinesisDecode())
    .use(jsonParse())
    .use(recordTracing(options))
    .use(partialFailures({ logger: false }))
}

/** Runs `work` inside an invocation span, as the Lambda instrumentation does; returns the span. */
async function inInvocation(work: () => Promise<unknown>): Promise<ReadableSpan> {
  const tracer = trace.getTracer('lambda')
  let invocation: Span | undefined
  await tracer.startActiveSpan('invocation', async (span) => {
    invocation = span
    await work()
    span.end()
  })
  const id = invocation?.spanContext().spanId
  return exporter
    .getFinishedSpans()
    .find((span) => span.spanContext().spanId === id) as ReadableSpan
}

const recordSpans = () =>
  exporter.getFinishedSpans().filter((span) => span.name.startsWith('process'))
const bySequence = (spans: ReadableSpan[]) =>
  [...spans].sort((a, b) =>
    String(a.attributes['messaging.message.id']).localeCompare(
      String(b.attributes['messaging.message.id']),
    ),
  )

describe('recordTracing', () => {
  describe('with an SDK registered', () => {
    beforeEach(registerSdk)

    it('makes one span per record, a child of the invocation span, with the messaging attributes', async () => {
      const event = kinesisEvent([
        { data: JSON.stringify({ n: 1 }), partitionKey: 'k1' },
        { data: JSON.stringify({ n: 2 }), partitionKey: 'k2' },
      ])
      const invocation = await inInvocation(() => chain(() => {})(event, lambdaContext()))
      const spans = bySequence(recordSpans())
      expect(spans).toHaveLength(2)
      for (const [i, span] of spans.entries()) {
        expect(span.name).toBe('process lambda-stream')
        expect(span.kind).toBe(4) // SpanKind.CONSUMER
        expect(span.parentSpanContext?.spanId).toBe(invocation.spanContext().spanId)
        expect(span.spanContext().traceId).toBe(invocation.spanContext().traceId)
        expect(span.status.code).toBe(SpanStatusCode.UNSET)
        expect(span.attributes).toEqual({
          'messaging.system': 'aws.kinesis',
          'messaging.system.name': 'aws.kinesis',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': 'lambda-stream',
          'messaging.destination.partition.id': 'shardId-000000000006',
          'messaging.message.id': sequenceNumber(i),
          'aws.kinesis.stream_name': 'lambda-stream',
          'aws.kinesis.partition_key': `k${i + 1}`,
        })
        expect(span.links).toEqual([])
      }
      expect(invocation.attributes).toMatchObject({
        'messaging.system': 'aws.kinesis',
        'messaging.batch.message_count': 2,
        'messaging.destination.name': 'lambda-stream',
      })
    })

    it.each<Ordering>(['shard', 'partitionKey', 'none'])(
      "makes the record's span the active one in its handler, records running at once or not (ordering '%s')",
      async (ordering) => {
        const event = kinesisEvent(
          Array.from({ length: 12 }, (_, i) => ({
            data: JSON.stringify({ i }),
            partitionKey: `key-${i % 4}`,
          })),
        )
        const handler: RecordHandler<unknown> = async (record) => {
          const child = trace.getTracer('handler').startSpan(`save ${record.sequenceNumber}`)
          await new Promise((resolve) =>
            setTimeout(resolve, (12 - (record.data as { i: number }).i) % 3),
          )
          child.end()
        }
        await inInvocation(() => chain(handler, ordering)(event, lambdaContext()))
        const records = recordSpans()
        expect(records).toHaveLength(12)
        const spanOf = new Map(
          records.map((span) => [
            span.attributes['messaging.message.id'],
            span.spanContext().spanId,
          ]),
        )
        const saves = exporter.getFinishedSpans().filter((span) => span.name.startsWith('save '))
        expect(saves).toHaveLength(12)
        for (const save of saves) {
          expect(save.parentSpanContext?.spanId).toBe(spanOf.get(save.name.slice('save '.length)))
        }
      },
    )

    it('sets the error status and records the exception of a failed record, and of one a parser failed', async () => {
      const event = kinesisEvent([
        { data: JSON.stringify({ ok: true }) },
        { data: '{"not json' },
        { data: JSON.stringify({ ok: false }) },
      ])
      const handler: RecordHandler<unknown> = (record) => {
        if ((record.data as { ok: boolean }).ok === false) throw new TypeError('cannot save')
      }
      const withSink = middy(eachRecord(handler))
        .use(kinesisDecode())
        .use(jsonParse())
        .use(recordTracing())
        .use(partialFailures({ logger: false, onPoison: async () => {} }))
      await inInvocation(() => withSink(event, lambdaContext()))
      const [ok, notJson, failed] = bySequence(recordSpans())
      expect(ok?.status.code).toBe(SpanStatusCode.UNSET)
      expect(notJson?.status).toMatchObject({ code: SpanStatusCode.ERROR })
      expect(notJson?.status.message).toContain('is not valid JSON')
      expect(notJson?.attributes['error.type']).toBe('ParseError')
      expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'cannot save' })
      expect(failed?.attributes['error.type']).toBe('TypeError')
      expect(failed?.events).toHaveLength(1)
      expect(failed?.events[0]?.name).toBe('exception')
      expect(failed?.events[0]?.attributes).toMatchObject({
        'exception.type': 'TypeError',
        'exception.message': 'cannot save',
      })
    })

    it.each(hostileThrownValues)(
      'fails the span of a record whose handler throws %s, and the invocation answers',
      async (_name, make) => {
        const event = kinesisEvent([{ data: '1' }, { data: '2' }])
        const handler: RecordHandler<unknown> = (record) => {
          if (record.data === 2) throw make()
        }
        let answer: unknown
        await inInvocation(async () => {
          answer = await chain(handler)(event, lambdaContext())
        })
        expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }] })
        const [ok, failed] = bySequence(recordSpans())
        expect(ok?.status.code).toBe(SpanStatusCode.UNSET)
        expect(failed?.status.code).toBe(SpanStatusCode.ERROR)
        expect(failed?.events[0]?.name).toBe('exception')
      },
    )

    it("links a record's span to the producer's trace, from the traceparent where it is found", async () => {
      const event = kinesisEvent([
        { data: JSON.stringify({ traceparent, n: 1 }) },
        { data: JSON.stringify({ traceparent: 'garbage', n: 2 }) },
        { data: JSON.stringify({ traceparent: `ff-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01` }) },
        { data: JSON.stringify({ meta: { tp: traceparent } }) },
      ])
      await inInvocation(() => chain(() => {})(event, lambdaContext()))
      const links = bySequence(recordSpans()).map((span) => span.links)
      expect(links[0]).toEqual([
        {
          context: {
            traceId: PRODUCER_TRACE,
            spanId: PRODUCER_SPAN,
            traceFlags: 1,
            isRemote: true,
          },
        },
      ])
      expect(links.slice(1)).toEqual([[], [], []])

      exporter.reset()
      const elsewhere = chain(() => {}, 'shard', {
        traceparentOf: (record) => (record.data as { meta?: { tp?: string } }).meta?.tp,
      })
      await inInvocation(() => elsewhere(event, lambdaContext()))
      const found = bySequence(recordSpans()).map((span) => span.links.length)
      expect(found).toEqual([0, 0, 0, 1])
    })

    it('names KPL sub-records by their sub-sequence number', async () => {
      const aggregate = kplAggregate([
        { partitionKey: 'u1', data: Buffer.from('{}') },
        { partitionKey: 'u2', data: Buffer.from('{}') },
      ])
      await inInvocation(() =>
        chain(() => {})(kinesisEvent([{ data: aggregate }]), lambdaContext()),
      )
      expect(
        recordSpans().map((span) => span.attributes['aws.kinesis.sub_sequence_number']),
      ).toEqual([0, 1])
    })
  })

  it('records nothing and changes nothing when no SDK is registered', async () => {
    const seen: unknown[] = []
    const event = kinesisEvent([{ data: JSON.stringify({ traceparent }) }, { data: '{}' }])
    const answer = await chain(() => {
      seen.push(trace.getActiveSpan()?.isRecording() ?? false)
    })(event, lambdaContext())
    expect(answer).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual([false, false])
  })

  it('leaves the records alone when no SDK is registered, and traces them once one is', async () => {
    const read: string[] = []
    const handler = chain(() => {}, 'shard', {
      traceparentOf: (record) => {
        read.push(record.sequenceNumber)
        return undefined
      },
    })
    const event = () => kinesisEvent([{ data: '{}' }, { data: '{}' }])
    await handler(event(), lambdaContext())
    // No span is made, so no traceparent is looked for.
    expect(read).toEqual([])
    registerSdk()
    await handler(event(), lambdaContext())
    expect(read).toEqual([sequenceNumber(0), sequenceNumber(1)])
    expect(exporter.getFinishedSpans()).toHaveLength(2)
  })

  it('refuses a traceparentOf that is not a function', () => {
    expect(() => recordTracing({ traceparentOf: 'traceparent' as never })).toThrow(
      "@shardwise/observe: Option 'traceparentOf' must be a function",
    )
  })
})
