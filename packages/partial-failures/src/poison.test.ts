import middy from '@middy/core'
import { failRecord, getBatch, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import {
  eachRecord,
  type KinesisRecord,
  NonRetryableError,
  type Ordering,
  PoisonSinkError,
  partialFailures,
  RecordError,
} from './index.js'

const text = new TextDecoder()

function chain(
  handler: (payload: string) => void,
  onPoison: (record: KinesisRecord<unknown>, error: RecordError) => Promise<unknown>,
  ordering: Ordering = 'shard',
) {
  const logger = recordingLogger()
  const handled: string[] = []
  const lambda = middy(
    eachRecord(
      async (record) => {
        const payload = text.decode(record.data)
        handler(payload)
        handled.push(payload)
      },
      { ordering },
    ),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger, onPoison }))
  return { lambda, handled, logger }
}

describe('partialFailures({ onPoison })', () => {
  it('diverts a record that failed to decode, with its coordinates and error, and moves on', async () => {
    const sunk: Array<[KinesisRecord<unknown>, RecordError]> = []
    const { lambda, handled, logger } = chain(
      () => {},
      async (record, error) => {
        sunk.push([record, error])
      },
    )
    const event = kinesisEvent([{ data: 'a' }, { data: { base64: 'bad*' } }, { data: 'c' }])
    expect(await lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(handled).toEqual(['a', 'c'])
    expect(sunk).toHaveLength(1)
    const [record, error] = sunk[0] as [KinesisRecord<unknown>, RecordError]
    expect(record.sequenceNumber).toBe(sequenceNumber(1))
    expect(record.lambdaRecord.kinesis.data).toBe('bad*')
    expect(error).toMatchObject({ name: 'DecodeError', retryable: false })
    expect(logger.lines.map((line) => line.message)).toEqual([
      'record sent to the poison sink',
      'batch done',
    ])
  })

  it('diverts a NonRetryableError with the raw bytes, and never a retryable error', async () => {
    const sunk: string[] = []
    const { lambda, handled } = chain(
      (payload) => {
        if (payload === 'poison') throw new NonRetryableError('unknown product')
        if (payload === 'flaky') throw new Error('database busy')
      },
      async (record) => {
        sunk.push(text.decode(record.rawData))
      },
    )
    const event = kinesisEvent([
      { data: 'a' },
      { data: 'poison' },
      { data: 'b' },
      { data: 'flaky' },
      { data: 'c' },
    ])
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }],
    })
    expect(sunk).toEqual(['poison'])
    expect(handled).toEqual(['a', 'b'])
  })

  it('stops at a record the sink refuses, like at any failure', async () => {
    for (const ordering of ['shard', 'partitionKey', 'none'] as const) {
      const { lambda, handled, logger } = chain(
        (payload) => {
          if (payload === 'poison') throw new NonRetryableError('never')
        },
        async () => {
          throw new Error('queue unavailable')
        },
        ordering,
      )
      const event = kinesisEvent([{ data: 'a' }, { data: 'poison' }, { data: 'b' }])
      expect(await lambda(event, lambdaContext())).toEqual({
        batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
      })
      if (ordering === 'shard') expect(handled).toEqual(['a'])
      const logged = logger.lines.find((line) => line.message === 'record failed')
      const error = (logged?.details[0] as { error?: unknown } | undefined)?.error
      expect(error).toBeInstanceOf(PoisonSinkError)
      expect((error as Error).message).toMatch(
        /the poison sink failed \(queue unavailable\) for: record/,
      )
    }
  })

  it('starts from the lowest retryable failure, whatever order the steps found them in', async () => {
    const started: string[] = []
    // A step that finds a retryable failure at record 3, then one at record 1.
    const flakyStep = {
      before(request: { event: KinesisStreamEvent }) {
        const batch = getBatch(request.event)
        if (batch === undefined) throw new Error('kinesisDecode runs first')
        for (const index of [3, 1]) {
          const record = batch.records[index] as KinesisRecord<unknown>
          failRecord(batch, index, new RecordError(record, 'the lookup timed out'))
        }
      },
    }
    const lambda = middy(
      eachRecord(
        async (record) => {
          started.push(text.decode(record.data))
        },
        { ordering: 'partitionKey', concurrency: 4 },
      ),
    )
      .use(kinesisDecode())
      .use(flakyStep)
      .use(partialFailures({ logger: false, onPoison: async () => {} }))
    // Records 0 and 1 share a key, so record 1 waits for record 0 while other keys are free:
    // only a limit at record 1 keeps records 2 and later from starting meanwhile.
    const keys = ['x', 'x', 'y', 'z', 'w']
    const event = kinesisEvent(
      ['a', 'b', 'c', 'd', 'e'].map((data, i) => ({ data, partitionKey: keys[i] as string })),
    )
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(started).toEqual(['a'])
  })

  it('says that a handler of your own never uses the sink, as records that can never succeed then hold the shard', async () => {
    const logger = recordingLogger()
    const sunk: string[] = []
    const lambda = middy(async () => undefined)
      .use(kinesisDecode())
      .use(
        partialFailures({
          logger,
          onPoison: async (record) => {
            sunk.push(record.sequenceNumber)
          },
        }),
      )
    const event = kinesisEvent([{ data: 'a' }, { data: { base64: '!!' } }])
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
    expect(sunk).toEqual([])
    expect(logger.lines[0]?.message).toBe(
      'onPoison needs eachRecord or foldWindow as the batch handler: with a handler of your own, no record goes to the sink, and records that can never succeed are reported, holding the shard',
    )
  })

  it('rejects a sink that is not a function when it is built', () => {
    expect(() => partialFailures({ onPoison: 'sqs' as never })).toThrow(/onPoison/)
  })
})
