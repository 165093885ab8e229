/**
 * The answer's sequence numbers come from what the library kept when it decoded the batch, never
 * from the objects handed to the user: a handler that writes its payload over its record
 * (`Object.assign(record, record.data)`) with fields named like the coordinates cannot move the
 * checkpoint (issue 13, item 3).
 */
import middy from '@middy/core'
import { getBatch, type KinesisRecord, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { eachRecord, foldWindow, type Ordering, partialFailures } from './index.js'

/** Record i's payload claims to be record 9 of another shard, in another sub-record and key. */
const payloadOf = (i: number) =>
  JSON.stringify({
    value: i,
    sequenceNumber: sequenceNumber(9),
    subSequenceNumber: 4,
    shardId: 'shardId-999999999999',
    partitionKey: 'not-mine',
  })
const tenRecords = () =>
  kinesisEvent(
    Array.from({ length: 10 }, (_, i) => ({ data: payloadOf(i), partitionKey: `k${i}` })),
  )

/** What a user does to read the payload's fields off the record itself. */
const spread = (record: KinesisRecord): { value: number } => {
  const payload = JSON.parse(Buffer.from(record.data).toString())
  Object.assign(record, payload)
  return payload
}

const answerAt = (position: number) => ({
  batchItemFailures: [{ itemIdentifier: sequenceNumber(position) }],
})

describe('a handler that writes its payload over its record', () => {
  for (const ordering of ['shard', 'partitionKey', 'none'] as const satisfies Ordering[]) {
    it(`cannot move eachRecord's checkpoint, nor what the error names (${ordering})`, async () => {
      const logger = recordingLogger()
      const handled: number[] = []
      const lambda = middy(
        eachRecord(
          async (record) => {
            const { value } = spread(record)
            if (value === 3) throw new Error('db down')
            handled.push(value)
          },
          { ordering, concurrency: 2 },
        ),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      expect(await lambda(tenRecords(), lambdaContext())).toEqual(answerAt(3))
      expect(handled.filter((value) => value < 3).sort()).toEqual([0, 1, 2])
      const failed = logger.lines.find(
        (line) => line.message === 'record failed: its stack and causes',
      )
      expect(failed?.details[0]).toMatchObject({
        shardId: 'shardId-000000000006',
        sequenceNumber: sequenceNumber(3),
        subSequenceNumber: undefined,
        partitionKey: 'k3',
        error: {
          name: 'RecordHandlerError',
          sequenceNumber: sequenceNumber(3),
          partitionKey: 'k3',
          message: expect.stringMatching(
            new RegExp(
              `^record ${sequenceNumber(3)} of shardId-000000000006 \\(partition key "k3"\\)`,
            ),
          ),
        },
      })
    })
  }

  it("cannot move foldWindow's checkpoint: the state holds the records before it", async () => {
    const event = {
      ...tenRecords(),
      window: { start: '2026-11-25T10:00:00Z', end: '2026-11-25T10:05:00Z' },
      state: {},
      shardId: 'shardId-000000000006',
      isFinalInvokeForWindow: false,
      isWindowTerminatedEarly: false,
    } as KinesisStreamEvent
    const lambda = middy(
      foldWindow(
        (state: { values: number[] }, record: KinesisRecord) => {
          const { value } = spread(record)
          if (value === 3) throw new Error('db down')
          return { values: [...state.values, value] }
        },
        { initialState: () => ({ values: [] }) },
      ),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    expect(await lambda(event, lambdaContext())).toEqual({
      ...answerAt(3),
      state: { values: [0, 1, 2] },
    })
  })

  it("cannot move the checkpoint of a batch handler of one's own, on the records or on the event", async () => {
    // It writes each payload over the decoded record and over the event's record, then answers
    // in the middy convention (Promise.allSettled in event.Records order), record 3 rejected.
    const lambda = middy(async (event: KinesisStreamEvent) => {
      const records = getBatch<Uint8Array>(event)?.records ?? []
      return Promise.allSettled(
        records.map(async (record, i) => {
          const { value } = spread(record as KinesisRecord)
          Object.assign((event.Records[i] as KinesisStreamEvent['Records'][number]).kinesis, {
            sequenceNumber: sequenceNumber(9),
          })
          if (value === 3) throw new Error('db down')
        }),
      )
    })
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    expect(await lambda(tenRecords(), lambdaContext())).toEqual(answerAt(3))
  })

  it("cannot move the checkpoint of a batch handler of one's own that reports a record the timeout guard would have", async () => {
    const logger = recordingLogger()
    const lambda = middy(async (event: KinesisStreamEvent) => {
      for (const record of getBatch<Uint8Array>(event)?.records ?? []) spread(record)
      return { batchItemFailures: [{ itemIdentifier: sequenceNumber(5) }] }
    })
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    expect(await lambda(tenRecords(), lambdaContext())).toEqual(answerAt(5))
    const line = logger.lines.find((each) => each.level === 'error')
    // The record is found by its kept sequence number, so the line gives its coordinates.
    expect(line?.details[0]).toMatchObject({
      sequenceNumber: sequenceNumber(5),
      partitionKey: 'k5',
    })
  })
})

describe('the record type', () => {
  it('has read-only coordinates', () => {
    const record = { data: new Uint8Array() } as KinesisRecord
    // @ts-expect-error the answer does not read them from the record: writing one is a mistake
    record.sequenceNumber = sequenceNumber(9)
    // @ts-expect-error
    record.subSequenceNumber = 4
    // @ts-expect-error
    record.shardId = 'shardId-999999999999'
    // @ts-expect-error
    record.partitionKey = 'not-mine'
    expect(record.sequenceNumber).toBe(sequenceNumber(9))
  })
})
