/**
 * Random bytes and random event shapes through the whole chain: kinesisDecode, jsonParse with a
 * zod schema, eachRecord in every ordering, partialFailures with and without onPoison.
 *
 * What must hold for every input:
 * - The invocation throws only a ConfigurationError, and only when the event is not a Kinesis
 *   batch: it is not an object, its Records is not an array, its first record is not
 *   `aws:kinesis` with a `kinesis` object, or some record has no string `kinesis.sequenceNumber`
 *   or an empty one (such a record cannot be reported, so failing the batch is the only safe
 *   answer). Any other event is answered, however broken its records are.
 * - It never hangs: each case ends within a bound.
 * - The DESIGN.md section 2 invariants: the answer names exactly the first record that neither
 *   succeeded nor was diverted (nothing lost, no needless retry), with a sequence number from the
 *   batch; once a record has failed for good nothing after it starts; a record that failed
 *   decoding or parsing never reaches the handler; each record is handled at most once and
 *   reaches the sink at most once, only when its error is not retryable; per-key and shard order;
 *   good records are unaffected by bad ones.
 */
import { hash } from 'node:crypto'
import { createRequire } from 'node:module'
import zlib from 'node:zlib'
import middy from '@middy/core'
import {
  ConfigurationError,
  compareSequenceNumbers,
  getBatch,
  type KinesisRecord,
  type RecordBatch,
  type RecordError,
  RecordStatus,
} from '@shardwise/core'
import { jsonParse } from '@shardwise/json-parse'
import { DEFER_FROM, kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  NonRetryableError,
  type Ordering,
  type PoisonSink,
  partialFailures,
} from '@shardwise/partial-failures'
import { hostileThrownValue } from '@shardwise/test-internals'
import {
  kinesisEvent,
  lambdaContext,
  payloadBytes,
  type RecordSpec,
  sequenceNumber,
  settleOnFakeClock,
} from '@shardwise/testing'
import type { KinesisStreamEvent } from 'aws-lambda'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { z } from 'zod'

// CPU-bound property tests: a minute or two at a load average of 40 on 2 cores, where every
// package's tests run at once beside other work; the number of runs stays as it is.
const BUSY_MACHINE_MS = 600_000

const Order = z.object({ orderId: z.string(), quantity: z.number().int().positive() })
type Order = z.output<typeof Order>

const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => {
    addUserRecord(record: { partitionKey: string; data: Buffer }): void
    build(): { data: Buffer } | undefined
  }
}

const KPL_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2])
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b])
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

/** A payload and, when it is a good order, the order the handler must receive. */
interface Payload {
  data: RecordSpec['data']
  good?: Order
}

const bytes = fc.uint8Array({ maxLength: 48 })
const after = (magic: Buffer) => bytes.map((tail) => Buffer.concat([magic, tail]))
const goodOrder = fc.record({
  orderId: fc.string({ maxLength: 8 }),
  quantity: fc.integer({ min: 1, max: 1_000 }),
})
const jsonish = fc.string({
  unit: fc.constantFrom(...'{}[]":,.-019eEtruefalsn \\u_protocnsy'.split('')),
  maxLength: 40,
})

/**
 * Padding that makes a payload large enough for kinesisDecode to decode it at its turn, and
 * jsonParse to parse and validate it then (the schema drops the key).
 */
const PAD = 'x'.repeat(DEFER_FROM)

/** Payloads that are not aggregates; an aggregate is built from these. */
const plainPayload: fc.Arbitrary<Payload> = fc.oneof(
  { weight: 14, arbitrary: goodOrder.map((o) => ({ data: JSON.stringify(o), good: o })) },
  // Large ones, decoded, parsed and validated at their turn: good, refused by the schema, not JSON.
  {
    weight: 3,
    arbitrary: goodOrder.map((o) => ({ data: JSON.stringify({ ...o, pad: PAD }), good: o })),
  },
  goodOrder.map((o) => ({ data: JSON.stringify({ ...o, quantity: -o.quantity, pad: PAD }) })),
  jsonish.map((text) => ({ data: `{"pad":"${PAD}"}${text}` })),
  {
    weight: 2,
    arbitrary: goodOrder.map((o) => ({ data: zlib.gzipSync(JSON.stringify(o)), good: o })),
  },
  fc.jsonValue().map((v) => ({ data: JSON.stringify(v) ?? 'null' })),
  jsonish.map((text) => ({ data: text })),
  fc
    .constantFrom(
      '{"__proto__":{"orderId":"x","quantity":1}}',
      '{"orderId":"x","quantity":1,"constructor":{"prototype":{}}}',
      '{"orderId":"x","quantity":1,"\\u005f_proto__":{}}',
    )
    .map((data) => ({ data })),
  bytes.map((data) => ({ data })),
  after(KPL_MAGIC).map((data) => ({ data })),
  after(GZIP_MAGIC).map((data) => ({ data })),
  after(ZSTD_MAGIC).map((data) => ({ data })),
  bytes.map((data) => ({ data: zlib.gzipSync(data) })),
  // KPL magic, a random body and its correct MD5: the protobuf reader sees random bytes.
  bytes.map((body) => ({ data: Buffer.concat([KPL_MAGIC, body, hash('md5', body, 'buffer')]) })),
  fc.base64String({ maxLength: 64 }).map((base64) => ({ data: { base64 } })),
  fc
    .string({ unit: fc.constantFrom(...'AQab09+/=*- \n_'.split('')), maxLength: 24 })
    .map((base64) => ({ data: { base64 } })),
)

/** A real aggregate (aws-kinesis-agg) of random user records, or that aggregate gzipped. */
const aggregatePayload: fc.Arbitrary<Payload> = fc
  .record({
    inner: fc.array(plainPayload, { minLength: 1, maxLength: 4 }),
    gzipped: fc.boolean(),
    corruptAt: fc.option(fc.nat(), { freq: 4 }),
  })
  .map(({ inner, gzipped, corruptAt }) => {
    const aggregator = new RecordAggregator()
    inner.forEach((payload, n) => {
      const spec = payload.data
      const data =
        typeof spec === 'object' && 'base64' in spec
          ? Buffer.from(spec.base64)
          : Buffer.from(payloadBytes(spec))
      aggregator.addUserRecord({ partitionKey: `inner-${n % 2}`, data })
    })
    let data = Buffer.from((aggregator.build() as { data: Buffer }).data)
    if (corruptAt !== null) {
      const at = corruptAt % data.length
      data[at] = (data[at] as number) ^ 0x5a
    }
    if (gzipped) data = zlib.gzipSync(data)
    return { data }
  })

const payload = fc.oneof(
  { weight: 9, arbitrary: plainPayload },
  { weight: 1, arbitrary: aggregatePayload },
)

type Behaviour =
  | 'ok'
  | 'slow'
  | 'mutate'
  | 'throw'
  | 'throw-sync'
  | 'non-error'
  | 'hostile'
  | 'mutate-throw'
  | 'poison'
  | 'poison-sync'
const behaviour = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Behaviour>('ok') },
  { weight: 3, arbitrary: fc.constant<Behaviour>('slow') },
  fc.constantFrom<Behaviour>(
    'mutate',
    'throw',
    'throw-sync',
    'non-error',
    'hostile',
    'mutate-throw',
    'poison',
    'poison-sync',
  ),
)

/**
 * Where the schema's answer comes from: at once, or from an asynchronous refinement that takes
 * a few turns of the event loop (then records are validated at their turn in the loop).
 */
type Validation = 'sync' | 'async'

interface Scenario {
  records: Array<{ payload: Payload; partitionKey: string }>
  behaviours: Behaviour[]
  sinkRefuses: boolean[]
  /** 'hostile' refuses as 'flaky' does, rejecting with a value whose getters throw. */
  sink: 'none' | 'reliable' | 'flaky' | 'hostile'
  validation: Validation
  /**
   * 'hanging': every method answers a promise that never settles, which nothing awaits;
   * 'throwing': every method throws a value whose getters throw, or rejects with one.
   */
  logger: 'silent' | 'hanging' | 'throwing'
  ordering: Ordering
  concurrency: number
}

const MAX_RECORDS = 24
const scenario: fc.Arbitrary<Scenario> = fc.record({
  records: fc.array(fc.record({ payload, partitionKey: fc.constantFrom('k0', 'k1', 'k2', 'k3') }), {
    maxLength: MAX_RECORDS,
  }),
  // Indexed by position in the decoded batch, which an aggregate makes longer than Records.
  behaviours: fc.array(behaviour, { minLength: 4 * MAX_RECORDS, maxLength: 4 * MAX_RECORDS }),
  sinkRefuses: fc.array(fc.boolean(), { minLength: 4 * MAX_RECORDS, maxLength: 4 * MAX_RECORDS }),
  sink: fc.constantFrom('none', 'reliable', 'flaky', 'hostile'),
  validation: fc.constantFrom<Validation>('sync', 'async'),
  logger: fc.constantFrom('silent', 'hanging', 'throwing'),
  ordering: fc.constantFrom<Ordering>('shard', 'partitionKey', 'none'),
  concurrency: fc.integer({ min: 1, max: 8 }),
})

/** The schema, answering at once or after a few turns of the event loop. */
const AsyncOrder = Order.refine(async () => {
  for (let t = 0; t < 2; t++) await tick()
  return true
})
const schemaOf = (validation: Validation) => (validation === 'sync' ? Order : AsyncOrder)

const hanging = {
  error: () => new Promise(() => {}),
  warn: () => new Promise(() => {}),
  info: () => new Promise(() => {}),
  debug: () => new Promise(() => {}),
}

let thrownByLogger = 0
const throwing = {
  error: () => {
    throw hostileThrownValue(thrownByLogger++)
  },
  warn: () => Promise.reject(hostileThrownValue(thrownByLogger++)),
  info: () => {
    throw hostileThrownValue(thrownByLogger++)
  },
  debug: () => {
    throw hostileThrownValue(thrownByLogger++)
  },
}

const VALID = Symbol('valid')
const BAD_INPUT = new Set(['DecodeError', 'ParseError', 'ValidationError'])
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * A chain that answers does so in milliseconds; one that hangs never does. 30 s tells them apart
 * on a machine that stalls this process for seconds at a time.
 */
const HANG_MS = 30_000

/** Rejects when `work` takes longer than `ms`: a hang is a failed case, not a stuck run. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the chain did not answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, hang])
  } finally {
    clearTimeout(timer)
  }
}

const silent = { error() {}, warn() {}, info() {}, debug() {} }
const loggers = { silent, hanging, throwing }

/**
 * The chain as a user wires it, plus a probe after the parser that keeps where each record
 * stood before the handler ran, and a handler and sink that record what happened, in order.
 */
function instrumented(s: Scenario) {
  const trace = {
    before: undefined as Uint8Array | undefined,
    errorsBefore: new Map<number, RecordError>(),
    batch: undefined as RecordBatch<unknown> | undefined,
    position: new Map<object, number>(),
    /** Each record's position by its place in the stream, for the copies of records. */
    place: new Map<string, number>(),
    starts: [] as number[],
    startedAt: new Map<number, number>(),
    succeeded: new Set<number>(),
    sunk: [] as number[],
    sinkTook: new Set<number>(),
    sunkRetryable: [] as number[],
    failedForGoodAt: new Map<number, number>(),
    keyOf: new Map<number, string>(),
    /** Each record's sequence number before any handler could write over it. */
    sequenceOf: [] as string[],
    seen: new Map<number, string>(),
    overlaps: [] as number[],
    inFlight: 0,
    mostInFlight: 0,
    clock: 0,
  }
  const busyKeys = new Set<string>()
  const poisonous = (b: Behaviour) => b === 'poison' || b === 'poison-sync'
  const failedForGood = (i: number) => {
    if (!trace.failedForGoodAt.has(i)) trace.failedForGoodAt.set(i, trace.clock++)
  }

  /**
   * Where a record the handler or the sink gets sits in the batch. A large record parsed at its
   * turn comes as a copy, which is found by its place in the stream, before anything has
   * written over it, and kept for when the sink gets the same copy.
   */
  const positionOf = (record: KinesisRecord<unknown>) => {
    let i = trace.position.get(record)
    if (i === undefined) {
      i = trace.place.get(`${record.sequenceNumber}/${record.subSequenceNumber}`) as number
      trace.position.set(record, i)
    }
    return i
  }

  // A handler may overwrite its record's fields: the test keeps each record's key itself.
  const started = (record: KinesisRecord<unknown>) => {
    const i = positionOf(record)
    const key = trace.keyOf.get(i) as string
    trace.starts.push(i)
    trace.startedAt.set(i, trace.clock++)
    trace.seen.set(i, JSON.stringify(record.data))
    trace.mostInFlight = Math.max(trace.mostInFlight, ++trace.inFlight)
    if (s.ordering !== 'none' && busyKeys.has(key)) trace.overlaps.push(i)
    busyKeys.add(key)
    return i
  }
  const ended = (i: number) => {
    trace.inFlight--
    if (s.ordering !== 'none') busyKeys.delete(trace.keyOf.get(i) as string)
  }
  /** What a careless handler does to its record: the answer must not be read from it. */
  const mutate = (record: KinesisRecord<unknown>, i: number) => {
    const writable = record as { -readonly [K in keyof KinesisRecord<unknown>]: unknown }
    writable.data = { replaced: i }
    writable.partitionKey = hostileThrownValue(i)
    writable.shardId = i
    writable.subSequenceNumber = 'x'
    writable.sequenceNumber = sequenceNumber(MAX_RECORDS * 4)
  }

  const body = async (record: KinesisRecord<unknown>, i: number, b: Behaviour) => {
    try {
      if (b === 'slow') for (let t = 0; t < 3; t++) await tick()
      if (b === 'mutate' || b === 'mutate-throw') mutate(record, i)
      if (b === 'throw' || b === 'mutate-throw') throw new Error(`record ${i} failed`)
      if (b === 'non-error') throw { record: i }
      if (b === 'hostile') throw hostileThrownValue(i)
      if (b === 'poison') throw new NonRetryableError(`record ${i} is poison`)
      trace.succeeded.add(i)
    } finally {
      ended(i)
    }
  }

  const handler = (record: KinesisRecord<unknown>) => {
    const i = started(record)
    const b = s.behaviours[i] as Behaviour
    if (b === 'throw-sync' || b === 'poison-sync') {
      ended(i)
      if (s.sink === 'none' || b === 'throw-sync') failedForGood(i)
      throw b === 'throw-sync' ? new Error(`record ${i} failed`) : new NonRetryableError('poison')
    }
    const settled = body(record, i, b)
    // Registered before eachRecord awaits it, so it runs the moment eachRecord can see it.
    if (s.sink === 'none' || !poisonous(b)) settled.catch(() => failedForGood(i))
    return settled
  }

  const sink: PoisonSink = (record, error) => {
    const i = positionOf(record)
    trace.sunk.push(i)
    if (error.retryable) trace.sunkRetryable.push(i)
    const taken = (async () => {
      await tick()
      if (s.sink === 'flaky' && s.sinkRefuses[i]) throw new Error('queue unavailable')
      if (s.sink === 'hostile' && s.sinkRefuses[i]) throw hostileThrownValue(i)
      trace.sinkTook.add(i)
    })()
    taken.catch(() => failedForGood(i))
    return taken
  }

  const probe = {
    before(request: { event: unknown }) {
      const batch = getBatch(request.event) as RecordBatch<unknown>
      trace.batch = batch
      trace.before = batch.status.slice()
      trace.errorsBefore = new Map(batch.errors)
      batch.records.forEach((record, i) => {
        trace.position.set(record, i)
        trace.place.set(`${record.sequenceNumber}/${record.subSequenceNumber}`, i)
        trace.keyOf.set(i, record.partitionKey)
        trace.sequenceOf[i] = record.sequenceNumber
      })
    },
  }

  const lambda = middy(
    eachRecord<unknown>(handler, { ordering: s.ordering, concurrency: s.concurrency }),
  )
    .use(kinesisDecode())
    .use(jsonParse({ schema: schemaOf(s.validation) }))
    .use(probe)
    .use(
      partialFailures({
        logger: loggers[s.logger],
        ...(s.sink === 'none' ? {} : { onPoison: sink }),
      }),
    )
  return { lambda, trace }
}

async function check(s: Scenario) {
  const event = kinesisEvent(
    s.records.map(({ payload, partitionKey }) => ({ data: payload.data, partitionKey })),
  )
  const { lambda, trace } = instrumented(s)
  const response = await within(HANG_MS, lambda(event, lambdaContext()))

  const batch = trace.batch as RecordBatch<unknown>
  const before = trace.before as Uint8Array
  const size = batch.records.length
  const violations: string[] = []

  // Invariant 7: a good record is unaffected by its neighbours; a bad one fails alone, with an
  // error that names it, and never reaches the handler.
  // Found by sequence number, not position: an aggregate of no user records leaves no record.
  // With an asynchronous schema, a record is validated at its turn: what the handler saw is what
  // counts, and a record the loop never reached keeps its bytes.
  s.records.forEach(({ payload }, k) => {
    if (payload.good === undefined) return
    const i = trace.sequenceOf.indexOf(sequenceNumber(k))
    const error = batch.errors.get(i)
    const seen = trace.seen.get(i)
    if (before[i] !== RecordStatus.Pending || (error !== undefined && BAD_INPUT.has(error.name)))
      violations.push(`good record ${i} failed`)
    else if (seen !== undefined && seen !== JSON.stringify(payload.good))
      violations.push(`good record ${i} arrived as ${seen}`)
  })
  // A record that failed validation at its turn never reaches the handler either.
  for (const [i, error] of batch.errors) {
    if (error.name === 'ValidationError' && trace.startedAt.has(i))
      violations.push(`record ${i} failed validation and was handled`)
  }
  for (let i = 0; i < size; i++) {
    if (before[i] !== RecordStatus.Failed) continue
    const error = trace.errorsBefore.get(i)
    const sequence = trace.sequenceOf[i] as string
    if (error === undefined || error.sequenceNumber !== sequence)
      violations.push(`record ${i} failed without an error that names it`)
    else if (!error.message.startsWith(`record ${sequence}`))
      violations.push(`record ${i}'s message does not name it: ${error.message}`)
    else if (!BAD_INPUT.has(error.name) || error.retryable)
      violations.push(
        `record ${i} failed with ${error.name}, not a bad-input error: ${error.message}`,
      )
    if (trace.startedAt.has(i)) violations.push(`record ${i} failed parsing and was handled`)
  }

  // Nothing starts after the answer: not a record, not a sink call.
  const startsAtAnswer = trace.starts.length
  const sunkAtAnswer = trace.sunk.length
  for (let t = 0; t < 5; t++) await tick()
  if (trace.starts.length !== startsAtAnswer) violations.push('a record started after the answer')
  if (trace.sunk.length !== sunkAtAnswer) violations.push('a sink call started after the answer')

  // Invariants 1, 2, 6: exactly the first record that neither succeeded nor was diverted.
  let first = -1
  for (let i = 0; i < size; i++) {
    if (!trace.succeeded.has(i) && !trace.sinkTook.has(i)) {
      first = i
      break
    }
  }
  const expected = first === -1 ? [] : [{ itemIdentifier: trace.sequenceOf[first] as string }]
  expect(response).toEqual({ batchItemFailures: expected })

  // Invariant 3: once a record has failed for good, nothing after it starts.
  for (const [i, failedAt] of trace.failedForGoodAt) {
    for (const [j, startedAt] of trace.startedAt) {
      if (j > i && startedAt > failedAt) violations.push(`record ${j} started after ${i} failed`)
    }
  }
  // ...and without a sink, nothing after a record that failed before the handler starts at all.
  const firstBad = before.indexOf(RecordStatus.Failed)
  if (s.sink === 'none' && firstBad !== -1) {
    for (const j of trace.startedAt.keys())
      if (j > firstBad) violations.push(`record ${j} started after ${firstBad} failed parsing`)
  }

  // Invariant 5: at most once in the handler and in the sink; the sink sees only poison.
  if (new Set(trace.starts).size !== trace.starts.length) violations.push('a record started twice')
  if (new Set(trace.sunk).size !== trace.sunk.length) violations.push('a record was sunk twice')
  if (trace.sunkRetryable.length > 0) violations.push(`retryable ${trace.sunkRetryable} sunk`)
  const allowed = s.ordering === 'shard' ? 1 : s.concurrency
  if (trace.mostInFlight > allowed) violations.push(`${trace.mostInFlight} in flight`)

  // Invariant 4: a key's records never overlap and start in order; in 'shard' order, all of them.
  if (trace.overlaps.length > 0) violations.push(`records ${trace.overlaps} overlapped their key`)
  const lastOfKey = new Map<string, number>()
  let last = -1
  for (const i of trace.starts) {
    const key = (batch.records[i] as KinesisRecord).partitionKey
    if (s.ordering !== 'none' && i < (lastOfKey.get(key) ?? -1))
      violations.push(`record ${i} of ${key} out of order`)
    lastOfKey.set(key, i)
    // In 'none' order a record waits for its asynchronous validation alone: one validated
    // sooner starts sooner (a large record, validated at its turn, after small ones validated
    // ahead of it, started after the small record behind it).
    const started = s.ordering === 'shard' || (s.ordering === 'none' && s.validation === 'sync')
    if (started && i < last) violations.push(`record ${i} out of order`)
    last = Math.max(last, i)
  }

  expect(violations).toEqual([])
}

/** Random values in the places a Kinesis record has fields, and extra fields beside them. */
const junk = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
)

const randomRecord = fc.record({
  data: fc.oneof(
    payload.map((p) => p.data),
    junk,
  ),
  sequenceNumber: fc.oneof(
    { weight: 8, arbitrary: fc.constant(VALID) },
    fc.string({ maxLength: 12 }),
    junk,
  ),
  partitionKey: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('k0', 'k1') }, junk),
  eventSource: fc.oneof({ weight: 8, arbitrary: fc.constant('aws:kinesis') }, junk),
  eventID: fc.oneof({ weight: 8, arbitrary: fc.constant(VALID) }, junk),
  kinesis: fc.oneof({ weight: 8, arbitrary: fc.constant(VALID) }, junk),
  extra: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), {
    maxKeys: 2,
  }),
})
type RandomRecord = typeof randomRecord extends fc.Arbitrary<infer R> ? R : never

/** A Lambda record with `random`'s choices in place of its fields; `undefined` removes one. */
function lambdaRecordOf(random: RandomRecord, position: number): Record<string, unknown> {
  const record: Record<string, unknown> = {
    ...random.extra,
    ...kinesisEvent([{ data: '' }]).Records[0],
  }
  const seq = sequenceNumber(position)
  const kinesis = record.kinesis as Record<string, unknown>
  kinesis.sequenceNumber = seq
  record.eventID = `shardId-000000000006:${seq}`
  const { data } = random
  kinesis.data =
    typeof data === 'string' || data instanceof Uint8Array
      ? Buffer.from(data).toString('base64')
      : isSpecData(data)
        ? data.base64
        : data
  const set = (target: Record<string, unknown>, key: string, value: unknown) => {
    if (value === VALID) return
    if (value === undefined) delete target[key]
    else target[key] = value
  }
  set(kinesis, 'sequenceNumber', random.sequenceNumber)
  set(kinesis, 'partitionKey', random.partitionKey)
  set(record, 'eventSource', random.eventSource)
  set(record, 'eventID', random.eventID)
  set(record, 'kinesis', random.kinesis)
  return record
}

function isSpecData(value: unknown): value is { base64: string } {
  return typeof (value as { base64?: unknown } | null)?.base64 === 'string'
}

const randomRecords = (maxLength: number) =>
  fc.array(randomRecord, { maxLength }).map((list) => list.map(lambdaRecordOf))

const randomEvent = fc.oneof(
  { weight: 6, arbitrary: randomRecords(8).map((Records) => ({ Records })) },
  randomRecords(4).chain((Records) =>
    fc
      .dictionary(
        // Beside random keys, the ones a tumbling window adds, with values of any type.
        fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('window', 'state', 'shardId')),
        fc.jsonValue({ maxDepth: 1 }),
        { maxKeys: 3 },
      )
      .map((extra) => ({ ...extra, Records })),
  ),
  fc.record({ Records: fc.oneof(junk, fc.array(junk, { maxLength: 3 })) }),
  fc.anything({ maxDepth: 2 }),
  junk,
)

/** When the chain may throw: the event is not a batch of Kinesis records it can report on. */
function notKinesis(event: unknown): boolean {
  if (typeof event !== 'object' || event === null) return true
  const records = (event as { Records?: unknown }).Records
  if (!Array.isArray(records)) return true
  if (records.length === 0) return false
  const first = records[0] as { eventSource?: unknown; kinesis?: unknown } | null
  if (first?.eventSource !== 'aws:kinesis' || typeof first.kinesis !== 'object') return true
  return records.some((record) => {
    const kinesis = (record as { kinesis?: { sequenceNumber?: unknown; data?: unknown } } | null)
      ?.kinesis
    // data that is defined but not text was decoded by a middleware before kinesisDecode.
    const data = kinesis?.data
    return (
      typeof kinesis?.sequenceNumber !== 'string' ||
      kinesis.sequenceNumber === '' ||
      (data !== undefined && typeof data !== 'string')
    )
  })
}

async function checkShape(event: unknown, ordering: Ordering, withSink: boolean) {
  const started: string[] = []
  const lambda = middy(
    eachRecord<unknown>((record) => void started.push(record.sequenceNumber), { ordering }),
  )
    .use(kinesisDecode())
    .use(jsonParse({ schema: Order }))
    .use(
      partialFailures(withSink ? { logger: silent, onPoison: async () => {} } : { logger: silent }),
    )
  let response: unknown
  try {
    response = await within(HANG_MS, lambda(event as KinesisStreamEvent, lambdaContext()))
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    expect(notKinesis(event)).toBe(true)
    expect(started).toEqual([])
    return
  }
  expect(notKinesis(event)).toBe(false)
  const sequenceNumbers = new Set(
    (event as KinesisStreamEvent).Records.map((record) => record.kinesis.sequenceNumber),
  )
  const failures = (response as { batchItemFailures: Array<{ itemIdentifier: unknown }> })
    .batchItemFailures
  expect(Array.isArray(failures)).toBe(true)
  expect(failures.length).toBeLessThanOrEqual(1)
  for (const failure of failures) {
    expect(failure.itemIdentifier).not.toBe('')
    expect(sequenceNumbers.has(failure.itemIdentifier as string)).toBe(true)
  }
  // With sequence numbers as Lambda sends them (valid, increasing), the checkpoint is exact:
  // every record before it ran or was diverted, and it did neither.
  const batch = getBatch(event) as RecordBatch<unknown>
  const { records, status } = batch
  const ordered = records.every(
    (record, i) =>
      SEQUENCE_NUMBER.test(record.sequenceNumber) &&
      (i === 0 ||
        compareSequenceNumbers(
          (records[i - 1] as KinesisRecord).sequenceNumber,
          record.sequenceNumber,
        ) <= 0),
  )
  if (!ordered) return
  const done = (i: number) =>
    status[i] === RecordStatus.Succeeded || status[i] === RecordStatus.Diverted
  let first = 0
  while (first < records.length && done(first)) first++
  expect(failures).toEqual(
    first === records.length ? [] : [{ itemIdentifier: records[first]?.sequenceNumber }],
  )
  if (withSink) return
  for (let i = first + 1; i < records.length; i++) {
    if (status[i] === RecordStatus.Succeeded) throw new Error(`record ${i} ran after ${first}`)
  }
}

const SEQUENCE_NUMBER = /^(0|[1-9]\d{0,128})$/

/**
 * Record handlers, poison sinks and asynchronous validations that never settle, among handlers
 * that succeed or throw: the timeout guard must answer, the answer names the first record that
 * did not succeed, and nothing starts after it. Handlers here settle synchronously or never, so
 * nothing can finish between the guard's answer and the check.
 */
const hangScenario = fc.record({
  orders: fc.array(goodOrder, { minLength: 1, maxLength: 16 }),
  outcomes: fc.array(
    fc.constantFrom('ok', 'ok', 'ok', 'hang', 'throw', 'poison', 'hang-validate', 'hostile'),
    { minLength: 16, maxLength: 16 },
  ),
  /** 'hang': a poison sink that never settles. */
  sink: fc.constantFrom('none', 'hang'),
  validation: fc.constantFrom<Validation>('sync', 'async'),
  keys: fc.array(fc.constantFrom('k0', 'k1', 'k2'), { minLength: 16, maxLength: 16 }),
  /** Records padded to be parsed and validated at their turn. */
  large: fc.array(fc.boolean(), { minLength: 16, maxLength: 16 }),
  ordering: fc.constantFrom<Ordering>('shard', 'partitionKey', 'none'),
  concurrency: fc.integer({ min: 1, max: 4 }),
})

async function checkHang(h: typeof hangScenario extends fc.Arbitrary<infer H> ? H : never) {
  const succeeded = new Set<string>()
  const starts: string[] = []
  let sinkCalls = 0
  const outcomeOf = (sequence: string) => h.outcomes[Number(sequence.slice(-7))]
  // The order id says where the record is, for the schema.
  const schema =
    h.validation === 'sync'
      ? Order
      : Order.refine(async (order) => {
          if (h.outcomes[Number(order.orderId)] === 'hang-validate') await new Promise(() => {})
          await tick()
          return true
        })
  const lambda = middy(
    eachRecord<Order>(
      (record) => {
        starts.push(record.sequenceNumber)
        const outcome = outcomeOf(record.sequenceNumber)
        if (outcome === 'hang') return new Promise(() => {})
        if (outcome === 'throw') throw new Error('failed')
        if (outcome === 'poison') throw new NonRetryableError('poison')
        if (outcome === 'hostile') throw hostileThrownValue(starts.length)
        succeeded.add(record.sequenceNumber)
        return undefined
      },
      { ordering: h.ordering, concurrency: h.concurrency, timeoutMarginMs: 50 },
    ),
    // middy's own early timeout would read the remaining time first (see below).
    { timeoutEarlyInMillis: 0 },
  )
    .use(kinesisDecode())
    .use(jsonParse({ schema }))
    .use(
      partialFailures({
        logger: silent,
        ...(h.sink === 'hang'
          ? {
              onPoison: () => {
                sinkCalls++
                return new Promise(() => {})
              },
            }
          : {}),
      }),
    )
  const event = kinesisEvent(
    h.orders.map((o, i) => ({
      data: JSON.stringify({ ...o, orderId: String(i), ...(h.large[i] ? { pad: PAD } : {}) }),
      partitionKey: h.keys[i] as string,
    })),
  )
  // Lambda's deadline is 100 ms away on the fake clock (Date, performance and the timers): on
  // the real one, a machine at load 43 spent 88 ms between two statements, inside the margin,
  // and the batch was refused with a TimeoutError. The records' turns of the event loop
  // (setImmediate) are real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  let response: unknown
  try {
    const invocation = lambda(event, lambdaContext(100))
    // The records that can move on their own do, before the clock moves to the guard's timer.
    for (let t = 0; t < 40; t++) await tick()
    response = await settleOnFakeClock(vi, invocation)
  } finally {
    vi.useRealTimers()
  }
  const startsAtAnswer = starts.length
  const sinkCallsAtAnswer = sinkCalls
  for (let t = 0; t < 5; t++) await tick()
  expect(starts.length, 'records started after the answer').toBe(startsAtAnswer)
  expect(sinkCalls, 'sink calls started after the answer').toBe(sinkCallsAtAnswer)
  const first = event.Records.findIndex((record) => !succeeded.has(record.kinesis.sequenceNumber))
  expect(response).toEqual({
    batchItemFailures:
      first === -1 ? [] : [{ itemIdentifier: event.Records[first]?.kinesis.sequenceNumber }],
  })
  expect(new Set(starts).size).toBe(starts.length)
  const failed = starts.findIndex((sequence) => {
    const outcome = outcomeOf(sequence)
    return (
      outcome === 'throw' || outcome === 'hostile' || (outcome === 'poison' && h.sink === 'none')
    )
  })
  if (failed !== -1) {
    const after = starts.slice(failed + 1)
    // Started after the failure, later in the batch: never.
    expect(after.filter((sequence) => sequence > (starts[failed] as string))).toEqual([])
  }
}

describe('the whole chain under random input', () => {
  it('keeps the invariants for random payloads, handlers and sinks', {
    timeout: BUSY_MACHINE_MS,
  }, async () => {
    await fc.assert(fc.asyncProperty(scenario, check), { numRuns: 4_000 })
  })

  it('answers every Kinesis-shaped event and refuses only what is not one', {
    timeout: BUSY_MACHINE_MS,
  }, async () => {
    await fc.assert(
      fc.asyncProperty(
        randomEvent,
        fc.constantFrom<Ordering>('shard', 'partitionKey', 'none'),
        fc.boolean(),
        checkShape,
      ),
      { numRuns: 5_000 },
    )
  })

  it('answers through the timeout guard when record handlers never settle', {
    timeout: BUSY_MACHINE_MS,
  }, async () => {
    await fc.assert(fc.asyncProperty(hangScenario, checkHang), { numRuns: 150 })
  })
})
