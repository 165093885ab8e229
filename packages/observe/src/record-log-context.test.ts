import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, foldWindow, type Ordering, partialFailures } from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { captureStdout, kplAggregate } from './emf.fixture.js'
import { currentRecord, recordLogContext } from './record-log-context.js'

let stdout: ReturnType<typeof captureStdout>
beforeEach(() => {
  stdout = captureStdout()
})
afterEach(() => stdout.restore())

type Line = Record<string, unknown> & { message: string }
const logLines = () => stdout.lines.map((line) => JSON.parse(line) as Line)

/** Each record waits a different while, so that records of different keys interleave. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('recordLogContext', () => {
  it("puts the record's coordinates on every Powertools log line inside the handler, and none after", async () => {
    const logger = new Logger({ serviceName: 'orders' })
    const handler = middy(
      eachRecord(async (record) => {
        logger.info('saving', { partitionKeyLength: record.partitionKey.length })
        await pause(1)
        logger.info('saved')
      }),
    )
      .use(kinesisDecode())
      .use(recordLogContext({ logger }))
      .use(partialFailures({ logger: false }))
    const aggregate = kplAggregate([
      { partitionKey: 'user-1', data: Buffer.from('a') },
      { partitionKey: 'user-2', data: Buffer.from('b') },
    ])
    await handler(
      kinesisEvent([{ data: 'plain', partitionKey: 'k0' }, { data: aggregate }]),
      lambdaContext(),
    )
    logger.info('after the batch')

    const lines = logLines()
    expect(lines.map((line) => [line.message, line.partitionKey, line.subSequenceNumber])).toEqual([
      ['saving', 'k0', undefined],
      ['saved', 'k0', undefined],
      ['saving', 'user-1', 0],
      ['saved', 'user-1', 0],
      ['saving', 'user-2', 1],
      ['saved', 'user-2', 1],
      ['after the batch', undefined, undefined],
    ])
    expect(lines[0]).toMatchObject({
      shardId: 'shardId-000000000006',
      sequenceNumber: sequenceNumber(0),
      partitionKeyLength: 2,
      service: 'orders',
    })
    expect(lines[2]).toMatchObject({ sequenceNumber: sequenceNumber(1) })
    expect(lines[6]).not.toHaveProperty('shardId')
    expect(lines[6]).not.toHaveProperty('sequenceNumber')
  })

  it.each<Ordering>(['partitionKey', 'none'])(
    "keeps each record's keys apart while records run at once (ordering '%s')",
    async (ordering) => {
      const logger = new Logger()
      const seen: Array<string | undefined> = []
      const handler = middy(
        eachRecord(
          async (record) => {
            const me = record.sequenceNumber
            logger.info(`start ${me}`)
            await pause((Number(me.slice(-2)) * 7) % 5)
            seen.push(currentRecord()?.sequenceNumber)
            logger.info(`end ${me}`)
          },
          { ordering, concurrency: 8 },
        ),
      )
        .use(kinesisDecode())
        .use(recordLogContext({ logger }))
        .use(partialFailures({ logger: false }))
      const event = kinesisEvent(
        Array.from({ length: 24 }, (_, i) => ({ data: `r${i}`, partitionKey: `key-${i % 6}` })),
      )
      await handler(event, lambdaContext())

      const lines = logLines()
      expect(lines).toHaveLength(48)
      for (const line of lines) {
        const named = line.message.split(' ')[1] as string
        const position = Number(named.slice(-7))
        expect(line).toMatchObject({ sequenceNumber: named, partitionKey: `key-${position % 6}` })
      }
      // Records did overlap: some record started before the one before it ended.
      const order = lines.map((line) => line.message.split(' ')[0]).join(',')
      expect(order).toContain('start,start')
      expect(seen).toHaveLength(24)
      expect(seen.every((sequence) => sequence !== undefined)).toBe(true)
      expect(currentRecord()).toBeUndefined()
    },
  )

  it.each<Ordering>(['shard', 'partitionKey'])(
    'names the record as decoded, though the handler writes over its coordinates (ordering %s)',
    async (ordering) => {
      const logger = new Logger()
      const seen: unknown[] = []
      const handler = middy(
        eachRecord(
          async (record) => {
            // A payload with coordinates of its own, spread over the record.
            Object.assign(record, JSON.parse(new TextDecoder().decode(record.data)))
            await pause(1)
            seen.push(currentRecord())
            logger.info('saved')
          },
          { ordering },
        ),
      )
        .use(kinesisDecode())
        .use(recordLogContext({ logger }))
        .use(partialFailures({ logger: false }))
      const payload = JSON.stringify({
        shardId: 'shardId-999',
        sequenceNumber: '1',
        subSequenceNumber: 7,
        partitionKey: 'from the payload',
      })
      await handler(
        kinesisEvent([
          { data: payload, partitionKey: 'k0' },
          { data: payload, partitionKey: 'k1' },
        ]),
        lambdaContext(),
      )
      const decoded = [0, 1].map((i) => ({
        shardId: 'shardId-000000000006',
        sequenceNumber: sequenceNumber(i),
        subSequenceNumber: undefined,
        partitionKey: `k${i}`,
      }))
      expect(seen).toEqual(decoded)
      const lines = logLines().map(
        ({ shardId, sequenceNumber, subSequenceNumber, partitionKey }) => ({
          shardId,
          sequenceNumber,
          subSequenceNumber,
          partitionKey,
        }),
      )
      expect(lines).toEqual(decoded)
    },
  )

  it('names no record once the timeout guard gave up on the one that runs', async () => {
    const logger = new Logger()
    const handler = middy(
      eachRecord(async () => {
        logger.info('started')
        await new Promise(() => {})
      }),
    )
      .use(kinesisDecode())
      .use(recordLogContext({ logger }))
      .use(partialFailures({ logger }))
    // Powertools writes its warnings and errors on stderr.
    const stderr: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
      stderr.push(...String(chunk).split('\n').filter(Boolean))
      return true
    })
    // 1,000 ms of margin out of 1,050: the guard stops the batch after 50 ms.
    const answer = await handler(kinesisEvent([{ data: 'x' }, { data: 'y' }]), lambdaContext(1_050))
    spy.mockRestore()
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }] })
    expect(currentRecord()).toBeUndefined()
    const [started, ...out] = logLines()
    const after = [...out, ...stderr.map((line) => JSON.parse(line) as Line)]
    expect(started).toMatchObject({ message: 'started', sequenceNumber: sequenceNumber(0) })
    const summary = after.find((line) => line.message === 'batch done with failures')
    expect(summary).toBeDefined()
    expect(summary).not.toHaveProperty('sequenceNumber')
    expect(summary).not.toHaveProperty('partitionKey')
  })

  it('gives the coordinates to other loggers through currentRecord(), also without a Powertools logger', async () => {
    const got: unknown[] = []
    const handler = middy(
      eachRecord(() => {
        got.push(currentRecord())
      }),
    )
      .use(kinesisDecode())
      .use(recordLogContext())
      .use(partialFailures({ logger: false }))
    await handler(kinesisEvent([{ data: 'x', partitionKey: 'p' }]), lambdaContext())
    expect(got).toEqual([
      {
        shardId: 'shardId-000000000006',
        sequenceNumber: sequenceNumber(0),
        subSequenceNumber: undefined,
        partitionKey: 'p',
      },
    ])
    expect(currentRecord()).toBeUndefined()
  })

  it("hooks the children the logger makes, and lets the call's own keys win", async () => {
    const logger = new Logger()
    recordLogContext({ logger })
    const child = logger.createChild({ serviceName: 'child' })
    const handler = middy(
      eachRecord(() => {
        child.info('from the child')
        logger.info('overridden', { partitionKey: 'mine' })
      }),
    )
      .use(kinesisDecode())
      .use(recordLogContext({ logger }))
      .use(partialFailures({ logger: false }))
    await handler(kinesisEvent([{ data: 'x', partitionKey: 'p' }]), lambdaContext())
    expect(logLines()).toMatchObject([
      { message: 'from the child', service: 'child', partitionKey: 'p' },
      { message: 'overridden', partitionKey: 'mine', sequenceNumber: sequenceNumber(0) },
    ])
  })

  it("names the record in foldWindow's reduce too", async () => {
    const logger = new Logger()
    const handler = middy(
      foldWindow(
        (state: { count: number }) => {
          logger.info('folding')
          return { count: state.count + 1 }
        },
        { initialState: () => ({ count: 0 }) },
      ),
    )
      .use(kinesisDecode())
      .use(recordLogContext({ logger }))
      .use(partialFailures({ logger: false }))
    const event = {
      ...kinesisEvent([
        { data: 'x', partitionKey: 'p0' },
        { data: 'y', partitionKey: 'p1' },
      ]),
      window: { start: '2026-12-04T12:00:00Z', end: '2026-12-04T12:01:00Z' },
      state: {},
    }
    await expect(handler(event, lambdaContext())).resolves.toMatchObject({ state: { count: 2 } })
    expect(logLines().map((line) => line.partitionKey)).toEqual(['p0', 'p1'])
  })

  it('adds nothing in a chain without it, though the logger is hooked', async () => {
    const logger = new Logger()
    recordLogContext({ logger })
    const handler = middy(eachRecord(() => logger.info('plain')))
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    await handler(kinesisEvent([{ data: 'x' }]), lambdaContext())
    expect(logLines()[0]).not.toHaveProperty('sequenceNumber')
  })

  it('refuses a logger that is not a Powertools Logger, saying what to use instead', () => {
    expect(() => recordLogContext({ logger: console as never })).toThrow(
      "@shardwise/observe: Option 'logger' must be a Powertools Logger (@aws-lambda-powertools/logger 2); for another logger, read currentRecord() in its hooks",
    )
    expect(() => recordLogContext({ loger: new Logger() } as never)).toThrow(
      "Unknown option 'loger'",
    )
  })
})
