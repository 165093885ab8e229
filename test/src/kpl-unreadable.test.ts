/**
 * An aggregate whose MD5 matches but whose body cannot be read (what a faulty third-party encoder
 * writes) goes through the whole chain as a user wires it: it fails alone, its bytes reach the
 * poison sink whole, and the records around it, and the user records of a good aggregate, are
 * handled and checkpointed past.
 */
import { createHash } from 'node:crypto'
import middy from '@middy/core'
import { jsonParse } from '@shardwise/json-parse'
import { DecodeError, kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  type KinesisRecord,
  partialFailures,
  type RecordError,
} from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'

const MAGIC = [0xf3, 0x89, 0x9a, 0xc2]

/** Protobuf fields, written by hand: a length-delimited one, and a varint one. */
function varint(value: number): number[] {
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return out
}
const bytesField = (field: number, content: number[] | string): number[] => {
  const bytes = typeof content === 'string' ? [...Buffer.from(content)] : content
  return [...varint(field * 8 + 2), ...varint(bytes.length), ...bytes]
}
const varintField = (field: number, value: number): number[] => [
  ...varint(field * 8),
  ...varint(value),
]

function framed(body: number[]): Buffer {
  const protobuf = Buffer.from(body)
  return Buffer.concat([Buffer.from(MAGIC), protobuf, createHash('md5').update(protobuf).digest()])
}

const userRecord = (keyIndex: number, data: string): number[] =>
  bytesField(3, [...varintField(1, keyIndex), ...bytesField(3, data)])

describe('an aggregate with a right MD5 and an unreadable body', () => {
  it('fails alone, reaches the poison sink whole, and the shard moves past it', async () => {
    const good = framed([
      ...bytesField(1, 'key-a'),
      ...userRecord(0, '{"n":1}'),
      ...userRecord(0, '{"n":2}'),
    ])
    // Its second user record points past a partition key table of one key.
    const bad = framed([
      ...bytesField(1, 'key-a'),
      ...userRecord(0, '{"n":3}'),
      ...userRecord(1, '{"n":4}'),
    ])
    const handled: unknown[] = []
    const poisoned: { record: KinesisRecord<unknown>; error: RecordError }[] = []
    const lambda = middy(eachRecord<{ n: number }>(async ({ data }) => void handled.push(data.n)))
      .use(kinesisDecode())
      .use(jsonParse())
      .use(
        partialFailures({
          logger: recordingLogger(),
          onPoison: async (record, error) => void poisoned.push({ record, error }),
        }),
      )

    const event = kinesisEvent([{ data: '{"n":0}' }, { data: bad }, { data: good }])
    const response = await lambda(event, lambdaContext())

    expect(response).toEqual({ batchItemFailures: [] })
    expect(handled).toEqual([0, 1, 2])
    expect(poisoned).toHaveLength(1)
    const [{ record, error }] = poisoned as [(typeof poisoned)[0]]
    expect(error).toBeInstanceOf(DecodeError)
    expect(error.retryable).toBe(false)
    expect(error.sequenceNumber).toBe(sequenceNumber(1))
    expect(error.message).toContain(sequenceNumber(1))
    expect(error.message).toContain(
      'KPL aggregate (magic and MD5 match) that cannot be read: user record 1 has partition_key_index 1, outside the partition_key_table of 1',
    )
    expect(record.subSequenceNumber).toBeUndefined()
    expect(Buffer.from(record.rawData).equals(bad)).toBe(true)
  })
})
