/**
 * KPL aggregates (amazon-kinesis-producer, `aggregation-format.md`; DESIGN.md section 3): the
 * magic `F3 89 9A C2`, the protobuf `AggregatedRecord`, and the MD5 of the protobuf.
 */
import { createHash } from 'node:crypto'
import { type Payload, payloadBytes } from './events.js'

export interface UserRecord {
  data: Payload
  partitionKey: string
  explicitHashKey?: string
}

const KPL_MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2)

/**
 * Packs user records into one KPL aggregate, carried as the KPL puts it: under the first
 * record's partition key. The answer is a `RecordSpec` (and what `PutRecords` takes).
 */
export function kplAggregate(records: ReadonlyArray<UserRecord>): {
  partitionKey: string
  data: Uint8Array
} {
  if (records.length === 0) {
    // Read back, it would be a Kinesis record that carries nothing: the handler never sees it.
    throw new TypeError(
      '@shardwise/testing: kplAggregate needs at least one user record, as the KPL writes no empty aggregate; kplFraming frames any body',
    )
  }
  const keys = new KeyTable()
  const hashKeys = new KeyTable()
  const parts: Uint8Array[] = []
  for (const record of records) {
    const data = payloadBytes(record.data)
    // Record { partition_key_index = 1; explicit_hash_key_index = 2; data = 3 }
    const fields = [field(1, 0), varint(keys.indexOf(record.partitionKey))]
    if (record.explicitHashKey !== undefined) {
      fields.push(field(2, 0), varint(hashKeys.indexOf(record.explicitHashKey)))
    }
    fields.push(field(3, 2), varint(data.length), data)
    const body = Buffer.concat(fields)
    parts.push(field(3, 2), varint(body.length), body)
  }
  // AggregatedRecord { partition_key_table = 1; explicit_hash_key_table = 2; records = 3 }
  const message = Buffer.concat([...keys.fields(1), ...hashKeys.fields(2), ...parts])
  return {
    partitionKey: (records[0] as UserRecord).partitionKey,
    data: kplFraming(message),
  }
}

/** Magic, body, MD5 of the body: any protobuf body becomes an aggregate whose checksum is right. */
export function kplFraming(body: Uint8Array): Uint8Array {
  return Buffer.concat([KPL_MAGIC, body, createHash('md5').update(body).digest()])
}

class KeyTable {
  private readonly keys = new Map<string, number>()

  indexOf(key: string): number {
    let index = this.keys.get(key)
    if (index === undefined) {
      index = this.keys.size
      this.keys.set(key, index)
    }
    return index
  }

  /** The table as repeated string fields, in index order. */
  fields(number: number): Uint8Array[] {
    const out: Uint8Array[] = []
    for (const key of this.keys.keys()) {
      const bytes = Buffer.from(key, 'utf8')
      out.push(field(number, 2), varint(bytes.length), bytes)
    }
    return out
  }
}

function field(number: number, wireType: number): Uint8Array {
  return varint(number * 8 + wireType)
}

function varint(value: number): Uint8Array {
  const out: number[] = []
  let v = value
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Uint8Array.from(out)
}
