/**
 * Reads a Kinesis Producer Library aggregate (amazon-kinesis-producer, aggregation-format.md):
 * the magic `F3 89 9A C2`, a protobuf `AggregatedRecord`, then the MD5 of the protobuf bytes.
 *
 *   AggregatedRecord { repeated string partition_key_table = 1;
 *                      repeated string explicit_hash_key_table = 2;
 *                      repeated Record records = 3; }
 *   Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
 *            required bytes data = 3; repeated Tag tags = 4; }
 *
 * Three small messages do not need a protobuf runtime: this reader walks the wire format once,
 * skips what it does not know (tags, fields added later), and hands the data out as views into
 * the carrier's bytes, without copying.
 */

import { hasKplMagic } from '@shardwise/core'

export interface UserRecord {
  partitionKey: string
  explicitHashKey: string | undefined
  data: Uint8Array
}

/**
 * The reader's cursor. A module-level cursor instead of a reader object keeps the hot loop free of
 * allocations; the functions below are synchronous, so nothing else can move it meanwhile.
 * `pos` becomes -1 when the bytes are not valid protobuf.
 */
const EMPTY = Buffer.alloc(0)
let buf: Buffer = EMPTY
let pos = 0

const MAGIC_LENGTH = 4
const MD5_LENGTH = 16

/**
 * The user records of an aggregate, in order; `undefined` when `bytes` is not an aggregate (no
 * magic, or an MD5 that does not match), so that the caller passes the record on as it is, like
 * the KCL does; a string, why, when the MD5 matches but the body cannot be read. A right MD5 over
 * bytes that start with the magic does not happen by chance: such bytes are an aggregate that a
 * faulty encoder wrote, not a user record, and handing them on as one would give the handler
 * the framing of many records as if it were one.
 */
export function readAggregate(bytes: Uint8Array): UserRecord[] | string | undefined {
  if (!hasKplMagic(bytes) || bytes.length < MAGIC_LENGTH + MD5_LENGTH) return undefined
  const end = bytes.length - MD5_LENGTH
  const body = bytes.subarray(MAGIC_LENGTH, end)
  if (!md5Matches(body, bytes, end)) return undefined
  buf = toBuffer(body)
  pos = 0
  const records = parseAggregatedRecord(buf)
  buf = EMPTY
  return records ?? failure
}

/** Why the last body could not be read: set by every path that gives up on it. */
let failure = ''

// Loaded at the first aggregate, not at import: a function that never sees one does not pay
// for node:crypto in its cold start.
let crypto: typeof import('node:crypto') | undefined

function md5Matches(body: Uint8Array, bytes: Uint8Array, trailer: number): boolean {
  crypto ??= process.getBuiltinModule('node:crypto')
  const digest = crypto.hash('md5', body, 'buffer')
  for (let i = 0; i < MD5_LENGTH; i++) {
    if (digest[i] !== bytes[trailer + i]) return false
  }
  return true
}

/** Buffer's `toString` decodes keys faster than a TextDecoder; this is a view, not a copy. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
}

const VARINT = 0
const FIXED64 = 1
const LENGTH_DELIMITED = 2
const START_GROUP = 3
const END_GROUP = 4
const FIXED32 = 5

function parseAggregatedRecord(body: Buffer): UserRecord[] | undefined {
  const partitionKeys: string[] = []
  const explicitHashKeys: string[] = []
  // The tables may come after the records on the wire, so the records are kept as numbers
  // (key index, hash key index or -1, data start, data end) and resolved at the end.
  const fields: number[] = []
  const end = body.length
  while (pos < end) {
    const at = pos
    const tag = readVarint()
    if (pos < 0) return malformed(at)
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (wireType === LENGTH_DELIMITED && field >= 1 && field <= 3) {
      const length = readVarint()
      if (pos < 0 || length > end - pos) return malformed(at)
      const start = pos
      pos += length
      if (field === 1) partitionKeys.push(body.toString('utf8', start, pos))
      else if (field === 2) explicitHashKeys.push(body.toString('utf8', start, pos))
      else if (!parseRecord(start, pos, fields)) {
        failure = `user record ${fields.length / 4} (at byte ${at} of the body) ${failure}`
        return undefined
      }
    } else {
      skipField(field, wireType, end)
      if (pos < 0) return malformed(at)
    }
  }

  const records: UserRecord[] = new Array(fields.length / 4)
  for (let r = 0, f = 0; f < fields.length; r++, f += 4) {
    const partitionKey = partitionKeys[fields[f] as number]
    const hashKeyIndex = fields[f + 1] as number
    const explicitHashKey = hashKeyIndex === -1 ? undefined : explicitHashKeys[hashKeyIndex]
    if (partitionKey === undefined)
      return outsideTable(r, 'partition_key', fields[f], partitionKeys)
    if (hashKeyIndex !== -1 && explicitHashKey === undefined) {
      return outsideTable(r, 'explicit_hash_key', hashKeyIndex, explicitHashKeys)
    }
    records[r] = {
      partitionKey,
      explicitHashKey,
      data: body.subarray(fields[f + 2] as number, fields[f + 3] as number),
    }
  }
  return records
}

/**
 * Reads one `Record` spanning `[start, end)`; false, with `failure` set, when it is malformed or
 * misses a required field.
 */
function parseRecord(start: number, end: number, fields: number[]): boolean {
  pos = start
  let partitionKeyIndex = -1
  let hashKeyIndex = -1
  let dataStart = -1
  let dataEnd = -1
  while (pos < end) {
    const at = pos
    const tag = readVarint()
    if (pos < 0) return recordMalformed(at, start)
    const field = Math.floor(tag / 8)
    const wireType = tag & 7
    if (wireType === VARINT && (field === 1 || field === 2)) {
      const index = readVarint()
      if (pos < 0 || pos > end) return recordMalformed(at, start)
      if (field === 1) partitionKeyIndex = index
      else hashKeyIndex = index
    } else if (wireType === LENGTH_DELIMITED && field === 3) {
      const length = readVarint()
      if (pos < 0 || length > end - pos) return recordMalformed(at, start)
      dataStart = pos
      pos += length
      dataEnd = pos
    } else {
      skipField(field, wireType, end)
      if (pos < 0) return recordMalformed(at, start)
    }
  }
  // Each field above fails or leaves pos at most at end, so the loop stops at end exactly.
  if (partitionKeyIndex === -1 || dataStart === -1) {
    failure = `has no ${partitionKeyIndex === -1 ? 'partition_key_index' : 'data'} (a required field)`
    return false
  }
  fields.push(partitionKeyIndex, hashKeyIndex, dataStart, dataEnd)
  return true
}

function outsideTable(record: number, key: string, index: unknown, table: string[]): undefined {
  failure = `user record ${record} has ${key}_index ${index}, outside the ${key}_table of ${table.length}`
  return undefined
}

function malformed(at: number): undefined {
  failure = `its body ${notProtobuf(at, '')}`
  return undefined
}

function recordMalformed(at: number, start: number): false {
  failure = notProtobuf(at - start, ' of the record')
  return false
}

function notProtobuf(at: number, of: string): string {
  return `is not valid protobuf: the field at byte ${at}${of} is malformed or runs past its end`
}

/**
 * Reads a base-128 varint of up to 10 bytes. Values past 2^53 lose precision, which does not
 * matter here: such an index is outside any table, and such a length is past the end.
 */
function readVarint(): number {
  let result = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) break
    const byte = buf[pos++] as number
    result += (byte & 0x7f) * scale
    if (byte < 0x80) return result
    scale *= 128
  }
  pos = -1
  return 0
}

/**
 * Skips one field whose tag was just read, groups included (a protobuf runtime skips them too,
 * even though no KPL version writes one).
 */
function skipField(field: number, wireType: number, end: number): void {
  let depth = 0
  for (;;) {
    if (field === 0) {
      pos = -1
      return
    }
    if (wireType === VARINT) {
      readVarint()
    } else if (wireType === FIXED64) {
      pos += 8
    } else if (wireType === FIXED32) {
      pos += 4
    } else if (wireType === LENGTH_DELIMITED) {
      const length = readVarint()
      if (pos < 0 || length > end - pos) {
        pos = -1
        return
      }
      pos += length
    } else if (wireType === START_GROUP) {
      depth++
    } else if (wireType === END_GROUP) {
      depth--
    } else {
      pos = -1
      return
    }
    if (pos < 0 || pos > end || depth < 0) {
      pos = -1
      return
    }
    if (depth === 0) return
    if (pos >= end) {
      pos = -1
      return
    }
    const tag = readVarint()
    if (pos < 0) return
    field = Math.floor(tag / 8)
    wireType = tag & 7
  }
}
