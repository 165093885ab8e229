import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { getBatch, type KinesisStreamEvent } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, recordingLogger, sequenceNumber } from '@shardwise/testing'
import { describe, expect, it, vi } from 'vitest'
import { eachRecord, partialFailures } from './index.js'

const threeRecords = () => kinesisEvent([{ data: 'a' }, { data: 'b' }, { data: 'c' }])
const failed = (position: number) => ({
  batchItemFailures: [{ itemIdentifier: sequenceNumber(position) }],
})

describe("a batch handler of one's own that answers in a form Lambda cannot read", () => {
  const malformed: ReadonlyArray<readonly [string, () => unknown, RegExp]> = [
    [
      'batchItemFailures an object, not a list',
      () => ({ batchItemFailures: { itemIdentifier: sequenceNumber(1) } }),
      /answered batchItemFailures: \{"itemIdentifier":"\d+"\}, which is not an array/,
    ],
    ['a string', () => 'ok', /answered string "ok"/],
    ['a number', () => 3, /answered number 3/],
    ['a boolean', () => true, /answered boolean true/],
    [
      'batchItemFailures a string',
      () => ({ batchItemFailures: sequenceNumber(1) }),
      /answered batchItemFailures: "\d+", which is not an array/,
    ],
    [
      'batchItemFailures a number',
      () => ({ batchItemFailures: 1 }),
      /answered batchItemFailures: 1, which is not an array/,
    ],
    [
      'batchItemFailures whose getter throws',
      () =>
        Object.defineProperty({}, 'batchItemFailures', {
          get() {
            throw new Error('no')
          },
        }),
      /answered an object whose batchItemFailures cannot be read \(no\)/,
    ],
    [
      'items without itemIdentifier',
      () => ({ batchItemFailures: [{ id: sequenceNumber(1) }, {}, null, 'x'] }),
      /reported 4 identifier\(s\) not in the batch/,
    ],
  ]
  for (const [name, answer, said] of malformed) {
    it(`retries the whole batch from its first record, and says why once: ${name}`, async () => {
      const logger = recordingLogger()
      const lambda = middy(async () => answer()).use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(0))
      const why = logger.lines.filter((line) => said.test(line.message))
      expect(why).toHaveLength(1)
      expect(why[0]?.level).toBe('error')
    })
  }

  it('keeps what Lambda reads as complete success', async () => {
    for (const answer of [
      undefined,
      null,
      {},
      { batchItemFailures: null },
      { batchItemFailures: [] },
    ]) {
      const logger = recordingLogger()
      const lambda = middy(async () => answer).use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual({ batchItemFailures: [] })
      expect(logger.lines).toEqual([])
    }
  })
})

describe('a logger that fails', () => {
  const failingEachRecord = () =>
    eachRecord(async (record) => {
      if (record.sequenceNumber === sequenceNumber(1)) throw new Error('db down')
    })
  const throwing = () => {
    throw new Error('transport down')
  }

  it('never changes the answer: every method throws', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const logger = { error: throwing, warn: throwing, info: throwing, debug: throwing }
      const lambda = middy(failingEachRecord())
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
      // Said once, through console, and the invocation goes on; once again the next time.
      expect(consoleError).toHaveBeenCalledTimes(1)
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
      expect(consoleError).toHaveBeenCalledTimes(2)
      expect(String(consoleError.mock.calls[0]?.[0])).toMatch(
        /the logger's error\(\) failed, its lines lost, the answer to Lambda unchanged: transport down/,
      )
    } finally {
      consoleError.mockRestore()
    }
  })

  it('never changes the answer: every method rejects (no unhandled rejection)', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const rejecting = async () => {
        throw new Error('async transport down')
      }
      const logger = { error: rejecting, warn: rejecting, info: rejecting, debug: rejecting }
      const lambda = middy(failingEachRecord())
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
      await new Promise((resolve) => setImmediate(resolve))
      expect(consoleError).toHaveBeenCalledTimes(1)
    } finally {
      consoleError.mockRestore()
    }
  })

  it("rethrows the batch handler's own error, not the logger's", async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const logger = { error: throwing, warn: throwing, info: throwing, debug: throwing }
      const lambda = middy(async () => {
        throw new Error('no database connection')
      }).use(partialFailures({ logger }))
      await expect(lambda(threeRecords(), lambdaContext())).rejects.toThrow(
        'no database connection',
      )
    } finally {
      consoleError.mockRestore()
    }
  })

  it('a Powertools Logger given an error whose cause chain loops still logs it, and the batch answers', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const logger = new Logger({ serviceName: 'orders', logLevel: 'DEBUG' })
      const lambda = middy(
        eachRecord(async (record) => {
          if (record.sequenceNumber !== sequenceNumber(1)) return
          const outer = new Error('outer')
          const inner = new Error('inner', { cause: outer })
          outer.cause = inner
          throw outer
        }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      expect(await lambda(threeRecords(), lambdaContext())).toEqual(failed(1))
      const lines = [...stderr.mock.calls, ...stdout.mock.calls].map(([chunk]) =>
        JSON.parse(String(chunk)),
      )
      const failure = lines.find((line) => line.message === 'record failed: its stack and causes')
      expect(failure.error).toMatchObject({
        name: 'RecordHandlerError',
        cause: {
          message: 'outer',
          cause: {
            message: 'inner',
            cause: '(the cause chain loops back here to link 1: outer)',
          },
        },
      })
      expect(failure.sequenceNumber).toBe(sequenceNumber(1))
    } finally {
      stdout.mockRestore()
      stderr.mockRestore()
    }
  })
})

describe("the answer to a batch handler of one's own that reports every record", () => {
  it('takes linear time: 10,000 records reported, each record read a few times at most', async () => {
    const size = 10_000
    const event: KinesisStreamEvent = kinesisEvent(
      Array.from({ length: size }, (_, i) => ({ data: String(i) })),
    )
    const reportAll = {
      batchItemFailures: event.Records.map((record) => ({
        itemIdentifier: record.kinesis.sequenceNumber,
      })).reverse(),
    }
    const decode = kinesisDecode()
    const request = { event, response: reportAll as unknown, context: lambdaContext() }
    await decode.before?.(request as never)
    // Counts how often the answer reads a record's place, in the batch and in the event:
    // comparing each reported item with every record read them 50 million times.
    let reads = 0
    const counted = (target: object, key: string) => {
      const value = (target as Record<string, unknown>)[key]
      Object.defineProperty(target, key, {
        get() {
          reads++
          return value
        },
      })
    }
    for (const record of getBatch(event)?.records ?? []) counted(record, 'sequenceNumber')
    for (const record of event.Records) counted(record.kinesis, 'sequenceNumber')
    await partialFailures({ logger: false }).after?.(request as never)
    expect(request.response).toEqual(failed(0))
    expect(reads).toBeLessThanOrEqual(4 * size)
  })
})
