import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import type { KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it, vi } from 'vitest'
import { ConfigurationError, eachRecord, partialFailures } from './index.js'

const threeRecords = () => kinesisEvent([{ data: 'a' }, { data: 'b' }, { data: 'c' }])
const failed = (position: number) => ({
  batchItemFailures: [{ itemIdentifier: sequenceNumber(position) }],
})

describe('partialFailures', () => {
  it('answers an empty list when everything succeeded', async () => {
    const lambda = middy(eachRecord(async () => {}))
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    expect(await lambda(threeRecords(), lambdaContext())).toEqual({ batchItemFailures: [] })
  })

  it('accepts Promise.allSettled results in event.Records order, the middy convention', async () => {
    const lambda = middy(async (event: KinesisStreamEvent) =>
      Promise.allSettled(
        event.Records.map(async (record, i) => {
          if (i >= 1) throw new Error(`record ${i}`)
          return record
        }),
      ),
    ).use(partialFailures({ logger: false }))
    expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
  })

  it('reports decode failures even when the handler is not eachRecord', async () => {
    const event = kinesisEvent([{ data: 'a' }, { data: 'b' }, { data: { base64: '@@@@' } }])
    const lambda = middy(async (e: KinesisStreamEvent) =>
      Promise.allSettled(e.Records.map(async () => {})),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    expect(await lambda(event, lambdaContext())).toEqual(failed(2))
  })

  it("keeps a handler's own batchItemFailures, at the lowest sequence number", async () => {
    const lambda = middy(async () => ({
      batchItemFailures: [
        { itemIdentifier: sequenceNumber(2) },
        { itemIdentifier: sequenceNumber(1) },
      ],
    })).use(partialFailures({ logger: false }))
    expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
  })

  it('reads the sequence numbers of records that are null or whose kinesis getter throws as none', async () => {
    const event = threeRecords()
    const records = event.Records as unknown[]
    records[0] = null
    Object.defineProperty(records[1], 'kinesis', {
      get() {
        throw new Error('no kinesis')
      },
    })
    const lambda = middy(async () => failed(2)).use(partialFailures({ logger: false }))
    expect(await lambda(event, lambdaContext())).toEqual(failed(2))
  })

  it('names records by the sequence numbers Lambda sent, though the handler writes over its event', async () => {
    const lambda = middy(async (event: KinesisStreamEvent) => {
      for (const record of event.Records) record.kinesis.sequenceNumber = 'mine'
      return failed(1)
    }).use(partialFailures({ logger: false }))
    expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
  })

  it('reads the sequence numbers of an event that a middleware put in place of the one Lambda sent', async () => {
    const other = kinesisEvent([
      { data: 'x', sequenceNumber: '7' },
      { data: 'y', sequenceNumber: '8' },
    ])
    const lambda = middy(async () => ({ batchItemFailures: [{ itemIdentifier: '8' }] }))
      .use(partialFailures({ logger: false }))
      .use({
        before(request) {
          request.event = other
        },
      })
    expect(await lambda(threeRecords(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: '8' }],
    })
  })

  it('turns an identifier that is not in the batch into a retry of the whole batch', async () => {
    const logger = recordingLogger()
    for (const itemIdentifier of ['', 'not-a-record', null]) {
      const lambda = middy(async () => ({ batchItemFailures: [{ itemIdentifier }] })).use(
        partialFailures({ logger }),
      )
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(0))
    }
    expect(logger.lines.filter((line) => /not in the batch/.test(line.message))).toHaveLength(3)
  })

  describe('a record whose sequence number cannot be read (an event Lambda never sends)', () => {
    const unreadable: ReadonlyArray<readonly [string, (records: unknown[]) => void]> = [
      ['null', (r) => (r[1] = null)],
      [
        'whose kinesis getter throws',
        (r) =>
          Object.defineProperty(r[1], 'kinesis', {
            get() {
              throw new Error('no kinesis')
            },
          }),
      ],
      [
        'without one',
        (r) => delete (r[1] as { kinesis: { sequenceNumber?: string } }).kinesis.sequenceNumber,
      ],
      [
        'with a number',
        (r) => ((r[1] as { kinesis: { sequenceNumber: unknown } }).kinesis.sequenceNumber = 5),
      ],
      [
        'with an empty one',
        (r) => ((r[1] as { kinesis: { sequenceNumber: string } }).kinesis.sequenceNumber = ''),
      ],
    ]
    const withUnreadable = (spoil: (records: unknown[]) => void) => {
      const event = threeRecords()
      spoil(event.Records as unknown[])
      return event
    }

    for (const [name, spoil] of unreadable) {
      it(`never answers '' for it, but retries the whole batch from a record that has one: ${name}`, async () => {
        const logger = recordingLogger()
        const lambda = middy(async () => ({ batchItemFailures: [{ itemIdentifier: '' }] })).use(
          partialFailures({ logger }),
        )
        expect(await lambda(withUnreadable(spoil), lambdaContext())).toEqual(failed(0))
        expect(logger.lines.filter((line) => /not in the batch/.test(line.message))).toHaveLength(1)
      })

      it(`fails the invocation, naming the record, when the answer would have to name it: ${name}`, async () => {
        const logger = recordingLogger()
        const lambda = middy(async (event: KinesisStreamEvent) =>
          Promise.allSettled(
            event.Records.map(async (_, i) => {
              if (i === 1) throw new Error('db down')
            }),
          ),
        ).use(partialFailures({ logger }))
        const answered = lambda(withUnreadable(spoil), lambdaContext())
        await expect(answered).rejects.toThrow(ConfigurationError)
        await expect(answered).rejects.toThrow(
          '@shardwise/partial-failures: Records[1] has no kinesis.sequenceNumber',
        )
        expect(logger.lines.map(({ level, message }) => [level, message])).toContainEqual([
          'error',
          'the invocation failed; Lambda will retry the whole batch',
        ])
      })
    }

    it('fails the invocation when the whole batch is to be retried and its first record cannot be named', async () => {
      for (const itemIdentifier of ['', 'not-a-record']) {
        const event = threeRecords()
        ;(event.Records as unknown[])[0] = null
        const lambda = middy(async () => ({ batchItemFailures: [{ itemIdentifier }] })).use(
          partialFailures({ logger: false }),
        )
        await expect(lambda(event, lambdaContext())).rejects.toThrow(
          'Records[0] has no kinesis.sequenceNumber',
        )
      }
    })

    it('answers as usual when the answer names no such record', async () => {
      const lambda = middy(async () => failed(2)).use(partialFailures({ logger: false }))
      expect(
        await lambda(
          withUnreadable((r) => (r[1] = null)),
          lambdaContext(),
        ),
      ).toEqual(failed(2))
      const succeeded = middy(async () => ({ batchItemFailures: [] })).use(
        partialFailures({ logger: false }),
      )
      expect(
        await succeeded(
          withUnreadable((r) => (r[0] = null)),
          lambdaContext(),
        ),
      ).toEqual({
        batchItemFailures: [],
      })
    })
  })

  it('logs each failure with its coordinates and one summary line', async () => {
    const logger = recordingLogger()
    const lambda = middy(
      eachRecord(async (record) => {
        if (record.sequenceNumber === sequenceNumber(1)) throw new Error('db down')
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    await lambda(threeRecords(), lambdaContext())
    const coordinates = {
      shardId: 'shardId-000000000006',
      sequenceNumber: sequenceNumber(1),
      subSequenceNumber: undefined,
      partitionKey: '1',
    }
    expect(logger.lines.map(({ level, message }) => [level, message])).toEqual([
      ['error', 'record failed'],
      ['debug', 'record failed: its stack and causes'],
      ['warn', 'batch done with failures'],
    ])
    expect(logger.lines[0]?.details).toEqual([
      {
        ...coordinates,
        stage: 'handler',
        errorName: 'RecordHandlerError',
        errorMessage: `record ${sequenceNumber(1)} of shardId-000000000006 (partition key "1"): the record handler failed: db down`,
      },
    ])
    expect(logger.lines[1]?.details).toEqual([
      { ...coordinates, error: expect.objectContaining({ cause: new Error('db down') }) },
    ])
    expect(logger.lines[2]?.details).toEqual([
      {
        lambdaRecords: 3,
        records: 3,
        succeeded: 1,
        diverted: 0,
        failed: 1,
        notHandled: 1,
        stages: { handler: 1 },
        checkpoint: sequenceNumber(1),
      },
    ])
  })

  it('logs nothing for a batch that succeeded', async () => {
    const logger = recordingLogger()
    const lambda = middy(eachRecord(async () => {}))
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    await lambda(threeRecords(), lambdaContext())
    expect(logger.lines).toEqual([])
  })

  it('logs through the Powertools Logger', async () => {
    // Powertools writes errors and warnings to stderr, the rest to stdout.
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const logger = new Logger({ serviceName: 'orders', logLevel: 'DEBUG' })
      const lambda = middy(
        eachRecord(async () => {
          throw new Error('boom')
        }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(0))
      const lines = [...stderr.mock.calls, ...stdout.mock.calls].map(([chunk]) =>
        JSON.parse(String(chunk)),
      )
      expect(lines.map((line) => [line.level, line.message])).toEqual([
        ['ERROR', 'record failed'],
        ['WARN', 'batch done with failures'],
        ['DEBUG', 'record failed: its stack and causes'],
      ])
      expect(lines[0]).toMatchObject({
        sequenceNumber: sequenceNumber(0),
        shardId: 'shardId-000000000006',
      })
    } finally {
      stdout.mockRestore()
      stderr.mockRestore()
    }
  })

  it('rethrows when the batch handler itself throws, so Lambda retries and can bisect', async () => {
    const logger = recordingLogger()
    const lambda = middy(async () => {
      throw new Error('no database connection')
    }).use(partialFailures({ logger }))
    await expect(lambda(threeRecords(), lambdaContext())).rejects.toThrow('no database connection')
    expect(logger.lines[0]?.message).toMatch(/Lambda will retry the whole batch/)
  })

  it('rejects a logger without the four levels when it is built', () => {
    expect(() => partialFailures({ logger: { error() {} } as never })).toThrow(
      /logger needs error, warn, info, debug methods/,
    )
    expect(() => partialFailures({ logger: 3 as never })).toThrow(/@shardwise\/partial-failures/)
  })
})
