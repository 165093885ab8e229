/**
 * `avroParse(options)`: decodes each decoded record's bytes as one Avro datum into `record.data`,
 * with a schema known up front or with the writer schema a schema registry names in the payload's
 * frame, optionally resolved to the reader schema the handler expects. A record with a bad frame,
 * a truncated datum or trailing bytes fails alone; so does one whose writer schema the registry
 * cannot give right now, and Lambda retries it.
 */

import type { MiddlewareObj } from '@middy/core'
import {
  ConfigurationError,
  checkOptions,
  DecodeError,
  decodedBatch,
  failRecord,
  isNonRetryable,
  isObjectLike,
  type KinesisRecord,
  kindOf,
  markParsed,
  messageOf,
  type OptionRules,
  option,
  PARSER,
  type ParsedEvent,
  ParseError,
  type RecordBatch,
  type RecordCoordinates,
  RecordError,
  type RecordParser,
  RecordStatus,
  shownValue,
  type TurnSteps,
} from '@shardwise/core'
import avro from 'avsc'
import { boundedOptions, startDatum } from './bounded.js'
import type {
  Frame,
  FrameBatch,
  FrameRefusal,
  SchemaId,
  SchemaRegistry,
  WriterSchema,
} from './registry.js'

// The errors this package produces, so that a user tells them apart without importing core.
export {
  ConfigurationError,
  DecodeError,
  type InferData,
  type ParsedEvent,
  ParseError,
  type RecordParser,
} from '@shardwise/core'
export {
  type ConfluentSchemaRegistryOptions,
  confluentSchemaRegistry,
} from './confluent.js'
export { type GlueClientLike, type GlueSchemaRegistryOptions, glueSchemaRegistry } from './glue.js'
export type {
  Frame,
  FrameBatch,
  FrameRefusal,
  SchemaId,
  SchemaRegistry,
  WriterSchema,
} from './registry.js'
export { FinalAnswerError } from './registry.js'

const pkg = '@shardwise/avro-parse'

/** An Avro schema as JSON (an object, an array for a union, or a primitive's name), or an avsc `Type`. */
export type AvroSchema = avro.Type | object | string

export interface AvroParseOptions {
  /** The schema every payload was written with, for payloads without a registry's frame. */
  schema?: AvroSchema
  /**
   * The schema the record handler reads: data written with an older or newer writer schema is
   * resolved to it (avsc's `createResolver`), as Avro's schema evolution rules allow.
   */
  readerSchema?: AvroSchema
  /** For payloads framed by a schema registry: `confluentSchemaRegistry()` or `glueSchemaRegistry()`. */
  registry?: SchemaRegistry
  /**
   * avsc's `Type.forSchema` options for every schema this parser compiles (`logicalTypes`,
   * `wrapUnions`, `registry`, ...). Each schema is compiled with a copy of `registry`, which
   * avroParse leaves as you gave it.
   */
  typeOptions?: Partial<Parameters<typeof avro.Type.forSchema>[1]>
}

/**
 * The middleware `avroParse` returns; `T` is what the record handler receives as `data`, typed
 * by `eachRecord(parse, handler)`.
 */
export type AvroParser<T> = MiddlewareObj<ParsedEvent<T>> & RecordParser<T>

/**
 * The registry could not give a record's writer schema: it is down, timed out, or answered with
 * an error. Retryable (unless the registry's answer was final), so Lambda redelivers the record.
 */
export class SchemaRegistryError extends RecordError {
  override name = 'SchemaRegistryError'
  constructor(
    at: RecordCoordinates,
    message: string,
    options: { cause: unknown; retryable: boolean },
  ) {
    super(at, message, options)
  }
}

const avroSchema = option.that(
  (value) => typeof value === 'string' || (typeof value === 'object' && value !== null),
  'an Avro schema: an object, an array, a string or an avsc Type',
)

const optionRules: OptionRules = {
  schema: avroSchema,
  readerSchema: avroSchema,
  registry: option.object,
  typeOptions: option.object,
}

/** How to read the datums of one writer schema. */
interface Decoder {
  type: avro.Type
  resolver: ReturnType<avro.Type['createResolver']> | undefined
  /** For messages: `schema 42 of the Confluent Schema Registry at ...`. */
  name: string
}

/** A decoder, or why the datums of a writer schema cannot be read at all. */
type DecoderOrProblem = Decoder | string

/**
 * The type parameter names what `record.data` holds; avsc does not derive TypeScript types from
 * schemas, so it is yours to keep in step with the (reader) schema.
 *
 * @example
 * const parse = avroParse<Order>({ registry: confluentSchemaRegistry({ url }), readerSchema: orderSchema })
 * export const handler = middy(eachRecord(parse, async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(parse)
 *   .use(partialFailures())
 */
export function avroParse<T = unknown>(options: AvroParseOptions): AvroParser<T> {
  try {
    return parserFor<T>(options)
  } catch (error) {
    if (error instanceof ConfigurationError) throw error
    // A getter or a Proxy trap that throws inside an option (the schema, the registry).
    throw new ConfigurationError(`${pkg}: the options cannot be read: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

function parserFor<T>(options: AvroParseOptions): AvroParser<T> {
  if (looksLikeSchema(options)) {
    throw new ConfigurationError(
      `${pkg}: give the schema as an option, avroParse({ schema }), not avroParse(schema)`,
    )
  }
  const { schema, readerSchema, registry, typeOptions } = checkOptions(pkg, optionRules, options)
  if (registry !== undefined) {
    if (schema !== undefined) {
      throw new ConfigurationError(
        `${pkg}: with a registry the writer schema comes from each payload's frame; give the schema you read as readerSchema, not schema`,
      )
    }
    const methods = [registry.readFrame, registry.lookUp, registry.describe]
    if (methods.some((method) => typeof method !== 'function')) {
      throw new ConfigurationError(
        `${pkg}: registry must come from confluentSchemaRegistry() or glueSchemaRegistry()`,
      )
    }
  } else if (schema === undefined) {
    throw new ConfigurationError(
      `${pkg}: give the writer schema as schema, or a registry: confluentSchemaRegistry() or glueSchemaRegistry()`,
    )
  }
  const reader =
    readerSchema === undefined ? undefined : compile(readerSchema, typeOptions, 'readerSchema')

  if (registry === undefined) {
    const writer = compile(schema as AvroSchema, typeOptions, 'schema')
    const decoder = decoderFor(writer, reader, 'the schema')
    if (typeof decoder === 'string') throw new ConfigurationError(`${pkg}: ${decoder}`)
    const parser: AvroParser<T> = {
      [PARSER]: `avroParse({ schema }) of ${pkg}`,
      before(request) {
        decodeBatch(batchOf(request.event, parser), decoder)
      },
    }
    return parser
  }

  const decoders = new Map<SchemaId, DecoderOrProblem>()
  const parser: AvroParser<T> = {
    [PARSER]: `avroParse({ registry }) of ${pkg}`,
    before(request) {
      decodeFramedBatch(batchOf(request.event, parser), registry, decoders, reader, typeOptions)
    },
  }
  return parser
}

/** An Avro schema where the options should be: a type's name, a schema object, an avsc Type. */
function looksLikeSchema(options: unknown): boolean {
  if (typeof options === 'string') return true
  if (typeof options !== 'object' || options === null) return false
  try {
    return avro.Type.isType(options) || 'type' in options
  } catch {
    // Options that cannot be read (a Proxy whose traps throw): checkOptions says so.
    return false
  }
}

/** The event's batch, marked as read by `parser`. */
function batchOf(event: unknown, parser: RecordParser<unknown>): RecordBatch {
  const batch = decodedBatch(event, pkg, 'before .use(avroParse())')
  markParsed(batch, parser)
  return batch
}

function compile(
  schema: AvroSchema,
  typeOptions: AvroParseOptions['typeOptions'],
  option: string,
): avro.Type {
  const forSchema = compileOptions(typeOptions)
  try {
    // A Type of yours is used as it is: avsc types are frozen, so it keeps avsc's own readers.
    if (avro.Type.isType(schema)) return schema as avro.Type
    return avro.Type.forSchema(schema as avro.Type, forSchema)
  } catch (error) {
    throw new ConfigurationError(
      `${pkg}: ${option} is not a valid Avro schema: ${messageOf(error)}`,
      {
        cause: error,
      },
    )
  }
}

/**
 * `Type.forSchema` options for one compile: a schema and the references it uses. avsc writes the
 * named types it defines into `registry`, so each compile takes a copy of yours: your entries
 * (a `long` that reads BigInt) apply to every schema, and a reader and a writer schema that
 * define the same names do not collide.
 */
function compileOptions(
  typeOptions: AvroParseOptions['typeOptions'],
): NonNullable<AvroParseOptions['typeOptions']> {
  return { ...boundedOptions(typeOptions), registry: { ...typeOptions?.registry } }
}

function decoderFor(
  writer: avro.Type,
  reader: avro.Type | undefined,
  name: string,
): DecoderOrProblem {
  if (reader === undefined) return { type: writer, resolver: undefined, name }
  try {
    return { type: reader, resolver: reader.createResolver(writer), name }
  } catch (error) {
    return `${name} cannot be read as the readerSchema: ${messageOf(error)}`
  }
}

function decodeBatch(batch: RecordBatch, decoder: Decoder): void {
  const { records, status } = batch
  for (let i = 0; i < records.length; i++) {
    if (status[i] !== RecordStatus.Pending) continue
    const record = records[i] as KinesisRecord<unknown>
    decodeRecord(batch, i, record, decoder, bytesOf(record), 0)
  }
}

/**
 * Records whose writer schema is known decode at once; the others wait for one look-up per
 * schema id (`LOOKUPS_AT_ONCE` at a time, see `lookUpAll`), at their turn in the record loop
 * (`lookUpAtTurn`). A batch of known ids never touches a promise.
 */
/**
 * A frame kept while its record waits for a look-up: whole, or its id and the record's payload,
 * from which the frame is read again.
 */
type WaitingFrame =
  | Frame
  | { readonly id: SchemaId; readonly bytes?: undefined; readonly payload: Buffer }

function decodeFramedBatch(
  batch: RecordBatch,
  registry: SchemaRegistry,
  decoders: Map<SchemaId, DecoderOrProblem>,
  reader: avro.Type | undefined,
  typeOptions: AvroParseOptions['typeOptions'],
): void {
  const { records, status, places } = batch
  let waiting: number[] | undefined
  let waitingFrames: WaitingFrame[] | undefined
  const frameBatch: FrameBatch = { sequenceNumber: '', state: undefined }
  for (let i = 0; i < records.length; i++) {
    if (status[i] !== RecordStatus.Pending) continue
    const record = records[i] as KinesisRecord<unknown>
    frameBatch.sequenceNumber = places.sequenceNumbers[i] as string
    // Read once: the data of a record decoded at its turn (`batch.deferred`) is decoded again
    // from its base64 text at each read.
    const payload = bytesOf(record)
    const frame = frameOf(batch, registry, i, payload, frameBatch)
    if (frame === undefined) continue
    const decoder = decoders.get(frame.id)
    if (decoder !== undefined) {
      decodeRecord(batch, i, record, decoder, frame.bytes, frame.start)
      continue
    }
    if (waiting === undefined || waitingFrames === undefined) {
      waiting = []
      waitingFrames = []
    }
    waiting.push(i)
    // A datum the registry made (an inflated Glue datum) is dropped and read again after the
    // look-up: records waiting for their schema hold only their own bytes, where a batch of zlib
    // bombs would otherwise hold up to the whole inflation budget while the registry answers.
    // The payload is kept, not read again from the record, which decodes a record decoded at its
    // turn once more.
    waitingFrames.push(isViewOf(frame.bytes, payload) ? frame : { id: frame.id, payload })
  }
  if (waiting === undefined || waitingFrames === undefined) return
  batch.turnSteps = lookUpAtTurn(
    batch,
    registry,
    decoders,
    reader,
    typeOptions,
    waiting,
    waitingFrames,
  )
}

/**
 * The look-ups start now, and the waiting records decode together once they are done; the record
 * loop waits for that at the turn of the first waiting record it reaches, under its timeout
 * guard: a registry that answers slowly (each request may take its `timeout`, and a registry of
 * your own may have none) cannot keep the loop from answering before the deadline, and the
 * answer carries the records handled by then. Once the loop has stopped (its answer, or middy's
 * early timeout), no look-up starts, no record decodes, and no record waits any more.
 */
function lookUpAtTurn(
  batch: RecordBatch,
  registry: SchemaRegistry,
  decoders: Map<SchemaId, DecoderOrProblem>,
  reader: avro.Type | undefined,
  typeOptions: AvroParseOptions['typeOptions'],
  waiting: number[],
  frames: WaitingFrame[],
): TurnSteps {
  const halt = { halted: false }
  const waits = new Set(waiting)
  const failures = new Map<SchemaId, { cause: unknown; retryable: boolean }>()
  const ids = [...new Set(frames.map((frame) => frame.id))]
  // Resolved by stop(): a record waiting for a look-up that never settles (a registry of your
  // own, no timeout) would otherwise hold the loop, and with it the batch, after the answer.
  let release = () => {}
  const stopped = new Promise<void>((resolve) => {
    release = resolve
  })
  const decoded = lookUpAndCompile(
    registry,
    decoders,
    reader,
    typeOptions,
    ids,
    failures,
    halt,
  ).then(() => {
    if (halt.halted) return
    // Frames read again are charged to a budget of their own: they were charged once already.
    const again: FrameBatch = { sequenceNumber: '', state: undefined }
    for (let k = 0; k < waiting.length; k++) {
      const index = waiting[k] as number
      const frame = frames[k] as WaitingFrame
      const failure = failures.get(frame.id)
      if (failure !== undefined) {
        failWaiting(batch, registry, index, frame.id, failure)
        continue
      }
      const read =
        frame.bytes === undefined ? readAgain(batch, registry, index, frame.payload, again) : frame
      if (read !== undefined) decodeWaiting(batch, decoders, index, read)
    }
  })
  const ready = Promise.race([decoded, stopped])
  return {
    at: (index) => (waits.has(index) ? ready : undefined),
    stop() {
      halt.halted = true
      release()
    },
  }
}

/** Looks each id up and compiles its decoder; the failed look-ups go to `failures`. Never rejects. */
async function lookUpAndCompile(
  registry: SchemaRegistry,
  decoders: Map<SchemaId, DecoderOrProblem>,
  reader: avro.Type | undefined,
  typeOptions: AvroParseOptions['typeOptions'],
  ids: SchemaId[],
  failures: Map<SchemaId, { cause: unknown; retryable: boolean }>,
  halt: { halted: boolean },
): Promise<void> {
  const answers = await lookUpAll(registry, ids, halt)
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k] as SchemaId
    const answer = answers[k] as PromiseSettledResult<WriterSchema>
    if (answer.status === 'rejected') {
      failures.set(id, { cause: answer.reason, retryable: !isNonRetryable(answer.reason) })
      continue
    }
    const name = nameOf(registry, id)
    let writer: avro.Type
    try {
      const options = compileOptions(typeOptions)
      for (const reference of answer.value.references)
        avro.Type.forSchema(reference as avro.Type, options)
      writer = avro.Type.forSchema(answer.value.definition as avro.Type, options)
    } catch (error) {
      decoders.set(id, `${name} is not a valid Avro schema: ${messageOf(error)}`)
      continue
    }
    decoders.set(id, decoderFor(writer, reader, name))
  }
}

/**
 * A frame the registry made, dropped while its record waited: read again, as the first time.
 * `undefined` when the record failed (a registry whose reading changed between the two).
 */
function readAgain(
  batch: RecordBatch,
  registry: SchemaRegistry,
  index: number,
  payload: Buffer,
  again: FrameBatch,
): Frame | undefined {
  again.sequenceNumber = batch.places.sequenceNumbers[index] as string
  return frameOf(batch, registry, index, payload, again)
}

/**
 * The frame the registry reads in `records[index]`'s payload, or `undefined` when the record
 * failed on it. A registry of your own that throws (reading a header that a short payload does
 * not have) fails that record, naming it, not the whole batch: retryable, unless what it threw
 * says `retryable: false`, as the fault may be the registry's code. A frame of another shape is a
 * `ConfigurationError`.
 */
function frameOf(
  batch: RecordBatch,
  registry: SchemaRegistry,
  index: number,
  payload: Buffer,
  frameBatch: FrameBatch,
): Frame | undefined {
  const record = batch.records[index] as KinesisRecord<unknown>
  let frame: Frame | string | FrameRefusal
  try {
    frame = registry.readFrame(payload, frameBatch)
  } catch (thrown) {
    const message = `cannot read its frame: registry.readFrame() threw: ${messageOf(thrown)}`
    const retryable = !isNonRetryable(thrown)
    failRecord(batch, index, new SchemaRegistryError(record, message, { cause: thrown, retryable }))
    return undefined
  }
  if (typeof frame === 'string') {
    failRecord(batch, index, new ParseError(record, frame))
    return undefined
  }
  if (isObjectLike(frame) && 'refused' in frame) {
    failRecord(batch, index, new DecodeError(record, frame.refused, { retryable: frame.retryable }))
    return undefined
  }
  checkFrame(frame)
  return frame
}

/** Fails a record that waited for a look-up that failed, with the look-up's error. */
function failWaiting(
  batch: RecordBatch,
  registry: SchemaRegistry,
  index: number,
  id: SchemaId,
  failure: { cause: unknown; retryable: boolean },
): void {
  const record = batch.records[index] as KinesisRecord<unknown>
  const message = `cannot get ${nameOf(registry, id)}: ${messageOf(failure.cause)}`
  failRecord(batch, index, new SchemaRegistryError(record, message, failure))
}

/** Decodes a record that waited for its schema's look-up. */
function decodeWaiting(
  batch: RecordBatch,
  decoders: Map<SchemaId, DecoderOrProblem>,
  index: number,
  frame: Frame,
): void {
  const record = batch.records[index] as KinesisRecord<unknown>
  decodeRecord(
    batch,
    index,
    record,
    decoders.get(frame.id) as DecoderOrProblem,
    frame.bytes,
    frame.start,
  )
}

/** No look-up starts once the record loop has answered; its records come again. */
const NOT_ASKED_AFTER_ANSWER = new Error('not asked: the invocation had answered')

/**
 * At most this many look-ups at once. Frames that are not what they seem (bare Avro that starts
 * with 0x00) name thousands of ids in one batch; a request each, all at once, ran the function
 * out of sockets (EMFILE), and records that should have failed for good were retried.
 */
const LOOKUPS_AT_ONCE = 16

/**
 * Each id's look-up, in the order the batch first names them. Once one fails and may succeed
 * later, the rest are not asked: their records come after it in the shard, so Lambda delivers
 * them again anyway, and a registry that is down costs one timeout, not one per id.
 */
async function lookUpAll(
  registry: SchemaRegistry,
  ids: SchemaId[],
  halt: { halted: boolean },
): Promise<Array<PromiseSettledResult<WriterSchema>>> {
  const answers = new Array<PromiseSettledResult<WriterSchema>>(ids.length)
  let next = 0
  let stop: Error | undefined
  async function work(): Promise<void> {
    while (next < ids.length) {
      const k = next++
      const id = ids[k] as SchemaId
      if (stop !== undefined) {
        answers[k] = { status: 'rejected', reason: stop }
        continue
      }
      if (halt.halted) {
        answers[k] = { status: 'rejected', reason: NOT_ASKED_AFTER_ANSWER }
        continue
      }
      try {
        answers[k] = { status: 'fulfilled', value: await registry.lookUp(id) }
      } catch (reason) {
        answers[k] = { status: 'rejected', reason }
        if (!isNonRetryable(reason) && stop === undefined) {
          const message = `not asked, after the look-up of ${nameOf(registry, id)} failed in this batch: ${messageOf(reason)}`
          stop = new Error(message, { cause: reason })
        }
      }
    }
  }
  const workers: Array<Promise<void>> = []
  for (let n = 0; n < Math.min(LOOKUPS_AT_ONCE, ids.length); n++) workers.push(work())
  await Promise.all(workers)
  return answers
}

function decodeRecord(
  batch: RecordBatch,
  index: number,
  record: KinesisRecord<unknown>,
  decoder: DecoderOrProblem,
  bytes: Buffer,
  start: number,
): void {
  if (typeof decoder === 'string') {
    failRecord(batch, index, new ParseError(record, decoder))
    return
  }
  // The datum is `bytes` from `start` to the end; avsc reads it in place, without a slice.
  const length = bytes.length - start
  let decoded: { value: unknown; offset: number }
  startDatum(length)
  try {
    decoded = decoder.type.decode(bytes, start, decoder.resolver)
  } catch (error) {
    const message = `is not a valid Avro datum of ${decoder.name}: ${messageOf(error)}`
    failRecord(batch, index, new ParseError(record, message, { cause: error }))
    return
  }
  if (decoded.offset === -1) {
    const message = `is not a valid Avro datum of ${decoder.name}: it ends early, after ${length} bytes`
    failRecord(batch, index, new ParseError(record, message))
  } else if (decoded.offset !== bytes.length) {
    const extra = bytes.length - decoded.offset
    const message = `has ${extra} trailing byte${extra === 1 ? '' : 's'} after the Avro datum of ${decoder.name}`
    failRecord(batch, index, new ParseError(record, message))
  } else {
    record.data = decoded.value
  }
}

/**
 * How messages name schema `id`: `registry.describe(id)`, or `schema <id>` when a registry of
 * your own answers something else or throws, which would otherwise fail the whole batch where
 * only the records of that id fail.
 */
function nameOf(registry: SchemaRegistry, id: SchemaId): string {
  try {
    const name = registry.describe(id)
    if (typeof name === 'string') return name
  } catch {
    // Named by its id below.
  }
  return `schema ${shownValue(id)}`
}

/** A registry of the user's own that returns another shape would fail far from its cause. */
function checkFrame(frame: unknown): asserts frame is Frame {
  const object = isObjectLike(frame)
  const { bytes, start } = (object ? frame : {}) as Partial<Frame>
  const inside = typeof start === 'number' && start >= 0 && start <= (bytes?.length ?? -1)
  if (!Buffer.isBuffer(bytes) || !Number.isInteger(start) || !inside) {
    const got = object ? JSON.stringify(Object.keys(frame)) : kindOf(frame)
    throw new ConfigurationError(
      `${pkg}: registry.readFrame() must return { id, bytes, start } (a Buffer, and where in it the datum starts) or a string, got ${got}`,
    )
  }
}

/** avsc reads through `Buffer` methods; a plain `Uint8Array` is wrapped, not copied. */
/**
 * Whether `bytes` lie within `payload`: the record's own bytes, not a datum the registry made.
 * Sharing an ArrayBuffer is not enough: Node hands out small buffers as slices of one shared
 * pool (under 4 KiB on Node 22, 32 KiB on Node 24, zlib's output chunks included), so an
 * inflated datum can sit in the same pool slab as the payload it came from.
 */
function isViewOf(bytes: Buffer, payload: Buffer): boolean {
  return (
    bytes.buffer === payload.buffer &&
    bytes.byteOffset >= payload.byteOffset &&
    bytes.byteOffset + bytes.byteLength <= payload.byteOffset + payload.byteLength
  )
}

// Read once: Node defines the global Buffer with a getter, which Buffer.isBuffer (and an
// instanceof of the global) calls at every record, 13 ns against 5 for this one.
const NodeBuffer = Buffer

function bytesOf(record: KinesisRecord<unknown>): Buffer {
  const { data } = record
  if (data instanceof NodeBuffer) return data
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  throw new ConfigurationError(
    `${pkg}: record.data is ${kindOf(data)}, not bytes; use avroParse() right after kinesisDecode(), once`,
  )
}
