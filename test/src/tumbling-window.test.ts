/**
 * foldWindow over tumbling-window events built as the Lambda developer guide shows them
 * ("Implementing stateful Kinesis Data Streams processing in Lambda": KinesisTimeWindowEvent,
 * TimeWindowEventResponse `{ state, batchItemFailures }`), driven invocation after invocation as
 * Lambda does: the state answered is the state sent next, a reported record is sent again with
 * the records after it, the final invocation closes the window, and a state past 1 MB ends the
 * window early, after which the same window goes on with a fresh state.
 */
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  foldWindow,
  type KinesisRecord,
  partialFailures,
  type WindowInfo,
} from '@shardwise/partial-failures'
import { kinesisRecord, lambdaContext, sequenceNumber } from '@shardwise/testing'
import type { KinesisStreamRecord } from 'aws-lambda'
import { describe, expect, it } from 'vitest'

/** Counts per partition key, as the guide's sample function does. */
type Counts = Record<string, number>

const WINDOW = { start: '2020-12-09T07:04:00Z', end: '2020-12-09T07:06:00Z' }

/** What onWindowEnd is told of the window. */
const windowInfo = (final: boolean, early: boolean): WindowInfo => ({
  ...WINDOW,
  shardId: 'shardId-000000000006',
  isFinalInvokeForWindow: final,
  isWindowTerminatedEarly: early,
})

/** A KinesisTimeWindowEvent as the guide prints it, with these records and this state. */
function windowEvent(
  records: KinesisStreamRecord[],
  state: unknown,
  flags: { final?: boolean; early?: boolean } = {},
) {
  return {
    Records: records,
    window: WINDOW,
    state,
    shardId: 'shardId-000000000006',
    eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream',
    isFinalInvokeForWindow: flags.final ?? false,
    isWindowTerminatedEarly: flags.early ?? false,
  }
}

/** Records at positions `from`..`to` - 1 of the shard, keyed '1' or '2'; `bad` is not a count. */
function records(from: number, to: number, bad?: number) {
  const list: KinesisStreamRecord[] = []
  for (let i = from; i < to; i++) {
    list.push(kinesisRecord({ data: i === bad ? 'x' : '1', partitionKey: String((i % 2) + 1) }, i))
  }
  return list
}

function counting(options: { failOnce?: Set<string> } = {}) {
  const ended: Array<[Counts, WindowInfo]> = []
  const folded: string[] = []
  const lambda = middy(
    foldWindow(
      (counts: Counts, record: KinesisRecord) => {
        if (options.failOnce?.delete(record.sequenceNumber)) throw new Error('store busy')
        const n = Number(Buffer.from(record.data).toString())
        if (Number.isNaN(n)) throw new Error('not a count')
        folded.push(record.sequenceNumber)
        return { ...counts, [record.partitionKey]: (counts[record.partitionKey] ?? 0) + n }
      },
      {
        initialState: () => ({}),
        onWindowEnd: (counts, window) => {
          ended.push([counts, window])
        },
      },
    ),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger: false }))
  return { lambda, ended, folded }
}

type Answer = { batchItemFailures: Array<{ itemIdentifier: string }>; state: Counts }

/** What Lambda sends again after an answer: the records from the reported one on. */
function fromCheckpoint(sent: KinesisStreamRecord[], answer: Answer) {
  const reported = answer.batchItemFailures[0]?.itemIdentifier
  if (reported === undefined) return []
  return sent.slice(sent.findIndex((record) => record.kinesis.sequenceNumber === reported))
}

describe('foldWindow on tumbling-window events as Lambda sends them', () => {
  it("carries the guide's state across invocations and closes the window once, on the final one", async () => {
    const { lambda, ended } = counting()
    // The guide's sample event: a window already holding { "1": 282, "2": 715 }.
    const first = (await lambda(
      windowEvent(records(0, 4), { '1': 282, '2': 715 }),
      lambdaContext(),
    )) as Answer
    expect(first).toEqual({ batchItemFailures: [], state: { '1': 284, '2': 717 } })
    const second = (await lambda(
      windowEvent(records(4, 7), first.state),
      lambdaContext(),
    )) as Answer
    expect(second).toEqual({ batchItemFailures: [], state: { '1': 286, '2': 718 } })
    expect(ended).toEqual([])
    const final = (await lambda(
      windowEvent(records(7, 8), second.state, { final: true }),
      lambdaContext(),
    )) as Answer
    expect(final).toEqual({ batchItemFailures: [], state: { '1': 286, '2': 719 } })
    expect(ended).toEqual([[{ '1': 286, '2': 719 }, windowInfo(true, false)]])
  })

  it('starts from initialState when Lambda sends an empty state, as on a window’s first call', async () => {
    const { lambda } = counting()
    expect(await lambda(windowEvent(records(0, 3), {}), lambdaContext())).toEqual({
      batchItemFailures: [],
      state: { '1': 2, '2': 1 },
    })
  })

  it('folds each record once when a record fails mid-window and Lambda retries from it', async () => {
    const failOnce = new Set([sequenceNumber(3)])
    const { lambda, folded } = counting({ failOnce })
    const sent = records(0, 6)
    const failed = (await lambda(windowEvent(sent, {}), lambdaContext())) as Answer
    expect(failed).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }],
      state: { '1': 2, '2': 1 },
    })
    const retried = (await lambda(
      windowEvent(fromCheckpoint(sent, failed), failed.state),
      lambdaContext(),
    )) as Answer
    expect(retried).toEqual({ batchItemFailures: [], state: { '1': 3, '2': 3 } })
    expect(folded).toEqual(sent.map((record) => record.kinesis.sequenceNumber))
  })

  it('keeps the window open while the final invocation has a failed record, and closes it on the retry', async () => {
    const failOnce = new Set([sequenceNumber(1)])
    const { lambda, ended } = counting({ failOnce })
    const sent = records(0, 3)
    const failed = (await lambda(
      windowEvent(sent, { '1': 10 }, { final: true }),
      lambdaContext(),
    )) as Answer
    expect(failed.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(1) }])
    expect(ended).toEqual([])
    await lambda(
      windowEvent(fromCheckpoint(sent, failed), failed.state, { final: true }),
      lambdaContext(),
    )
    expect(ended.map(([counts]) => counts)).toEqual([{ '1': 12, '2': 1 }])
  })

  it('hands each part of a window that ended early to onWindowEnd, so that no part is lost', async () => {
    const { lambda, ended } = counting()
    // Lambda ended the window early: it says so, and goes on with the same window, fresh state.
    const part = (await lambda(
      windowEvent(records(0, 2), { '1': 5 }, { early: true }),
      lambdaContext(),
    )) as Answer
    // Handed over, the part is answered with a fresh state: no record can be counted twice.
    expect(part).toEqual({ batchItemFailures: [], state: {} })
    const rest = (await lambda(windowEvent(records(2, 4), {}), lambdaContext())) as Answer
    await lambda(windowEvent([], rest.state, { final: true }), lambdaContext())
    expect(ended).toEqual([
      [{ '1': 6, '2': 1 }, windowInfo(false, true)],
      [{ '1': 1, '2': 1 }, windowInfo(true, false)],
    ])
  })
  /** Keeps each record's data under its sequence number: about 100 KB a record. */
  function keeping(refuse?: string) {
    const ended: Array<[Record<string, string>, WindowInfo]> = []
    const lambda = middy(
      foldWindow(
        (seen: Record<string, string>, record: KinesisRecord) => {
          if (record.sequenceNumber === refuse) throw new Error('refused')
          return { ...seen, [record.sequenceNumber]: Buffer.from(record.data).toString() }
        },
        {
          initialState: () => ({}),
          onWindowEnd: (seen, window) => {
            ended.push([seen, window])
          },
        },
      ),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const big = 'x'.repeat(100_000)
    const sent = Array.from({ length: 11 }, (_, i) => kinesisRecord({ data: big }, i))
    type Kept = {
      batchItemFailures: Array<{ itemIdentifier: string }>
      state: Record<string, string>
    }
    const call = async (records: KinesisStreamRecord[], state: unknown, final = false) =>
      (await lambda(windowEvent(records, state, { final }), lambdaContext())) as Kept
    return { call, ended, sent }
  }

  it('never answers a state past the 1 MB Lambda keeps: it ends the window part itself and starts afresh', async () => {
    // Eleven records of 100 KB pass 1 MB.
    const { call, ended, sent } = keeping()
    const answer = await call(sent, {})
    expect(answer.batchItemFailures).toEqual([])
    expect(Buffer.byteLength(JSON.stringify(answer.state))).toBeLessThan(1_000_000)
    expect(ended).toHaveLength(1)
    const [part, window] = ended[0] as [Record<string, string>, WindowInfo]
    expect(window).toEqual(windowInfo(false, true))
    // Nothing is lost: every record is in the part handed over or in the state answered.
    expect(Object.keys({ ...part, ...answer.state }).sort()).toEqual(
      sent.map((record) => record.kinesis.sequenceNumber).sort(),
    )
  })

  it('on a final invocation with a failed record, hands the part past 1 MB over as not final, then the rest as final', async () => {
    const { call, ended, sent } = keeping(sequenceNumber(10))
    const failed = await call(sent, {}, true)
    expect(failed).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(10) }],
      state: {},
    })
    expect(ended.map(([part, window]) => [Object.keys(part).length, window])).toEqual([
      [10, windowInfo(false, true)],
    ])
    // The retry from record 10, which now succeeds, closes the window with it alone.
    const { call: retry, ended: rest } = keeping()
    await retry(sent.slice(10), failed.state, true)
    expect(rest.map(([part, window]) => [Object.keys(part), window])).toEqual([
      [[sequenceNumber(10)], windowInfo(true, false)],
    ])
  })
})
