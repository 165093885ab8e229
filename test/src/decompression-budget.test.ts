/**
 * kinesisDecode's batch budget (`maxBatchDecompressedBytes`) through the chain as a user wires
 * it, with a poison sink: the records that only the budget stopped are reported, never diverted,
 * and Lambda's redeliveries move the shard on, invocation by invocation.
 */
import { createRequire } from 'node:module'
import zlib from 'node:zlib'
import middy from '@middy/core'
import { DecodeError, getBatch } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures, type RecordError } from '@shardwise/partial-failures'
import {
  kinesisEvent,
  lambdaContext,
  type RecordSpec,
  recordingLogger,
  sequenceNumber,
} from '@shardwise/testing'
import { describe, expect, it } from 'vitest'

const MiB = 1024 * 1024
// About 1 KiB of gzip each, just under the per-record limit: three fill the budget but 3 bytes.
const bomb = zlib.gzipSync(Buffer.alloc(MiB - 1))

const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
  RecordAggregator: new () => {
    addUserRecord(record: { partitionKey: string; data: Buffer }): void
    build(): { data: Buffer }
  }
}

/** One KPL aggregate of `count` bombs, built by the reference producer library. */
function aggregateOfBombs(count: number): Buffer {
  const aggregator = new RecordAggregator()
  for (let i = 0; i < count; i++)
    aggregator.addUserRecord({ partitionKey: `bomb-${i}`, data: bomb })
  return aggregator.build().data
}

/** What a record handler saw: the carrier's position in the stream, and the sub-record. */
const at = (position: number, sub?: number) => `${position}${sub === undefined ? '' : `.${sub}`}`

function wire() {
  const handled: string[] = []
  const sunk: Array<{ record: string; error: RecordError }> = []
  const lambda = middy(
    eachRecord(async (record) => {
      handled.push(at(positionOf(record.sequenceNumber), record.subSequenceNumber))
    }),
  )
    .use(kinesisDecode({ maxDecompressedBytes: MiB, maxBatchDecompressedBytes: 3 * MiB }))
    .use(
      partialFailures({
        logger: recordingLogger(),
        onPoison: async (record, error) => {
          sunk.push({
            record: at(positionOf(record.sequenceNumber), record.subSequenceNumber),
            error,
          })
        },
      }),
    )
  return { lambda, handled, sunk }
}

const positionOf = (sequence: string) => Number(sequence.slice(-7))

/** The stream: what Lambda delivers from `from` on, as the records it would send again. */
const stream: RecordSpec[] = [
  { data: { base64: 'not base64!' } },
  { data: bomb },
  { data: aggregateOfBombs(4), partitionKey: 'aggregate' },
  { data: 'plain' },
  { data: zlib.gzipSync('small') },
].map((spec, position) => ({ ...spec, sequenceNumber: sequenceNumber(position) }))
const deliveredFrom = (from: number) => kinesisEvent(stream.slice(from))

describe('the batch budget through the chain', () => {
  it('reports the first record over it, retryable and never diverted, and the shard moves on at each redelivery', async () => {
    const run = wire()

    // 1: the bad base64 record is poison and diverted; the bomb and two user records of the
    // aggregate fill the budget; its third user record does not fit in what is left.
    const first = deliveredFrom(0)
    expect(await run.lambda(first, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }],
    })
    expect(run.handled).toEqual([at(1), at(2, 0), at(2, 1)])
    expect(run.sunk.map(({ record }) => record)).toEqual([at(0)])
    const over = getBatch(first)?.errors.get(4)
    expect(over).toBeInstanceOf(DecodeError)
    expect(over).toMatchObject({ subSequenceNumber: 2, retryable: true })
    expect(over?.message).toMatch(
      /: its data \(gzip\) does not fit in what is left of maxBatchDecompressedBytes \(3145728\), the most one invocation decompresses; Lambda delivers it again/,
    )
    for (const later of [5, 7]) expect(getBatch(first)?.errors.get(later)?.retryable).toBe(true)

    // 2: Lambda starts again at the aggregate, with the whole budget. Its own four user records
    // pass it alone, so the fourth can never be decoded: poison, diverted. The small gzip record
    // after it is not: the aggregate spent the budget.
    run.handled.length = 0
    run.sunk.length = 0
    const second = deliveredFrom(2)
    expect(await run.lambda(second, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(4) }],
    })
    expect(run.handled).toEqual([at(2, 0), at(2, 1), at(2, 2), at(3)])
    expect(run.sunk.map(({ record }) => record)).toEqual([at(2, 3)])
    expect(run.sunk[0]?.error.message).toMatch(
      /its Kinesis record alone decompresses to more than that, so no invocation can decompress it$/,
    )
    expect(getBatch(second)?.errors.get(5)?.retryable).toBe(true)

    // 3: the last record, alone, fits.
    run.handled.length = 0
    run.sunk.length = 0
    expect(await run.lambda(deliveredFrom(4), lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(run.handled).toEqual([at(4)])
    expect(run.sunk).toEqual([])
  })
})
