import { afterEach, describe, expect, it, vi } from 'vitest'
import { lambdaContext } from './context.js'
import { kinesisEvent, kinesisRecord, sequenceNumber as seq, windowEvent } from './events.js'
import { invoke } from './invoke.js'

const event = kinesisEvent(['a', 'b', 'c', 'd'])
const all = [seq(0), seq(1), seq(2), seq(3)]
const answering = (answer: unknown) => async () => answer
const reporting = (...ids: unknown[]) =>
  answering({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) })

describe('invoke: the answer and what Lambda does with each record', () => {
  it('retries from the lowest reported sequence number, and checkpoints past the records before it', async () => {
    const { response, threw, verdict } = await invoke(reporting(seq(3), seq(1)), event)
    expect(threw).toBe(false)
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: seq(3) }, { itemIdentifier: seq(1) }],
    })
    expect(verdict).toEqual({
      outcome: 'partial',
      shardId: 'shardId-000000000006',
      done: [seq(0)],
      retried: [seq(1), seq(2), seq(3)],
      checkpoint: seq(1),
      dropped: [],
      reason: undefined,
    })
  })

  it.each([
    ['an empty list', { batchItemFailures: [] }],
    ['a null list', { batchItemFailures: null }],
    ['an empty object', {}],
    ['null', null],
    ['nothing', undefined],
    // Recorded on AWS (reference/kinesis-esm-recorded-on-aws.json, empty_string_success).
    ['an empty string', ''],
  ])('takes %s as a complete success', async (_, answer) => {
    const { verdict } = await invoke(answering(answer), event)
    expect(verdict).toMatchObject({
      outcome: 'success',
      done: all,
      retried: [],
      checkpoint: undefined,
    })
  })

  it.each([
    ['an empty identifier', [{ itemIdentifier: '' }]],
    ['a null identifier', [{ itemIdentifier: null }]],
    ['an identifier under a wrong key name', [{ itemIdentifer: seq(2) }]],
    ['a number for an identifier', [{ itemIdentifier: 7 }]],
    ['a null item', [null]],
  ])('retries the whole batch on %s', async (_, list) => {
    const { verdict } = await invoke(answering({ batchItemFailures: list }), event)
    expect(verdict).toMatchObject({
      outcome: 'failure',
      done: [],
      retried: all,
      checkpoint: seq(0),
    })
    expect(verdict.reason).toMatch(/batchItemFailures\[0\]/)
  })

  it('retries the whole batch when batchItemFailures is not a list', async () => {
    const { verdict } = await invoke(
      answering({ batchItemFailures: { itemIdentifier: seq(1) } }),
      event,
    )
    expect(verdict).toMatchObject({ outcome: 'failure', retried: all })
    expect(verdict.reason).toBe('`batchItemFailures` is not an array')
  })

  it('retries the whole batch on an identifier that is not in it (Lambda recorded a failure)', async () => {
    const { verdict } = await invoke(reporting(seq(99)), event)
    expect(verdict).toMatchObject({ outcome: 'failure', retried: all })
    expect(verdict.reason).toContain(seq(99))
  })

  it('retries the whole batch when the handler throws, and hands back what it threw', async () => {
    const boom = new Error('boom')
    const result = await invoke(async () => {
      throw boom
    }, event)
    expect(result).toMatchObject({ threw: true, error: boom, response: undefined })
    expect(result.verdict).toMatchObject({ outcome: 'failure', retried: all, reason: 'boom' })
  })

  it('without ReportBatchItemFailures, takes any answer as a success and says which records it drops', async () => {
    const { verdict } = await invoke(reporting(seq(2)), event, lambdaContext(), {
      reportBatchItemFailures: false,
    })
    expect(verdict).toMatchObject({
      outcome: 'success',
      done: all,
      retried: [],
      dropped: [seq(2), seq(3)],
    })
    const thrown = await invoke(
      async () => {
        throw new Error('still a failure')
      },
      event,
      lambdaContext(),
      { reportBatchItemFailures: false },
    )
    expect(thrown.verdict).toMatchObject({ outcome: 'failure', retried: all, dropped: [] })
  })

  it('on a tumbling window, retries the whole batch when the answer carries no state', async () => {
    const windowed = windowEvent(['a', 'b'], {})
    const without = await invoke(answering({ batchItemFailures: [] }), windowed)
    expect(without.verdict).toMatchObject({ outcome: 'failure', retried: [seq(0), seq(1)] })
    expect(without.verdict.reason).toMatch(/state/)
    const withState = await invoke(answering({ batchItemFailures: [], state: { n: 2 } }), windowed)
    expect(withState.verdict.outcome).toBe('success')
  })

  it('judges the answer as Lambda reads it, in JSON', async () => {
    // A toJSON and a String object reach Lambda as what they write.
    const written = await invoke(
      answering({ toJSON: () => ({ batchItemFailures: [{ itemIdentifier: seq(2) }] }) }),
      event,
    )
    expect(written.verdict).toMatchObject({ outcome: 'partial', done: [seq(0), seq(1)] })
    const boxed = await invoke(
      answering({ batchItemFailures: [{ itemIdentifier: new String(seq(1)) }] }),
      event,
    )
    expect(boxed.verdict).toMatchObject({ outcome: 'partial', checkpoint: seq(1) })
    // What JSON cannot write fails the invocation, as the runtime does; the response is kept.
    const cyclic: Record<string, unknown> = { batchItemFailures: [] }
    cyclic.self = cyclic
    const unwritable = [
      { batchItemFailures: [{ itemIdentifier: seq(1), size: 1n }] },
      cyclic,
      {
        get batchItemFailures() {
          throw new Error('getter')
        },
      },
    ]
    for (const answer of unwritable) {
      const { response, threw, verdict } = await invoke(answering(answer), event)
      expect(response).toBe(answer)
      expect(threw).toBe(false)
      expect(verdict).toMatchObject({ outcome: 'failure', retried: all })
      expect(verdict.reason).toMatch(/^the answer is not JSON: /)
    }
  })

  describe('timeouts', () => {
    afterEach(() => {
      vi.useRealTimers()
    })

    it('retries the whole batch when the answer comes after the remaining time ran out', async () => {
      vi.useFakeTimers()
      const slow = async () => {
        vi.advanceTimersByTime(1000)
        return { batchItemFailures: [] }
      }
      const late = await invoke(slow, event, lambdaContext(1000))
      expect(late.verdict).toMatchObject({ outcome: 'failure', retried: all })
      expect(late.verdict.reason).toMatch(/no time left/)
      const inTime = await invoke(slow, event, lambdaContext(1001))
      expect(inTime.verdict.outcome).toBe('success')
    })

    it('sets no deadline for a context that keeps none (NaN, Infinity)', async () => {
      vi.useFakeTimers()
      for (const remaining of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const context = { ...lambdaContext(), getRemainingTimeInMillis: () => remaining }
        const invocation = invoke(
          () => new Promise((done) => setTimeout(done, 50, { batchItemFailures: [] })),
          event,
          context,
        )
        await vi.advanceTimersByTimeAsync(50)
        expect((await invocation).verdict.outcome).toBe('success')
      }
    })

    it('retries the whole batch of a handler that never answers, once the remaining time is up', async () => {
      vi.useFakeTimers()
      const invocation = invoke(() => new Promise<never>(() => {}), event, lambdaContext(3000))
      await vi.advanceTimersByTimeAsync(2999)
      let settled = false
      void invocation.then(() => {
        settled = true
      })
      await vi.advanceTimersByTimeAsync(0)
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      const { response, threw, verdict } = await invocation
      expect({ response, threw }).toEqual({ response: undefined, threw: false })
      expect(verdict).toMatchObject({ outcome: 'failure', done: [], retried: all })
      expect(verdict.reason).toMatch(/had not answered when the context had no time left/)
    })
  })

  it('hands the handler a copy of the event, so a second invoke is a fresh delivery', async () => {
    const seen: unknown[] = []
    await invoke(async (e) => {
      seen.push(e)
      e.Records.pop()
    }, event)
    expect(seen[0]).not.toBe(event)
    expect(event.Records).toHaveLength(4)
  })

  it('refuses an event Lambda would never send: records of two shards, or out of order', async () => {
    const twoShards = {
      Records: [
        kinesisRecord('a', 0, 'shardId-000000000001'),
        kinesisRecord('b', 1, 'shardId-000000000002'),
      ],
    }
    await expect(invoke(answering(null), twoShards)).rejects.toThrow(
      /shardId-000000000001, shardId-000000000002; Lambda sends the records of one shard/,
    )
    const repeated = { Records: [kinesisRecord('a', 0), kinesisRecord('b', 0)] }
    await expect(invoke(answering(null), repeated)).rejects.toThrow(
      /Records\[1\] repeats the sequence number of Records\[0\].*build it with kplAggregate/,
    )
    const backwards = { Records: [kinesisRecord('a', 1), kinesisRecord('b', 0)] }
    await expect(invoke(answering(null), backwards)).rejects.toThrow(/sequence order/)
    await expect(invoke(answering(null), { Records: [{}] } as never)).rejects.toThrow(
      /Records\[0\] has no kinesis.sequenceNumber/,
    )
    // Empty, it names no record: the verdict could not tell a checkpoint at it from none.
    const unnamed = kinesisRecord('a', 0)
    unnamed.kinesis.sequenceNumber = ''
    await expect(invoke(answering(null), { Records: [unnamed] })).rejects.toThrow(
      /Records\[0\] has no kinesis.sequenceNumber/,
    )
  })
})
