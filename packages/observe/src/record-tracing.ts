/**
 * `recordTracing(options?)`: one OpenTelemetry span per record, through `@opentelemetry/api`
 * alone, so nothing is recorded unless the function registers an SDK (the Lambda layer, or
 * `NodeTracerProvider`). Each span is a child of the span active when the middleware runs (the
 * invocation's), is active while the record handler runs (so spans the handler makes are its
 * children), carries OpenTelemetry's messaging attributes, and links to the producer's trace
 * when the record carries a W3C `traceparent`.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  context,
  type Link,
  type Context as OtelContext,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import {
  checkOptions,
  getBatch,
  type KinesisRecord,
  type KinesisStreamEvent,
  messageOf,
  type OptionRules,
  observeRecords,
  option,
  propertyOf,
  type RecordObserver,
  RecordStatus,
  unobserveRecords,
} from '@shardwise/core'
import { pkg } from './package.js'
import { streamNameOf } from './stream-name.js'

/** The version of OpenTelemetry's semantic conventions the spans follow. */
export const SEMCONV_VERSION = '1.45.0'

export interface RecordTracingOptions {
  /**
   * The producer's W3C `traceparent` for a record, to link its span to the producer's trace;
   * `undefined` when it has none. Default: the `traceparent` string member of `record.data`
   * when it is an object (a parser ran). A value that is not a valid `traceparent` is ignored.
   */
  traceparentOf?: (record: KinesisRecord<unknown>) => unknown
}

const optionRules: OptionRules = { traceparentOf: option.function }

/** Attribute names, from the conventions' registry; the `aws.kinesis.*` ones are Shardwise's. */
const ATTR = {
  system: 'messaging.system',
  systemName: 'messaging.system.name',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destination: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  messageId: 'messaging.message.id',
  batchCount: 'messaging.batch.message_count',
  streamName: 'aws.kinesis.stream_name',
  partitionKey: 'aws.kinesis.partition_key',
  subSequenceNumber: 'aws.kinesis.sub_sequence_number',
  errorType: 'error.type',
} as const

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(jsonParse())
 *   .use(
 *     recordTracing({
 *       traceparentOf: (record) => (record.data as { meta?: { traceparent?: string } }).meta?.traceparent,
 *     }),
 *   )
 *   .use(partialFailures())
 */
export function recordTracing(
  options?: RecordTracingOptions,
): MiddlewareObj<KinesisStreamEvent, unknown> {
  const { traceparentOf = dataTraceparent } = checkOptions(pkg, optionRules, options)
  const tracer = trace.getTracer(pkg)
  const invocations = new WeakMap<object, RecordSpans>()
  // An event given to two invocations (a test, a local runner) must not keep the first's spans.
  const endInvocation = (request: { event: KinesisStreamEvent }) => {
    const spans = invocations.get(request)
    if (spans === undefined) return
    invocations.delete(request)
    unobserveRecords(request.event, spans)
    spans.endBatch()
  }

  return {
    before(request) {
      // Without an SDK every span is a no-op: the records run as without this middleware.
      if (noTracerProvider()) return
      const spans = new RecordSpans(tracer, context.active(), request.event, traceparentOf)
      invocations.set(request, spans)
      observeRecords(request.event, spans)
    },
    after(request) {
      endInvocation(request)
    },
    onError(request) {
      endInvocation(request)
    },
  }
}

/**
 * The provider the API hands out when no SDK registered one: a proxy without a delegate answers
 * it. A fresh proxy has none, so it gives the API's own no-op provider to compare with.
 */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate()

/**
 * Whether no SDK is registered, so that no span can be recorded. Read at each invocation (an SDK
 * may be registered after the middleware is built); a provider of another copy of the API is
 * taken as an SDK.
 */
function noTracerProvider(): boolean {
  const provider = trace.getTracerProvider()
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NOOP_PROVIDER
}

/** One invocation's spans: the record observer that the record loop calls. */
class RecordSpans implements RecordObserver {
  private readonly open = new Map<KinesisRecord<unknown>, Span>()
  private readonly stream: string | undefined
  private readonly traced = new WeakSet<KinesisRecord<unknown>>()

  constructor(
    private readonly tracer: Tracer,
    private readonly parent: OtelContext,
    private readonly event: KinesisStreamEvent,
    private readonly traceparentOf: (record: KinesisRecord<unknown>) => unknown,
  ) {
    this.stream = streamNameOf(event?.Records?.[0]?.eventSourceARN)
    const invocation = trace.getSpan(parent)
    if (invocation?.isRecording()) {
      invocation.setAttributes({
        [ATTR.system]: 'aws.kinesis',
        [ATTR.systemName]: 'aws.kinesis',
        [ATTR.batchCount]: Array.isArray(event?.Records) ? event.Records.length : 0,
        ...(this.stream === undefined ? {} : { [ATTR.destination]: this.stream }),
      })
    }
  }

  around(record: KinesisRecord<unknown>, run: () => unknown): unknown {
    const span = this.startSpan(record)
    this.open.set(record, span)
    return context.with(trace.setSpan(this.parent, span), run)
  }

  end(record: KinesisRecord<unknown>, failed: boolean, error: unknown): void {
    const span = this.open.get(record)
    if (span === undefined) return
    this.open.delete(record)
    if (failed) failSpan(span, error)
    span.end()
  }

  /**
   * Records that a step failed before the loop (decoding, parsing, validation) never ran: each
   * gets a span with its error, so that a trace shows every failure, not only the handler's.
   */
  endBatch(): void {
    const batch = getBatch(this.event)
    if (batch === undefined) return
    for (const [index, error] of batch.errors) {
      const record = batch.records[index] as KinesisRecord<unknown>
      if (this.traced.has(record)) continue
      const status = batch.status[index]
      if (status !== RecordStatus.Failed && status !== RecordStatus.Diverted) continue
      const span = this.startSpan(record)
      failSpan(span, error)
      span.end()
    }
  }

  private startSpan(record: KinesisRecord<unknown>): Span {
    this.traced.add(record)
    const attributes: Record<string, string | number> = {
      [ATTR.system]: 'aws.kinesis',
      [ATTR.systemName]: 'aws.kinesis',
      [ATTR.operationType]: 'process',
      [ATTR.operationName]: 'process',
      [ATTR.messageId]: record.sequenceNumber,
      [ATTR.partition]: record.shardId,
      [ATTR.partitionKey]: record.partitionKey,
    }
    if (this.stream !== undefined) {
      attributes[ATTR.destination] = this.stream
      attributes[ATTR.streamName] = this.stream
    }
    if (record.subSequenceNumber !== undefined) {
      attributes[ATTR.subSequenceNumber] = record.subSequenceNumber
    }
    const producer = producerLink(this.traceparentOf, record)
    return this.tracer.startSpan(
      this.stream === undefined ? 'process' : `process ${this.stream}`,
      {
        kind: SpanKind.CONSUMER,
        attributes,
        links: producer === undefined ? [] : [producer],
      },
      this.parent,
    )
  }
}

/**
 * The thrown value is the user's, and any read of it may throw (a revoked Proxy, getters that
 * throw): the exception is recorded from what could be read, never from the value itself.
 */
function failSpan(span: Span, error: unknown): void {
  const name = errorName(error)
  const message = messageOf(error)
  const stack = propertyOf(error, 'stack')
  span.setAttribute(ATTR.errorType, name)
  span.setStatus({ code: SpanStatusCode.ERROR, message })
  span.recordException(typeof stack === 'string' ? { name, message, stack } : { name, message })
}

function errorName(error: unknown): string {
  const name = propertyOf(error, 'name')
  return typeof name === 'string' && name !== '' ? name : typeof error
}

function dataTraceparent(record: KinesisRecord<unknown>): unknown {
  const data = record.data
  if (typeof data !== 'object' || data === null || data instanceof Uint8Array) return undefined
  return (data as { traceparent?: unknown }).traceparent
}

/** `version-traceid-parentid-flags`, W3C Trace Context level 1; version ff is invalid. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/

function producerLink(
  traceparentOf: (record: KinesisRecord<unknown>) => unknown,
  record: KinesisRecord<unknown>,
): Link | undefined {
  let header: unknown
  try {
    header = traceparentOf(record)
  } catch {
    // A link is a convenience: a function that cannot read this record fails nothing.
    return undefined
  }
  if (typeof header !== 'string') return undefined
  const match = TRACEPARENT.exec(header.trim())
  if (match === null) return undefined
  const [, version, traceId, spanId, flags] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
  ]
  if (version === 'ff' || (version === '00' && header.trim().length !== 55)) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return {
    context: { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & 1, isRemote: true },
  }
}
