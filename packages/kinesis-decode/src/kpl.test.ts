/**
 * The KPL reader against the reference implementation (`aws-kinesis-agg` 4.2.8): what it
 * aggregates we read back exactly as it does, and bytes it never wrote cannot hurt the batch.
 */

import zlib from 'node:zlib'
import { DecodeError, type KinesisStreamRecord, RecordStatus } from '@shardwise/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeEvent, type KinesisDecodeOptions } from './index.js'
import {
  type InputRecord,
  kinesisEvent,
  lambdaRecord,
  MAGIC,
  peerAggregates,
  peerDeaggregate,
  peerEncodedAggregate,
  text,
  withFraming,
} from './kpl.fixture.js'

/**
 * aws-kinesis-agg's RecordAggregator keeps its key tables in plain objects, where "__proto__" is
 * no key at all, so its aggregates point past their key table (a body the KCL refuses); that key
 * is tested with the protobuf encoder instead.
 */
const partitionKey = fc
  .string({ minLength: 1, maxLength: 256, unit: 'grapheme' })
  .filter((key) => key !== '__proto__')
const explicitHashKey = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }).map(String)

/** User records drawing their keys from small tables, so that aggregates share table entries. */
const userRecords = (maxRecords: number, maxData: number) =>
  fc
    .tuple(
      fc.uniqueArray(partitionKey, { minLength: 1, maxLength: 6 }),
      fc.uniqueArray(explicitHashKey, { minLength: 1, maxLength: 4 }),
    )
    .chain(([keys, hashKeys]) =>
      fc.array(
        fc.record({
          partitionKey: fc.constantFrom(...keys),
          explicitHashKey: fc.option(fc.constantFrom(...hashKeys), { nil: undefined }),
          data: fc.uint8Array({ maxLength: maxData }),
        }),
        { minLength: 1, maxLength: maxRecords },
      ),
    )

/**
 * Decodes the aggregates and checks every user record against what `aws-kinesis-agg` reads back
 * from the same carrier, and against the input unless `keysAsSent` is false.
 *
 * `keysAsSent: false` is for aggregates from aws-kinesis-agg's `RecordAggregator`, which builds
 * its key tables with `Object.keys` of a plain object: keys that look like array indices
 * ("2", "10", every explicit hash key) come out in numeric order, not in the order the records
 * point to, so its own aggregates name the wrong keys. There the peer's reading is the truth.
 */
function expectSameAsPeer(
  input: InputRecord[],
  aggregates: Uint8Array[],
  keysAsSent: boolean,
  options: KinesisDecodeOptions = { decompress: false },
): void {
  const carriers = aggregates.map((aggregate) => lambdaRecord(aggregate))
  const batch = decodeEvent(kinesisEvent(...carriers), options)
  expect(batch.records).toHaveLength(input.length)
  expect(batch.errors.size).toBe(0)
  let position = 0
  for (const carrier of carriers) {
    const { sequenceNumber } = carrier.kinesis
    const peerRecords = peerDeaggregate(Buffer.from(carrier.kinesis.data, 'base64'), sequenceNumber)
    for (const peerRecord of peerRecords) {
      const ours = batch.records[position]
      const sent = input[position]
      if (ours === undefined || sent === undefined) throw new Error('fewer records than sent')
      expect(ours.sequenceNumber).toBe(sequenceNumber)
      expect(ours.lambdaRecord).toBe(carrier)
      expect(ours.subSequenceNumber).toBe(peerRecord.subSequenceNumber)
      expect(Buffer.from(ours.data).toString('base64')).toBe(peerRecord.data)
      expect(Buffer.from(ours.data).equals(Buffer.from(sent.data))).toBe(true)
      expect(ours.partitionKey).toBe(peerRecord.partitionKey)
      // aws-kinesis-agg reads a missing explicit_hash_key_index as 0 (protobufjs's default), so
      // for a record sent without one it reports the table's first key: compare only the others.
      expect(ours.explicitHashKey === undefined).toBe(sent.explicitHashKey === undefined)
      if (ours.explicitHashKey !== undefined) {
        expect(ours.explicitHashKey).toBe(peerRecord.explicitPartitionKey)
      }
      if (keysAsSent) {
        expect(ours.partitionKey).toBe(sent.partitionKey)
        expect(ours.explicitHashKey).toBe(sent.explicitHashKey)
      }
      position++
    }
  }
  expect(position).toBe(input.length)
}

// These properties take 3 to 4 s alone; while every package's tests run on 2 loaded cores
// (a load average of 40), they passed 30 s in three runs of four: the limit is sized for that.
const BUSY_MACHINE_MS = 120_000

describe('aggregates built by aws-kinesis-agg', () => {
  it(
    'decode to exactly the user records it reads back',
    () => {
      fc.assert(
        fc.property(userRecords(40, 300), (input) => {
          expectSameAsPeer(input, peerAggregates(input), false)
          expectSameAsPeer(input, [peerEncodedAggregate(input)], true)
        }),
        { numRuns: 2000 },
      )
    },
    BUSY_MACHINE_MS,
  )

  it(
    'decode with thousands of user records per aggregate, spread over several carriers',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 2000, max: 12_000 }),
          userRecords(1, 400),
          (count, [model]) => {
            const input = Array.from({ length: count }, (_, i) => ({
              partitionKey: `${model?.partitionKey}-${i % 97}`,
              explicitHashKey: i % 3 === 0 ? String(BigInt(i) * 2n ** 100n) : undefined,
              data: (model?.data ?? new Uint8Array(0)).subarray(0, i % 400),
            }))
            const aggregates = peerAggregates(input)
            expect(aggregates.length).toBeGreaterThan(0)
            expectSameAsPeer(input, aggregates, false)
          },
        ),
        { numRuns: 8 },
      )
    },
    BUSY_MACHINE_MS,
  )

  it('decode with payloads of 1 MiB and more, empty ones, and keys named like prototype members', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1024 * 1024 - 64, max: 1024 * 1024 + 64 }),
        fc.integer({ min: 0, max: 255 }),
        (size, fill) => {
          const input = [
            { partitionKey: 'big', data: new Uint8Array(size).fill(fill) },
            { partitionKey: 'empty', explicitHashKey: '1', data: new Uint8Array(0) },
            { partitionKey: 'big', data: Uint8Array.of(fill) },
          ]
          expectSameAsPeer(input, [peerEncodedAggregate(input)], true)
        },
      ),
      { numRuns: 10 },
    )
    const prototypeKeys = [
      { partitionKey: '__proto__', data: Uint8Array.of(1) },
      { partitionKey: 'constructor', explicitHashKey: '7', data: Uint8Array.of(2) },
    ]
    expectSameAsPeer(prototypeKeys, [peerEncodedAggregate(prototypeKeys)], true)
    // The largest single user record aws-kinesis-agg's own aggregator accepts.
    const largest = [{ partitionKey: 'k', data: new Uint8Array(1024 * 1024 - 16 - 4 - 13) }]
    expectSameAsPeer(largest, peerAggregates(largest), true)
  }, 30_000)

  it('decode when the user records, the aggregate, or both are compressed', () => {
    const compressions = [
      (bytes: Uint8Array) => bytes,
      (bytes: Uint8Array) => zlib.gzipSync(bytes),
      (bytes: Uint8Array) => zlib.zstdCompressSync(bytes),
    ]
    const noMagic = (data: Uint8Array) =>
      data[0] === 0x1f || data[0] === 0x28 || data[0] === 0xf3 ? Uint8Array.of(0, ...data) : data
    fc.assert(
      fc.property(
        userRecords(20, 200).map((records) =>
          records.map((record) => ({ ...record, data: noMagic(record.data) })),
        ),
        fc.array(fc.constantFrom(...compressions), { minLength: 20, maxLength: 20 }),
        fc.constantFrom(...compressions),
        (input, perRecord, whole) => {
          const sent = input.map((record, i) => ({
            ...record,
            data: (perRecord[i] as (typeof compressions)[number])(record.data),
          }))
          const aggregates = peerAggregates(sent).map(whole)
          const batch = decodeEvent(kinesisEvent(...aggregates.map((a) => lambdaRecord(a))))
          expect(batch.errors.size).toBe(0)
          expect(batch.records.map((record) => Buffer.from(record.data))).toEqual(
            input.map((record) => Buffer.from(record.data)),
          )
        },
      ),
      { numRuns: 500 },
    )
  }, 30_000)
})

/**
 * Whatever the bytes after the magic, the record between two plain neighbours either passes
 * through as one plain record or becomes sub-records of its own; it never throws, never touches
 * its neighbours, and can only fail itself.
 */
function expectContained(candidate: Uint8Array): void {
  const before = lambdaRecord('before')
  const middle = lambdaRecord(candidate)
  const after = lambdaRecord('after')
  const batch = decodeEvent(kinesisEvent(before, middle, after))
  const { records, status, errors } = batch
  const last = records.length - 1
  expect(text(records[0]?.data as Uint8Array)).toBe('before')
  expect(text(records[last]?.data as Uint8Array)).toBe('after')
  expect(status[0]).toBe(RecordStatus.Pending)
  expect(status[last]).toBe(RecordStatus.Pending)
  const expanded = records.slice(1, last)
  const [only] = expanded
  if (expanded.length === 1 && only !== undefined && only.subSequenceNumber === undefined) {
    expect(Buffer.from(only.data).equals(Buffer.from(candidate))).toBe(true)
  }
  for (const [i, record] of expanded.entries()) {
    expect(record.lambdaRecord).toBe(middle)
    if (record.subSequenceNumber !== undefined) expect(record.subSequenceNumber).toBe(i)
  }
  for (const [index, error] of errors) {
    expect(index).toBeGreaterThan(0)
    expect(index).toBeLessThan(last)
    expect(error).toBeInstanceOf(DecodeError)
  }
}

describe('bytes after the KPL magic that no producer wrote', () => {
  it('pass through as a plain record when the MD5 does not match', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const candidate = Uint8Array.of(...MAGIC, ...bytes)
        expectContained(candidate)
        const batch = decodeEvent(kinesisEvent(lambdaRecord(candidate)))
        expect(batch.records).toHaveLength(1)
      }),
      { numRuns: 5000 },
    )
  }, 30_000)

  it('never crash or hang, and stay inside their record, even with a right MD5', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (body) => {
        expectContained(withFraming(body))
      }),
      { numRuns: 5000 },
    )
  }, 30_000)

  it('take time in proportion to their size, even 1 MiB of nested groups or varint bytes', () => {
    const mib = 1024 * 1024
    const nestedGroups = new Uint8Array(mib).fill((9 << 3) | 3)
    const endlessVarint = new Uint8Array(mib).fill(0xff)
    const tinyFields = new Uint8Array(mib)
    for (let i = 0; i < mib; i += 2) tinyFields.set([(9 << 3) | 0, 1], i)
    for (const body of [nestedGroups, endlessVarint, tinyFields, new Uint8Array(mib).fill(0x80)]) {
      // The process's CPU time, not the wall clock: other processes on a busy machine take the
      // wall clock's time, and a reader that is quadratic in its input takes CPU time anyway.
      const started = process.cpuUsage()
      expectContained(withFraming(body))
      const { user, system } = process.cpuUsage(started)
      expect((user + system) / 1000).toBeLessThan(2000)
    }
  })

  it('stay inside their record when a real aggregate is corrupted and its MD5 recomputed', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), value: fc.constant(0) }),
    )
    fc.assert(
      fc.property(
        userRecords(8, 40),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (input, mutations) => {
          const [aggregate] = peerAggregates(input)
          const body = [...(aggregate as Buffer).subarray(4, -16)]
          for (const { kind, at, value } of mutations) {
            const position = at % (body.length + 1)
            if (kind === 'set') body[position % body.length] = value
            else if (kind === 'insert') body.splice(position, 0, value)
            else body.splice(position, 1)
          }
          expectContained(withFraming(Uint8Array.from(body)))
        },
      ),
      { numRuns: 3000 },
    )
  }, 30_000)
})

it('a carrier of many sub-records reports itself, for any failing sub-record', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 50 }), fc.nat(), (count, seed) => {
      const failing = seed % count
      const input = Array.from({ length: count }, (_, i) => ({
        partitionKey: `k${i % 3}`,
        data: i === failing ? Uint8Array.of(0x1f, 0x8b, 0, 0) : Buffer.from(`record ${i}`),
      }))
      const carrier: KinesisStreamRecord = lambdaRecord(peerAggregates(input)[0] as Buffer)
      const batch = decodeEvent(kinesisEvent(lambdaRecord('plain'), carrier))
      expect([...batch.errors.keys()]).toEqual([failing + 1])
      expect(batch.errors.get(failing + 1)?.sequenceNumber).toBe(carrier.kinesis.sequenceNumber)
      expect(batch.errors.get(failing + 1)?.subSequenceNumber).toBe(failing)
    }),
    { numRuns: 300 },
  )
})
