/**
 * `kinesisDecode()`: turns the records of a Lambda Kinesis event into the user's records, whose
 * `data` is the payload's bytes, and attaches them to the event for the rest of the chain.
 *
 * For each record Lambda delivers: base64 to bytes; a KPL aggregate is expanded into its user
 * records in place; gzip and zstd (or zlib, when asked) are decompressed, for the record or for
 * each user record of an aggregate. A record that cannot be decoded is kept in its place, marked
 * failed, and never handled; it never fails the batch.
 */

import type { MiddlewareObj } from '@middy/core'
import {
  BATCH,
  checkOptions,
  DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES as DEFAULT_BATCH_BUDGET,
  type DecodedEvent,
  DecodeError,
  eventSourceOf,
  FAILED,
  hasKplMagic,
  type KinesisRecord,
  type KinesisStreamEvent,
  type KinesisStreamRecord,
  kindOf,
  misconfigured,
  noSequenceNumber,
  type OptionRules,
  overBatchBudget,
  placesOf,
  type RecordBatch,
  shardIdOf,
} from '@shardwise/core'
import * as option from '@shardwise/core/option-rules'
import {
  BUDGET_SPENT,
  type Budget,
  type Compression,
  compressionOf,
  decompressed,
  mostOutputOf,
  ZSTD_NEEDS,
  zlib,
} from './decompress.js'
import { readAggregate, type UserRecord } from './kpl.js'

// The errors this package produces, so that a user tells them apart without importing core.
export {
  ConfigurationError,
  type DecodedEvent,
  DecodeError,
  type KinesisRecord,
  type RecordBatch,
  RecordStatus,
} from '@shardwise/core'

export type { Compression } from './decompress.js'

export interface KinesisDecodeOptions {
  /** Expand KPL aggregates into their user records. Default `true`. */
  deaggregate?: boolean
  /**
   * `'auto'` (default) decompresses data that starts with the gzip or zstd magic bytes and leaves
   * anything else as it is. `'gzip'`, `'zstd'` or `'zlib'` expect every user record to be
   * compressed that way and fail the ones that are not. `false` never decompresses.
   */
  decompress?: 'auto' | Compression | false
  /**
   * The most bytes one record may decompress to. A record over it fails alone, for good: its
   * `DecodeError` is not retryable. Default 16 MiB.
   */
  maxDecompressedBytes?: number
  /**
   * The most bytes decompression may produce in one invocation, kept or not (a record that
   * fails is charged the most it could have produced, bounded by its size); this, not `maxDecompressedBytes`, bounds the
   * memory and the time a batch of decompression bombs takes. Default 256 MiB. Each
   * decompression is stopped at what is left. A record that does not fit, and every later
   * compressed record, fail with a retryable `DecodeError`, so the shard stops there and Lambda
   * delivers them again in a later invocation, which starts with the whole budget. Only when the
   * Kinesis record that passes it did so alone (the user records of one aggregate) can no
   * invocation decode it, and its errors are not retryable. Records that are not compressed
   * cost nothing; each zstd frame after the first of a payload costs 16 KiB besides its output.
   */
  maxBatchDecompressedBytes?: number
}

/**
 * Kinesis records carry at most 10 MiB and CloudWatch Logs subscription payloads a few MiB once
 * decompressed, so 16 MiB leaves room for every real payload and still stops a decompression
 * bomb long before it fills a Lambda function's memory.
 */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024

/** 256 MiB; see core's `DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES`, which the Glue registry shares. */
export const DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES = DEFAULT_BATCH_BUDGET

const pkg = '@shardwise/kinesis-decode'

// Node's largest Buffer. getBuiltinModule, not an import: an ESM import of node:buffer also
// loads the modules behind its lazy exports, about 0.15 ms of a cold start.
const MAX_BUFFER_LENGTH = process.getBuiltinModule('node:buffer').constants.MAX_LENGTH

const optionRules: OptionRules = {
  deaggregate: option.boolean,
  decompress: option.oneOf('auto', 'gzip', 'zstd', 'zlib', false),
  maxDecompressedBytes: option.integer(1, MAX_BUFFER_LENGTH),
  maxBatchDecompressedBytes: option.integer(1, MAX_BUFFER_LENGTH),
}

type Decompression = 'auto' | Compression | false

interface Settings {
  readonly deaggregate: boolean
  readonly decompress: Decompression
  readonly maxDecompressedBytes: number
  readonly maxBatchDecompressedBytes: number
}

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function kinesisDecode(options?: KinesisDecodeOptions): MiddlewareObj<KinesisStreamEvent> {
  const settings = settingsOf(options)
  return {
    before(request) {
      const decoded = request as { [DECODED]?: true }
      if (decoded[DECODED]) {
        throw misconfigured(
          pkg,
          `kinesisDecode() is in the middy chain twice; the second would decode again, undoing what ran between (a parser's values and failures): keep one`,
        )
      }
      decoded[DECODED] = true
      const event = request.event as DecodedEvent
      event[BATCH] = decodeRecords(kinesisRecordsOf(event), settings)
    },
  }
}

/**
 * Marks a middy request (one per invocation) that a kinesisDecode() has decoded. A mark on the
 * request, not a WeakSet of them: adding an entry to a weak collection at every invocation
 * costs about a microsecond, and more of the collector's time.
 */
const DECODED: unique symbol = Symbol('decoded')

/** Decodes a whole event; for handlers that do not use middy. */
export function decodeEvent(
  event: KinesisStreamEvent,
  options?: KinesisDecodeOptions,
): RecordBatch<Uint8Array> {
  return decodeRecords(kinesisRecordsOf(event), settingsOf(options))
}

function settingsOf(options: KinesisDecodeOptions | undefined): Settings {
  const settings: Settings = {
    deaggregate: true,
    decompress: 'auto',
    maxDecompressedBytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
    maxBatchDecompressedBytes: DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES,
    // Only the options given: checkOptions leaves out those that are undefined.
    ...checkOptions(pkg, optionRules, options),
  }
  if (settings.decompress === 'zstd' && typeof zlib().zstdDecompressSync !== 'function') {
    throw misconfigured(pkg, `decompress 'zstd' ${ZSTD_NEEDS}`)
  }
  return settings
}

function kinesisRecordsOf(event: unknown): KinesisStreamRecord[] {
  const records = (event as { Records?: unknown } | null | undefined)?.Records
  if (Array.isArray(records)) {
    const first = records[0] as Partial<KinesisStreamRecord> | null | undefined
    if (
      first === undefined ||
      (first?.eventSource === 'aws:kinesis' && typeof first.kinesis === 'object')
    ) {
      return records as KinesisStreamRecord[]
    }
  }
  throw misconfigured(pkg, `expected an aws:kinesis event, got ${eventSourceOf(event)}`)
}

function decodeRecords(
  lambdaRecords: KinesisStreamRecord[],
  settings: Settings,
): RecordBatch<Uint8Array> {
  const { deaggregate, decompress, maxBatchDecompressedBytes: left } = settings
  const budget: Budget = { left, leftAtKinesisRecord: left, failedAtKinesisRecord: 0 }
  const records: KinesisRecord<Uint8Array>[] = []
  let deferred: Set<number> | undefined
  // Where the bytes of a record decoded at its turn are looked at now: one per batch, reused.
  let scratch = Buffer.alloc(0)
  let shardId: string | undefined
  const errors = new Map<number, DecodeError>()
  let kplAggregates = 0
  let bytesDecompressed = 0
  // A record that cannot be decoded keeps its place in the batch, with its error.
  const fail = (record: KinesisRecord<Uint8Array>, error: DecodeError) => {
    errors.set(records.length, error)
    records.push(record)
  }
  for (let i = 0; i < lambdaRecords.length; i++) {
    const lambdaRecord = lambdaRecords[i] as KinesisStreamRecord
    const sequenceNumber = lambdaRecord?.kinesis?.sequenceNumber
    if (typeof sequenceNumber !== 'string' || sequenceNumber === '') {
      // Without a sequence number the record cannot be reported (an empty one names no record:
      // Lambda reads it as a failed invocation), so nothing safe is left but failing the whole
      // batch for Lambda to retry.
      throw noSequenceNumber(pkg, i)
    }
    const carrier = toRecord(lambdaRecord, shardId)
    shardId = carrier.shardId
    const text = lambdaRecord.kinesis.data
    let bytes: Buffer | undefined
    if (typeof text === 'string' && text.length >= DEFER_FROM) {
      scratch = scratchFor(text, scratch)
      // Decoded here to be checked: valid base64, neither an aggregate nor compressed.
      const written = scratch.write(text, 'base64')
      if (written === decodedLength(text)) {
        if (
          !(deaggregate && hasKplMagic(scratch)) &&
          (decompress === 'auto' ? compressionOf(scratch) : decompress) === false
        ) {
          deferred ??= new Set()
          deferred.add(records.length)
          const { data: _, rawData: __, ...coordinates } = carrier
          // The text and the accessors first, on every such record (see DEFERRED), then the rest.
          const record = Object.assign(
            Object.defineProperties({ [CHECKED_TEXT]: text }, DEFERRED),
            coordinates,
          )
          records.push(record as unknown as typeof carrier)
          continue
        }
        // An aggregate or compressed: copied out of the scratch buffer, not decoded again.
        bytes = Buffer.from(scratch.subarray(0, written))
      }
      // Otherwise not valid base64, as the scratch buffer showed: not decoded again either.
    } else {
      bytes = base64Bytes(text)
    }
    if (bytes === undefined) {
      notDecodedBefore(text, i)
      // The text itself is all there is of the record: a poison sink keeps it, rather than
      // nothing (a middleware that decoded the data before leaves the payload's own text).
      if (typeof text === 'string') carrier.rawData = Buffer.from(text)
      fail(carrier, new DecodeError(carrier, 'data is not valid base64'))
      continue
    }

    carrier.rawData = bytes
    budget.leftAtKinesisRecord = budget.left
    budget.failedAtKinesisRecord = 0

    // The KPL compresses user records one by one, before aggregating them; some producers
    // compress the aggregate instead, so an aggregate is looked for again after decompressing.
    let userRecords = deaggregate ? readAggregate(bytes) : undefined
    let userRecordDecompression = decompress
    if (typeof userRecords === 'string') {
      fail(carrier, unreadableAggregate(carrier, bytes, userRecords))
      continue
    }
    if (userRecords === undefined) {
      const payload = decodedPayload(bytes, decompress, carrier, budget, settings)
      if (payload instanceof DecodeError) {
        carrier.data = bytes
        fail(carrier, payload)
        continue
      }
      if (payload !== bytes) bytesDecompressed += payload.byteLength
      if (deaggregate && payload !== bytes) {
        userRecords = readAggregate(payload)
        // A compressed aggregate was compressed once, as a whole; only 'auto', which looks at
        // the bytes, may still find a user record that was compressed on its own.
        userRecordDecompression = decompress === 'auto' ? 'auto' : false
        if (typeof userRecords === 'string') {
          fail(carrier, unreadableAggregate(carrier, payload, userRecords))
          continue
        }
      }
      if (userRecords === undefined) {
        carrier.data = payload
        records.push(carrier)
        continue
      }
    }

    kplAggregates++
    for (let s = 0; s < userRecords.length; s++) {
      const userRecord = userRecords[s] as UserRecord
      const record = subRecord(carrier, userRecord, s)
      const payload = decodedPayload(
        userRecord.data,
        userRecordDecompression,
        record,
        budget,
        settings,
      )
      if (payload instanceof DecodeError) {
        fail(record, payload)
      } else {
        if (payload !== userRecord.data) bytesDecompressed += payload.byteLength
        record.data = payload
        records.push(record)
      }
    }
  }

  const status = new Uint8Array(records.length)
  for (const index of errors.keys()) status[index] = FAILED
  const places = placesOf(records)
  return {
    records,
    places,
    status,
    errors,
    decoded: { kplAggregates, bytesDecompressed },
    deferred,
  }
}

const EMPTY = new Uint8Array(0)
const EQUALS = 61 // '='

/**
 * A scratch buffer that holds the most bytes `text` can decode to: `scratch` itself when it
 * does, else a new one, with an eighth more room and at least twice as large, so that a batch
 * of records whose sizes grow, as like records' often do, allocates a few buffers and not one
 * per record. Each stays allocated, outside the V8 heap, until a collection finds it
 * unreachable: sized to each longer text, 4 records of 1 MiB allocated 4 MiB of them (3 of
 * 1.33 MiB) before the first record ran: the core chain's peak over the event's own was 33.3
 * MB against 29.7 with one buffer (the bench's json-6mb; the hand loop's 28.2).
 */
function scratchFor(text: string, scratch: Buffer<ArrayBuffer>): Buffer<ArrayBuffer> {
  const most = Math.ceil(text.length / 4) * 3
  if (scratch.length >= most) return scratch
  return Buffer.allocUnsafe(Math.max(most + (most >> 3), scratch.length * 2))
}

/**
 * The base64 text from which a plain record is decoded at its turn (`RecordBatch.deferred`),
 * about 6 KiB of bytes: the batch then keeps none of its bytes, where each record decoded ahead
 * stays alive until the invocation ends, and the first scavenge promotes them all.
 */
export const DEFER_FROM = 8192

/**
 * The base64 text a deferred record was checked as, kept on it: a middleware after kinesisDecode
 * that rewrites the event's `kinesis.data` (as `@middy/event-normalizer` does) cannot change the
 * record's bytes.
 */
const CHECKED_TEXT = Symbol('text')

/**
 * `data` or `rawData` of a record decoded at its turn: its bytes, decoded at each read from the
 * base64 text that was checked, until something sets it. The accessors are the same functions on
 * every such record, defined on a fresh object that holds only the text, before the record's
 * other properties, and a value set is kept under a symbol, so that these records share their
 * shapes (hidden classes) and stay fast to read, where turning a property of a record into an
 * accessor gave each record a dictionary of its own, slowing every record loop that saw one.
 */
const decodedAtRead = (key: symbol): PropertyDescriptor => ({
  get(this: KinesisRecord<Uint8Array> & Record<symbol, unknown>) {
    return key in this ? this[key] : Buffer.from(this[CHECKED_TEXT] as string, 'base64')
  },
  set(this: Record<symbol, unknown>, value) {
    this[key] = value
  },
  enumerable: true,
  configurable: true,
})

const DEFERRED = {
  data: decodedAtRead(Symbol('data')),
  rawData: decodedAtRead(Symbol('rawData')),
}

/**
 * Fails the carrier of an aggregate whose MD5 matches but whose body cannot be read. Poison: the
 * same bytes fail the same way at every delivery; `rawData` keeps them whole for a dead-letter
 * sink, and `data` holds the aggregate (decompressed, when it was compressed).
 */
function unreadableAggregate(
  carrier: KinesisRecord<Uint8Array>,
  aggregate: Uint8Array,
  cause: string,
): DecodeError {
  carrier.data = aggregate
  return new DecodeError(
    carrier,
    `data is a KPL aggregate (magic and MD5 match) that cannot be read: ${cause}`,
  )
}

/** `previousShardId`, the shard of the record before, lets the batch share one string. */
function toRecord(
  lambdaRecord: KinesisStreamRecord,
  previousShardId: string | undefined,
): KinesisRecord<Uint8Array> {
  const { kinesis, eventID, eventSourceARN } = lambdaRecord
  return {
    data: EMPTY,
    rawData: EMPTY,
    partitionKey: kinesis.partitionKey,
    explicitHashKey: undefined,
    sequenceNumber: kinesis.sequenceNumber,
    subSequenceNumber: undefined,
    approximateArrivalTimestamp: kinesis.approximateArrivalTimestamp,
    shardId: shardIdOf(eventID, previousShardId),
    eventSourceARN,
    lambdaRecord,
  }
}

/** A user record of an aggregate: its own keys, the carrier's place in the stream. */
function subRecord(
  carrier: KinesisRecord<Uint8Array>,
  userRecord: UserRecord,
  subSequenceNumber: number,
): KinesisRecord<Uint8Array> {
  // The carrier's own keys, in its order, so that every record of the batch has one shape.
  return {
    ...carrier,
    data: userRecord.data,
    rawData: userRecord.data,
    partitionKey: userRecord.partitionKey,
    explicitHashKey: userRecord.explicitHashKey,
    subSequenceNumber,
  }
}

/**
 * Lambda always sends `data` as base64 text. A JSON value there (an object, a number, `null`)
 * means a middleware before this one decoded it, as `@middy/event-normalizer` does: failing each
 * record as bad bytes would send good records to the poison sink, their bytes lost.
 */
function notDecodedBefore(data: unknown, position: number): void {
  if (data === undefined || typeof data === 'string') return
  throw misconfigured(
    pkg,
    `Records[${position}].kinesis.data is ${kindOf(data)}, not Lambda's base64: a middleware before kinesisDecode decoded it (as @middy/event-normalizer does); remove it, or .use() it after kinesisDecode()`,
  )
}

/**
 * Node's base64 decoder skips characters it does not know instead of failing, so a corrupted
 * payload would silently lose bytes; comparing the decoded length with the one the text
 * promises catches that without a second pass over the text.
 */
function base64Bytes(text: unknown): Buffer | undefined {
  if (typeof text !== 'string') return undefined
  const bytes = Buffer.from(text, 'base64')
  return bytes.length === decodedLength(text) ? bytes : undefined
}

/** How many bytes valid base64 `text` holds; -1, which no decoding gives, when it cannot be. */
function decodedLength(text: string): number {
  if (text.length % 4 !== 0) return -1
  // charCodeAt, not endsWith, which costs about 40 ns a call on these strings.
  const last = text.length - 1
  const padding =
    text.charCodeAt(last) !== EQUALS ? 0 : text.charCodeAt(last - 1) !== EQUALS ? 1 : 2
  return (text.length / 4) * 3 - padding
}

/**
 * The payload after decompression: `bytes` itself when there is nothing to do, or the
 * `DecodeError` that says why the record cannot be read, now or ever. Each decompression stops
 * at the per-record limit or at what is left of the budget, whichever is less. The budget pays
 * for every byte decompression produces, kept or not: a decompression that fails may have
 * produced up to its limit, or what its bytes can make if less, first, so a batch of bombs or corrupt streams costs at most the
 * budget in memory and in time. A zstd frame after a payload's first also costs `FRAME_COST`.
 */
function decodedPayload(
  bytes: Uint8Array,
  mode: Decompression,
  record: KinesisRecord<Uint8Array>,
  budget: Budget,
  settings: Settings,
): Uint8Array | DecodeError {
  const format = mode === 'auto' ? compressionOf(bytes) : mode
  if (format === false) return bytes
  const perRecordLimitBinds = settings.maxDecompressedBytes <= budget.left
  const limit = perRecordLimitBinds ? settings.maxDecompressedBytes : budget.left
  // zlib takes no limit below 1; a payload that decompresses to nothing fits any budget.
  const output = decompressed(bytes, format, Math.max(limit, 1), budget)
  if (!(output instanceof Error)) {
    if (output.byteLength <= budget.left) {
      budget.left -= output.byteLength
      return output
    }
    budget.left = 0
    return overBudget(record, format, budget, settings)
  }
  const code = (output as { code?: unknown }).code
  if (code === BUDGET_SPENT) {
    budget.left = 0
    return overBudget(record, format, budget, settings, output)
  }
  // Frames of zstd after the first may have spent part of the budget already.
  if (code !== 'ERR_BUFFER_TOO_LARGE') {
    // zlib hands back nothing of a decompression that fails, so it is charged the most it could
    // have produced: the limit, or less when the input is too small to make that much (a
    // corrupt 13-byte record charged the whole limit once spent the budget with 16 of them).
    const charged = Math.min(limit, mostOutputOf(bytes, format))
    budget.left = Math.max(budget.left - charged, 0)
    budget.failedAtKinesisRecord += charged
    return new DecodeError(record, output.message, { cause: output.cause })
  }
  // It produced the whole limit before zlib stopped it.
  budget.left = Math.max(budget.left - limit, 0)
  if (perRecordLimitBinds) {
    return new DecodeError(
      record,
      `data decompresses (${format}) to more than ${limit} bytes, the maxDecompressedBytes limit`,
      { cause: output },
    )
  }
  return overBudget(record, format, budget, settings, output)
}

/** The record does not fit in what is left of the batch's budget (see `overBatchBudget`). */
function overBudget(
  record: KinesisRecord<Uint8Array>,
  format: Compression,
  budget: Budget,
  settings: Settings,
  cause?: unknown,
): DecodeError {
  const { message, retryable } = overBatchBudget(
    {
      subject: `its data (${format})`,
      option: 'maxBatchDecompressedBytes',
      limit: settings.maxBatchDecompressedBytes,
      verb: 'decompress',
      verbs: 'decompresses',
    },
    budget,
  )
  return new DecodeError(record, message, { cause, retryable })
}
