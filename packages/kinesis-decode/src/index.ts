/**
 * `kinesisDecode()`: turns the records of a Lambda Kinesis event into decoded records whose
 * `data` is the payload's bytes, and attaches them to the event for the rest of the chain.
 * A record that cannot be decoded is kept in its place, marked failed, and never handled.
 */

import type { MiddlewareObj } from '@middy/core'
import {
  BATCH,
  ConfigurationError,
  type DecodedEvent,
  DecodeError,
  eventSourceOf,
  type KinesisRecord,
  type KinesisStreamEvent,
  type KinesisStreamRecord,
  type RecordBatch,
  RecordStatus,
} from '@shardwise/core'

export type { DecodedEvent, KinesisRecord } from '@shardwise/core'

// biome-ignore lint/complexity/noBannedTypes: no options yet; decompression and KPL come next
export type KinesisDecodeOptions = {}

const EMPTY = new Uint8Array(0)

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function kinesisDecode(
  options: KinesisDecodeOptions = {},
): MiddlewareObj<KinesisStreamEvent> {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError('@shardwise/kinesis-decode: options must be an object')
  }
  return {
    before(request) {
      const event = request.event as DecodedEvent
      event[BATCH] = decodeEvent(event)
    },
  }
}

/** Decodes a whole event; exported for handlers that do not use middy. */
export function decodeEvent(event: KinesisStreamEvent): RecordBatch<Uint8Array> {
  const lambdaRecords = kinesisRecordsOf(event)
  const records: KinesisRecord<Uint8Array>[] = []
  const failed: Array<[number, DecodeError]> = []
  for (let i = 0; i < lambdaRecords.length; i++) {
    const lambdaRecord = lambdaRecords[i] as KinesisStreamRecord
    if (typeof lambdaRecord?.kinesis?.sequenceNumber !== 'string') {
      // Without a sequence number the record cannot be reported, so nothing safe is left but
      // failing the whole batch for Lambda to retry.
      throw new ConfigurationError(
        `@shardwise/kinesis-decode: Records[${i}] has no kinesis.sequenceNumber; expected an aws:kinesis event`,
      )
    }
    const record = toRecord(lambdaRecord)
    const bytes = base64Bytes(lambdaRecord.kinesis.data)
    if (bytes === undefined) {
      failed.push([records.length, new DecodeError(record, 'data is not valid base64')])
    } else {
      record.data = bytes
      record.rawData = bytes
    }
    records.push(record)
  }
  const status = new Uint8Array(records.length)
  const errors = new Map<number, DecodeError>()
  for (const [index, error] of failed) {
    status[index] = RecordStatus.Failed
    errors.set(index, error)
  }
  return { records, status, errors }
}

function kinesisRecordsOf(event: unknown): KinesisStreamRecord[] {
  const records = (event as { Records?: unknown } | null | undefined)?.Records
  if (Array.isArray(records)) {
    const first = records[0] as Partial<KinesisStreamRecord> | undefined
    if (
      first === undefined ||
      (first.eventSource === 'aws:kinesis' && typeof first.kinesis === 'object')
    ) {
      return records as KinesisStreamRecord[]
    }
  }
  throw new ConfigurationError(
    `@shardwise/kinesis-decode: expected an aws:kinesis event, got ${eventSourceOf(event)}`,
  )
}

function toRecord(lambdaRecord: KinesisStreamRecord): KinesisRecord<Uint8Array> {
  const { kinesis, eventID, eventSourceARN } = lambdaRecord
  const colon = eventID.indexOf(':')
  return {
    data: EMPTY,
    rawData: EMPTY,
    partitionKey: kinesis.partitionKey,
    explicitHashKey: undefined,
    sequenceNumber: kinesis.sequenceNumber,
    subSequenceNumber: undefined,
    approximateArrivalTimestamp: kinesis.approximateArrivalTimestamp,
    shardId: colon === -1 ? eventID : eventID.slice(0, colon),
    eventSourceARN,
    lambdaRecord,
  }
}

/**
 * Node's base64 decoder skips characters it does not know instead of failing, so a corrupted
 * payload would silently lose bytes; comparing the decoded length with the one the text
 * promises catches that without a second pass over the text.
 */
function base64Bytes(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length % 4 !== 0) return undefined
  const bytes = Buffer.from(text, 'base64')
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  return bytes.length === (text.length / 4) * 3 - padding ? bytes : undefined
}
