/**
 * Test helpers: Lambda events, aggregates built by the reference implementation
 * (`aws-kinesis-agg`, a dev dependency), and a small protobuf writer for aggregates that no
 * producer builds but a reader must survive.
 */

import { createRequire } from 'node:module'
import type { KinesisStreamEvent, KinesisStreamRecord } from '@shardwise/core'
import { kinesisRecord, kplFraming } from '@shardwise/testing'

export interface InputRecord {
  partitionKey: string
  explicitHashKey?: string | undefined
  data: Uint8Array
}

/** What `aws-kinesis-agg` reads back: base64 data, and its name for the explicit hash key. */
export interface PeerUserRecord {
  partitionKey: string
  explicitPartitionKey?: string
  sequenceNumber: string
  subSequenceNumber?: number
  data: string
}

interface PeerAggregator {
  addUserRecord(record: { partitionKey: string; explicitHashKey?: string; data: Buffer }): void
  checkIfUserRecordFits(record: {
    partitionKey: string
    explicitHashKey?: string
    data: Buffer
  }): boolean
  length(): number
  build(): { partitionKey: string; data: Buffer } | undefined
}

interface Peer {
  RecordAggregator: new () => PeerAggregator
  deaggregateSync(
    record: { partitionKey: string; sequenceNumber: string; data: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: PeerUserRecord[]) => void,
  ): void
}

interface PeerProtobuf {
  AggregatedRecord: {
    encode(message: {
      partition_key_table: string[]
      explicit_hash_key_table: string[]
      records: Array<{
        partition_key_index: number
        explicit_hash_key_index?: number
        data: Uint8Array
        tags: Array<{ key: string; value?: string }>
      }>
    }): { finish(): Uint8Array }
  }
}

const require = createRequire(import.meta.url)
export const peer = require('aws-kinesis-agg') as Peer
const peerProtobuf = require('aws-kinesis-agg/lib/common.js') as PeerProtobuf

export const MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2)

/**
 * Aggregates like a producer using `aws-kinesis-agg`: records go into one aggregate until the
 * next would push it past 1 MiB, then a new one starts. Returns the aggregates' bytes.
 */
export function peerAggregates(records: InputRecord[]): Buffer[] {
  const aggregates: Buffer[] = []
  let aggregator = new peer.RecordAggregator()
  for (const record of records) {
    const input = {
      partitionKey: record.partitionKey,
      ...(record.explicitHashKey === undefined ? {} : { explicitHashKey: record.explicitHashKey }),
      data: Buffer.from(record.data),
    }
    if (aggregator.length() > 0 && !aggregator.checkIfUserRecordFits(input)) {
      aggregates.push((aggregator.build() as { data: Buffer }).data)
      aggregator = new peer.RecordAggregator()
    }
    aggregator.addUserRecord(input)
  }
  const last = aggregator.build()
  if (last !== undefined) aggregates.push(last.data)
  return aggregates
}

/**
 * One aggregate of any size, encoded with the reference implementation's own protobuf schema;
 * its `RecordAggregator` refuses aggregates over 1 MiB, which Kinesis now accepts (up to 10 MiB).
 */
export function peerEncodedAggregate(
  records: InputRecord[],
  tags: Array<{ key: string; value?: string }> = [],
): Buffer {
  const partitionKeys: string[] = []
  const hashKeys: string[] = []
  const body = peerProtobuf.AggregatedRecord.encode({
    partition_key_table: partitionKeys,
    explicit_hash_key_table: hashKeys,
    records: records.map((record) => ({
      partition_key_index: indexIn(partitionKeys, record.partitionKey),
      ...(record.explicitHashKey === undefined
        ? {}
        : { explicit_hash_key_index: indexIn(hashKeys, record.explicitHashKey) }),
      data: record.data,
      tags,
    })),
  }).finish()
  return withFraming(body)
}

function indexIn(table: string[], key: string): number {
  const index = table.indexOf(key)
  return index === -1 ? table.push(key) - 1 : index
}

/** Magic + body + MD5 of the body: any body becomes an aggregate whose checksum is right. */
export function withFraming(body: Uint8Array): Buffer {
  return Buffer.from(kplFraming(body))
}

/** What the reference implementation reads back from one Kinesis record, with checksums on. */
export function peerDeaggregate(data: Uint8Array, sequenceNumber: string): PeerUserRecord[] {
  let result: PeerUserRecord[] | undefined
  let failure: Error | undefined
  peer.deaggregateSync(
    { partitionKey: 'carrier', sequenceNumber, data: Buffer.from(data).toString('base64') },
    true,
    (error, records) => {
      if (error) failure = error
      else result = records
    },
  )
  if (failure !== undefined || result === undefined) {
    throw new Error('aws-kinesis-agg could not read its own aggregate', { cause: failure })
  }
  return result
}

/** A minimal protobuf writer, for the shapes of aggregates a reader must handle or refuse. */
export const pb = {
  varint(value: number | bigint): number[] {
    let v = BigInt(value)
    const out: number[] = []
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    out.push(Number(v))
    return out
  },
  tag(field: number, wireType: number): number[] {
    return pb.varint(field * 8 + wireType)
  },
  bytes(field: number, value: Uint8Array | string | number[]): number[] {
    const content =
      typeof value === 'string'
        ? [...Buffer.from(value)]
        : Array.isArray(value)
          ? value
          : [...value]
    return [...pb.tag(field, 2), ...pb.varint(content.length), ...content]
  },
  uint(field: number, value: number | bigint): number[] {
    return [...pb.tag(field, 0), ...pb.varint(value)]
  },
}

let position = 0

/** A Lambda Kinesis record carrying `data` (a string is UTF-8 text), with a fresh sequence number. */
export function lambdaRecord(
  data: Uint8Array | string,
  partitionKey = 'carrier-key',
): KinesisStreamRecord {
  return kinesisRecord({ data, partitionKey }, position++)
}

/** A Lambda Kinesis record whose `kinesis.data` is `base64`, exactly as given. */
export function base64Record(base64: string, partitionKey = 'carrier-key'): KinesisStreamRecord {
  return kinesisRecord({ data: { base64 }, partitionKey }, position++)
}

export function kinesisEvent(...records: KinesisStreamRecord[]): KinesisStreamEvent {
  return { Records: records }
}

export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8')

let logTextBytes: Buffer | undefined

/**
 * Text that compresses about as JSON logs do (5 to 10 to 1): `size` bytes of one text of
 * about 3.7 MB, from byte `from`.
 */
export function logText(size: number, from = 0): Buffer {
  logTextBytes ??= Buffer.from(
    Array.from(
      { length: 80_000 },
      (_, i) =>
        `{"id":"${i.toString(36).padStart(8, '0')}","level":"info","ms":${(i * 7919) % 10007}}\n`,
    ).join(''),
  )
  return logTextBytes.subarray(from, from + size)
}
