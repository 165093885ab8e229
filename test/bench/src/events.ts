/**
 * The events every compared path receives: Lambda Kinesis events built from a fixed seed, so that
 * a workload is the same bytes in every process, run after run.
 */
import { createHash } from 'node:crypto'
import { gzipSync, zstdCompressSync } from 'node:zlib'
import avro from 'avsc'
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda'
import { currencies, type Order, orderAvroSchema, orderSchemaId } from './schemas.js'

/** A small deterministic generator (mulberry32): the events must not change between runs. */
export function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function order(index: number, next: () => number): Order {
  return {
    id: `ord-${String(index).padStart(8, '0')}`,
    customer: `cus-${Math.floor(next() * 1e6)
      .toString(36)
      .padStart(4, '0')}`,
    amount: Math.round(next() * 1e6) / 100,
    currency: currencies[Math.floor(next() * currencies.length)] as Order['currency'],
    items: 1 + Math.floor(next() * 20),
    createdAt: new Date(Date.UTC(2026, 10, 25, 17) + Math.floor(next() * 3.6e6)).toISOString(),
    express: next() < 0.2,
  }
}

const STREAM_ARN = 'arn:aws:kinesis:us-east-2:123456789012:stream/bench-stream'
const SHARD = 'shardId-000000000006'
const FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898n

/** One Lambda record carrying `bytes`, with the coordinates Lambda gives the i-th record. */
export function lambdaRecord(index: number, partitionKey: string, bytes: Uint8Array) {
  const sequenceNumber = (FIRST_SEQUENCE + BigInt(index) * 1_000_000_000n).toString()
  const record: KinesisStreamRecord = {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey,
      sequenceNumber,
      data: Buffer.from(bytes).toString('base64'),
      approximateArrivalTimestamp: 1764090000 + index / 1000,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${SHARD}:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'us-east-2',
    eventSourceARN: STREAM_ARN,
  }
  return record
}

export function eventOf(payloads: Uint8Array[], partitionKeys = 50): KinesisStreamEvent {
  return {
    Records: payloads.map((bytes, i) => lambdaRecord(i, `customer-${i % partitionKeys}`, bytes)),
  }
}

const utf8 = (text: string) => Buffer.from(text, 'utf8')

export function jsonPayloads(count: number, seed = 1): Uint8Array[] {
  const next = random(seed)
  const out: Uint8Array[] = []
  for (let i = 0; i < count; i++) out.push(utf8(JSON.stringify(order(i, next))))
  return out
}

/** `count` payloads of about `bytes` each: JSON arrays of orders, as a producer batching its own events sends them. */
export function largeJsonPayloads(count: number, bytes: number, seed = 2): Uint8Array[] {
  const next = random(seed)
  const out: Uint8Array[] = []
  let n = 0
  for (let i = 0; i < count; i++) {
    const parts: string[] = []
    let size = 2
    for (;;) {
      const part = JSON.stringify(order(n++, next))
      if (size + part.length + 1 > bytes) break
      parts.push(part)
      size += part.length + 1
    }
    out.push(utf8(`[${parts.join(',')}]`))
  }
  return out
}

/**
 * CloudWatch Logs subscription payloads (gzip JSON), the usual compressed records on Kinesis:
 * `events` log events of one order each. `zstd` compresses the same bodies with zstd, as SDK
 * producers that compress their records may.
 */
export function gzipPayloads(count: number, events: number, seed = 3): Uint8Array[] {
  return cloudWatchBodies(count, events, seed).map((body) => gzipSync(body))
}

export function zstdPayloads(count: number, events: number, seed = 3): Uint8Array[] {
  return cloudWatchBodies(count, events, seed).map((body) => zstdCompressSync(body))
}

function cloudWatchBodies(count: number, events: number, seed: number): Buffer[] {
  const next = random(seed)
  const out: Buffer[] = []
  let n = 0
  for (let i = 0; i < count; i++) {
    const logEvents = []
    for (let e = 0; e < events; e++) {
      const o = order(n++, next)
      logEvents.push({
        id: `3${String(n).padStart(55, '0')}`,
        timestamp: Date.parse(o.createdAt),
        message: JSON.stringify(o),
      })
    }
    const body = {
      messageType: 'DATA_MESSAGE',
      owner: '123456789012',
      logGroup: '/aws/lambda/orders',
      logStream: `2026/11/25/[$LATEST]${i.toString(16).padStart(32, '0')}`,
      subscriptionFilters: ['orders-to-kinesis'],
      logEvents,
    }
    out.push(utf8(JSON.stringify(body)))
  }
  return out
}

export function avroPayloads(count: number, framing: 'raw' | 'confluent', seed = 4): Uint8Array[] {
  const type = avro.Type.forSchema(orderAvroSchema as avro.Schema)
  const next = random(seed)
  const out: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    const datum = type.toBuffer(order(i, next))
    if (framing === 'raw') {
      out.push(datum)
    } else {
      const framed = Buffer.alloc(5 + datum.length)
      framed.writeUInt32BE(orderSchemaId, 1)
      datum.copy(framed, 5)
      out.push(framed)
    }
  }
  return out
}

// KPL aggregation format (DESIGN.md section 3), written here so the events do not depend on
// the library under test.
const KPL_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2])

function varint(value: number, out: number[]) {
  let v = value
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

function field(tag: number, bytes: Uint8Array, out: number[]) {
  out.push(tag)
  varint(bytes.length, out)
  for (const b of bytes) out.push(b)
}

/** One KPL aggregate of `payloads`, each sub-record under `partitionKeys[i]`. */
export function kplAggregate(payloads: Uint8Array[], partitionKeys: string[]): Uint8Array {
  const table = [...new Set(partitionKeys)]
  const body: number[] = []
  for (const key of table) field(0x0a, utf8(key), body)
  for (let i = 0; i < payloads.length; i++) {
    const record: number[] = [0x08]
    varint(table.indexOf(partitionKeys[i] as string), record)
    field(0x1a, payloads[i] as Uint8Array, record)
    field(0x1a, Uint8Array.from(record), body)
  }
  const protobuf = Uint8Array.from(body)
  const md5 = createHash('md5').update(protobuf).digest()
  return Buffer.concat([KPL_MAGIC, protobuf, md5])
}

/** `aggregates` KPL records of `perAggregate` JSON orders each. */
export function kplPayloads(aggregates: number, perAggregate: number, seed = 5): Uint8Array[] {
  const orders = jsonPayloads(aggregates * perAggregate, seed)
  const out: Uint8Array[] = []
  for (let a = 0; a < aggregates; a++) {
    const slice = orders.slice(a * perAggregate, (a + 1) * perAggregate)
    out.push(
      kplAggregate(
        slice,
        slice.map((_, i) => `customer-${(a * perAggregate + i) % 50}`),
      ),
    )
  }
  return out
}
