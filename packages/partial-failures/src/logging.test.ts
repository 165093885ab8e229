/**
 * The exact lines a person reads: one line per failed record (its coordinates, the stage, the
 * error's name and message), its stack and causes at debug, and a summary only when something
 * failed; through a Powertools Logger and through console.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { coordinatesAt, failRecord, getBatch, RecordError } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eachRecord, NonRetryableError, partialFailures } from './index.js'
import type { Logger as LoggerLike } from './partial-failures.js'

const SHARD = 'shardId-000000000006'
const prefix = (position: number, key: string) =>
  `record ${sequenceNumber(position)} of ${SHARD} (partition key "${key}"): `

/**
 * Record 1 is not base64 (decode), record 3 is not either; record 0's handler call fails with a
 * cause, so the loop stops there and Lambda is answered with record 0.
 */
function chain(logger: LoggerLike) {
  const lambda = middy(
    eachRecord(async (record) => {
      if (record.partitionKey === 'k0') {
        throw new Error('orders table unavailable', { cause: new Error('socket hang up') })
      }
    }),
  )
    .use(kinesisDecode())
    .use(partialFailures({ logger }))
  const event = kinesisEvent([
    { data: 'a', partitionKey: 'k0' },
    { data: { base64: '!!!!' }, partitionKey: 'k1' },
    { data: 'c', partitionKey: 'k2' },
    { data: { base64: 'not base64' }, partitionKey: 'k3' },
  ])
  return { lambda, event }
}

const handlerLine = {
  shardId: SHARD,
  sequenceNumber: sequenceNumber(0),
  partitionKey: 'k0',
  stage: 'handler',
  errorName: 'RecordHandlerError',
  errorMessage: `${prefix(0, 'k0')}the record handler failed: orders table unavailable`,
}
const decodeLine = (position: number) => ({
  shardId: SHARD,
  sequenceNumber: sequenceNumber(position),
  partitionKey: `k${position}`,
  stage: 'decode',
  errorName: 'DecodeError',
  errorMessage: `${prefix(position, `k${position}`)}data is not valid base64`,
})
const summary = {
  lambdaRecords: 4,
  failed: 3,
  records: 4,
  succeeded: 0,
  diverted: 0,
  notHandled: 1,
  stages: { decode: 2, handler: 1 },
  checkpoint: sequenceNumber(0),
}

afterEach(() => {
  vi.restoreAllMocks()
  vi.unstubAllEnvs()
})

describe('with console', () => {
  function spied() {
    const said: Array<[string, ...unknown[]]> = []
    for (const level of ['error', 'warn', 'info', 'debug'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        said.push([level, ...args])
      })
    }
    return said
  }

  it('says each failed record in one line of JSON after the message, and one summary: nothing more at INFO', async () => {
    vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', 'INFO')
    const said = spied()
    const { lambda, event } = chain(console)
    await lambda(event, lambdaContext())
    expect(said).toEqual([
      ['error', `record failed ${JSON.stringify(decodeLine(1))}`],
      ['error', `record failed ${JSON.stringify(decodeLine(3))}`],
      ['error', `record failed ${JSON.stringify(handlerLine)}`],
      ['warn', `batch done with failures ${JSON.stringify(summary)}`],
    ])
  })

  it('adds each error with its stack and causes when the function logs at DEBUG', async () => {
    vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', 'DEBUG')
    const said = spied()
    const { lambda, event } = chain(console)
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(0) }],
    })
    const lines = said.filter(([level]) => level !== 'debug')
    expect(lines).toEqual([
      ['error', `record failed ${JSON.stringify(decodeLine(1))}`],
      ['error', `record failed ${JSON.stringify(decodeLine(3))}`],
      ['error', `record failed ${JSON.stringify(handlerLine)}`],
      ['warn', `batch done with failures ${JSON.stringify(summary)}`],
    ])
    for (const [, line] of lines) expect(line).not.toContain('\n')

    const debug = said.filter(([level]) => level === 'debug')
    expect(debug.map(([, message]) => message)).toEqual([
      'record failed: its stack and causes',
      'record failed: its stack and causes',
      'record failed: its stack and causes',
    ])
    const handlerDetails = debug[2]?.[2] as { error: Error; sequenceNumber: string }
    expect(handlerDetails.sequenceNumber).toBe(sequenceNumber(0))
    expect(handlerDetails.error.stack).toMatch(/^RecordHandlerError: record /)
    expect((handlerDetails.error.cause as Error).message).toBe('orders table unavailable')
    expect(((handlerDetails.error.cause as Error).cause as Error).message).toBe('socket hang up')
  })

  it('says nothing for a batch that succeeded', async () => {
    const said = spied()
    const lambda = middy(eachRecord(async () => {}))
      .use(kinesisDecode())
      .use(partialFailures({ logger: console }))
    await lambda(kinesisEvent([{ data: 'a' }, { data: 'b' }]), lambdaContext())
    expect(said).toEqual([])
  })

  it('says a record sent to the poison sink as one warn line, and summarizes the batch', async () => {
    const said = spied()
    const lambda = middy(
      eachRecord(async (record) => {
        if (record.partitionKey === 'k1') throw new NonRetryableError('order 17 is malformed')
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: console, onPoison: async () => {} }))
    const event = kinesisEvent([
      { data: 'a', partitionKey: 'k0' },
      { data: 'b', partitionKey: 'k1' },
    ])
    expect(await lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(said.filter(([level]) => level !== 'debug')).toEqual([
      [
        'warn',
        `record sent to the poison sink ${JSON.stringify({
          shardId: SHARD,
          sequenceNumber: sequenceNumber(1),
          partitionKey: 'k1',
          stage: 'handler',
          errorName: 'RecordHandlerError',
          errorMessage: `${prefix(1, 'k1')}the record handler failed: order 17 is malformed`,
        })}`,
      ],
      [
        'warn',
        `batch done with failures ${JSON.stringify({
          lambdaRecords: 2,
          failed: 0,
          records: 2,
          succeeded: 1,
          diverted: 1,
          notHandled: 0,
          stages: { handler: 1 },
          checkpoint: null,
        })}`,
      ],
    ])
  })

  it("gives the stage as unknown for a record error that is not Shardwise's", async () => {
    const said = spied()
    class LookupError extends RecordError {
      override name = 'LookupError'
    }
    const lambda = middy(eachRecord(async () => {}))
      .use(kinesisDecode())
      .use({
        before(request) {
          const batch = getBatch(request.event)
          if (batch) failRecord(batch, 0, new LookupError(coordinatesAt(batch, 0), 'no customer'))
        },
      })
      .use(partialFailures({ logger: console }))
    await lambda(kinesisEvent([{ data: 'a', partitionKey: 'k0' }]), lambdaContext())
    expect(said[0]).toEqual([
      'error',
      `record failed ${JSON.stringify({
        shardId: SHARD,
        sequenceNumber: sequenceNumber(0),
        partitionKey: 'k0',
        stage: 'unknown',
        errorName: 'LookupError',
        errorMessage: `${prefix(0, 'k0')}no customer`,
      })}`,
    ])
  })

  it('says a batch handler that threw in one line, its stack at debug', async () => {
    vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', '')
    vi.stubEnv('LOG_LEVEL', 'debug')
    const said = spied()
    const failure = new TypeError('cannot read properties of undefined')
    const lambda = middy(async () => {
      throw failure
    }).use(partialFailures({ logger: console }))
    await expect(lambda(kinesisEvent([{ data: 'a' }]), lambdaContext())).rejects.toBe(failure)
    expect(said).toEqual([
      [
        'error',
        `the invocation failed; Lambda will retry the whole batch ${JSON.stringify({
          errorName: 'TypeError',
          errorMessage: 'cannot read properties of undefined',
        })}`,
      ],
      ['debug', 'the invocation failed: its stack and causes', { error: failure }],
    ])
  })
})

describe('with a Powertools Logger', () => {
  async function run(logLevel: 'INFO' | 'DEBUG') {
    // Powertools writes errors and warnings to stderr, the rest to stdout.
    const written: string[] = []
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk))
        return true
      })
    }
    const { lambda, event } = chain(new Logger({ serviceName: 'orders', logLevel }))
    await lambda(event, lambdaContext())
    vi.restoreAllMocks()
    return written.map((line) => {
      const { timestamp, ...rest } = JSON.parse(line)
      expect(typeof timestamp).toBe('string')
      return rest as Record<string, unknown>
    })
  }

  const line = (level: string, message: string, fields: object) => ({
    level,
    message,
    sampling_rate: 0,
    service: 'orders',
    ...fields,
  })

  it('writes one JSON line per failed record with its fields as keys, and one summary, at INFO', async () => {
    const lines = await run('INFO')
    expect(lines).toEqual([
      line('ERROR', 'record failed', decodeLine(1)),
      line('ERROR', 'record failed', decodeLine(3)),
      line('ERROR', 'record failed', handlerLine),
      line('WARN', 'batch done with failures', summary),
    ])
  })

  it('adds each error with its stack and cause chain at DEBUG', async () => {
    const lines = await run('DEBUG')
    const debug = lines.filter((each) => each.level === 'DEBUG')
    expect(debug).toHaveLength(3)
    expect(debug[2]).toMatchObject({
      message: 'record failed: its stack and causes',
      sequenceNumber: sequenceNumber(0),
      error: {
        name: 'RecordHandlerError',
        stack: expect.stringMatching(/^RecordHandlerError: record .*\n\s+at /),
        cause: {
          message: 'orders table unavailable',
          cause: { message: 'socket hang up' },
        },
      },
    })
    expect(lines.filter((each) => each.level !== 'DEBUG')).toHaveLength(4)
  })
})
