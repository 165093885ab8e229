/**
 * Bad input, catalogued: one test per row of the table in packages/partial-failures/README.md
 * ("Bad input, catalogued"). Each goes through the chain as a user wires it and checks what the
 * user gets: the answer Lambda receives, the error (class, name, a message naming the record and
 * the cause, retryable or not), that the other records are unaffected, and what is logged.
 */
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import zlib from 'node:zlib'
import middy from '@middy/core'
import { avroParse, confluentSchemaRegistry, glueSchemaRegistry } from '@shardwise/avro-parse'
import {
  ConfigurationError,
  DecodeError,
  getBatch,
  ParseError,
  RecordError,
  RecordStatus,
  ValidationError,
} from '@shardwise/core'
import { jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  eachRecord,
  foldWindow,
  type KinesisRecord,
  NonRetryableError,
  PoisonSinkError,
  partialFailures,
  type RecordHandler,
  RecordHandlerError,
  WindowEndError,
} from '@shardwise/partial-failures'
import {
  kinesisEvent,
  lambdaContext,
  type RecordSpec,
  recordingLogger,
  sequenceNumber,
  settleOnFakeClock,
  windowEvent,
} from '@shardwise/testing'
import avro from 'avsc'
import type { KinesisStreamEvent } from 'aws-lambda'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { z } from 'zod'

const SHARD = 'shardId-000000000006'
const Order = z.object({ orderId: z.string(), quantity: z.number().int().positive() })
const order = (orderId: string, quantity = 1) => JSON.stringify({ orderId, quantity })

type Parser = Parameters<ReturnType<typeof middy>['use']>[0]

interface Wiring {
  parser?: Parser
  decode?: Parameters<typeof kinesisDecode>[0]
  handler?: RecordHandler<unknown>
  onPoison?: (record: KinesisRecord<unknown>, error: RecordError) => Promise<unknown>
  timeoutMarginMs?: number
}

/** The chain a user writes; `handled` lists the sequence numbers the record handler finished. */
function wire(wiring: Wiring = {}) {
  const logger = recordingLogger()
  const handled: string[] = []
  const started: string[] = []
  const user = wiring.handler ?? (() => {})
  let lambda = middy(
    eachRecord<unknown>(
      async (record, context, options) => {
        started.push(record.sequenceNumber)
        await user(record, context, options)
        handled.push(record.sequenceNumber)
      },
      { timeoutMarginMs: wiring.timeoutMarginMs ?? 1000 },
    ),
  ).use(kinesisDecode(wiring.decode))
  if (wiring.parser !== undefined) lambda = lambda.use(wiring.parser)
  lambda = lambda.use(
    partialFailures(
      wiring.onPoison === undefined ? { logger } : { logger, onPoison: wiring.onPoison },
    ),
  )
  return { lambda, logger, handled, started }
}

/** A good record, the bad one at position 1, a good record. */
const sandwich = (bad: RecordSpec['data'], good: RecordSpec['data'] = order('a')): RecordSpec[] => [
  { data: good },
  { data: bad, partitionKey: 'bad-key' },
  { data: good },
]

const answerAt = (position: number) => ({
  batchItemFailures: [{ itemIdentifier: sequenceNumber(position) }],
})

/** The stage each error class is logged with. */
const stageOf: Record<string, string> = {
  DecodeError: 'decode',
  ParseError: 'parse',
  ValidationError: 'validation',
  RecordError: 'validation',
  RecordHandlerError: 'handler',
  PoisonSinkError: 'poison sink',
}

/**
 * Runs a three-record sandwich and checks the common contract: Lambda is answered with exactly
 * the bad record, the record before it was handled, the one after it never started but was
 * decoded (and parsed) like any good record, and the log holds one line for the bad record with
 * its coordinates and error, and a warning summary. Returns the error, for row-specific checks.
 */
async function reportsTheBadRecord(
  run: ReturnType<typeof wire>,
  bad: RecordSpec['data'],
  expected: { type: new (...args: never[]) => RecordError; name: string; cause: RegExp },
  good: RecordSpec['data'] = order('a'),
): Promise<RecordError> {
  const event = kinesisEvent(sandwich(bad, good))
  const response = await run.lambda(event, lambdaContext())
  expect(response).toEqual(answerAt(1))
  expect(run.handled).toEqual([sequenceNumber(0)])

  const batch = getBatch(event)
  expect(batch?.status[2]).toBe(RecordStatus.Pending)
  expect(batch?.errors.has(2)).toBe(false)
  expect(batch?.records[2]?.data).toEqual(batch?.records[0]?.data)

  const [failed, stack, summary, ...rest] = run.logger.lines
  expect(rest).toEqual([])
  expect(failed?.level).toBe('error')
  expect(failed?.message).toBe('record failed')
  const error = batch?.errors.get(1) as RecordError
  expect(failed?.details).toEqual([
    {
      shardId: SHARD,
      sequenceNumber: sequenceNumber(1),
      subSequenceNumber: undefined,
      partitionKey: 'bad-key',
      stage: stageOf[expected.name],
      errorName: expected.name,
      errorMessage: error.message,
    },
  ])
  // The error itself, for its stack and causes, at debug.
  expect(stack).toMatchObject({
    level: 'debug',
    message: 'record failed: its stack and causes',
    details: [{ sequenceNumber: sequenceNumber(1), error }],
  })
  expect(error).toBeInstanceOf(expected.type)
  expect(error.name).toBe(expected.name)
  expect(error.message).toContain(
    `record ${sequenceNumber(1)} of ${SHARD} (partition key "bad-key"): `,
  )
  expect(error.message).toMatch(expected.cause)
  expect(summary).toMatchObject({
    level: 'warn',
    message: 'batch done with failures',
    details: [{ lambdaRecords: 3, failed: 1, checkpoint: sequenceNumber(1), succeeded: 1 }],
  })
  return error
}

describe('bad bytes fail their record alone', () => {
  it('bad base64: DecodeError, not retryable', async () => {
    const error = await reportsTheBadRecord(
      wire({ parser: jsonParse({ schema: Order }) }),
      { base64: 'eyJvcmRlcklkIjoi*A==' },
      { type: DecodeError, name: 'DecodeError', cause: /data is not valid base64$/ },
    )
    expect(error.retryable).toBe(false)
  })

  it('corrupt gzip: DecodeError with the zlib error as cause', async () => {
    const gzip = zlib.gzipSync(order('a'))
    const corrupt = Buffer.concat([gzip.subarray(0, 10), Buffer.from('not deflate at all')])
    const error = await reportsTheBadRecord(wire({ parser: jsonParse() }), corrupt, {
      type: DecodeError,
      name: 'DecodeError',
      cause: /data is not valid gzip: invalid block type$/,
    })
    expect(error.cause).toMatchObject({ code: 'Z_DATA_ERROR' })
    expect(error.retryable).toBe(false)
  })

  it('corrupt zstd: DecodeError with the zstd error as cause', async () => {
    const corrupt = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8])
    const error = await reportsTheBadRecord(wire({ parser: jsonParse() }), corrupt, {
      type: DecodeError,
      name: 'DecodeError',
      cause: /data is not valid zstd: /,
    })
    expect(error.cause).toBeInstanceOf(Error)
    expect(error.retryable).toBe(false)
  })

  it('over maxDecompressedBytes: DecodeError naming the limit', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(1024 * 1024, 0x20))
    expect(bomb.length).toBeLessThan(2048)
    const error = await reportsTheBadRecord(
      wire({ parser: jsonParse(), decode: { maxDecompressedBytes: 64 * 1024 } }),
      bomb,
      {
        type: DecodeError,
        name: 'DecodeError',
        cause:
          /data decompresses \(gzip\) to more than 65536 bytes, the maxDecompressedBytes limit$/,
      },
    )
    expect(error.cause).toMatchObject({ code: 'ERR_BUFFER_TOO_LARGE' })
  })

  it('KPL magic with a bad MD5: passed on as a plain record, as the KCL does, then not JSON', async () => {
    const { RecordAggregator } = createRequire(import.meta.url)('aws-kinesis-agg') as {
      RecordAggregator: new () => {
        addUserRecord(record: { partitionKey: string; data: Buffer }): void
        build(): { data: Buffer }
      }
    }
    const aggregator = new RecordAggregator()
    aggregator.addUserRecord({ partitionKey: 'p', data: Buffer.from(order('inner')) })
    const aggregate = Buffer.from(aggregator.build().data)
    const last = aggregate.length - 1
    aggregate[last] = (aggregate[last] as number) ^ 0xff

    // Without a parser the record handler gets the carrier's bytes, untouched.
    const seen: Uint8Array[] = []
    const plain = wire({ handler: (record) => void seen.push(record.data as Uint8Array) })
    const plainEvent = kinesisEvent([{ data: aggregate }])
    expect(await plain.lambda(plainEvent, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(Buffer.from(seen[0] as Uint8Array).equals(aggregate)).toBe(true)
    expect(getBatch(plainEvent)?.records[0]?.subSequenceNumber).toBeUndefined()

    // With jsonParse it fails alone: the magic bytes are not UTF-8, and the message says what
    // the bytes are.
    await reportsTheBadRecord(wire({ parser: jsonParse({ schema: Order }) }), aggregate, {
      type: ParseError,
      name: 'ParseError',
      cause:
        /: is not valid UTF-8 \(it starts with the KPL magic: an aggregate kinesisDecode did not expand, as its MD5 is wrong or deaggregate is false\)$/,
    })
  })
})

describe('bad JSON fails its record alone', () => {
  it('not UTF-8: ParseError', async () => {
    const error = await reportsTheBadRecord(
      wire({ parser: jsonParse() }),
      Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      { type: ParseError, name: 'ParseError', cause: /: is not valid UTF-8$/ },
    )
    expect(error.cause).toBeInstanceOf(TypeError)
    expect(error.retryable).toBe(false)
  })

  it('not JSON: ParseError with the JSON error', async () => {
    const error = await reportsTheBadRecord(wire({ parser: jsonParse() }), '{"orderId": "a",', {
      type: ParseError,
      name: 'ParseError',
      cause: /: is not valid JSON: /,
    })
    expect(error.cause).toBeInstanceOf(SyntaxError)
  })

  it('a prototype-polluting key: ParseError naming the key and where it is', async () => {
    await reportsTheBadRecord(
      wire({ parser: jsonParse() }),
      '{"order":{"__proto__":{"isAdmin":true}}}',
      {
        type: ParseError,
        name: 'ParseError',
        cause:
          /has a "__proto__" key at order, refused: merged into an object, it could pollute prototypes$/,
      },
    )
    await reportsTheBadRecord(
      wire({ parser: jsonParse() }),
      '{"constructor":{"prototype":{"isAdmin":true}}}',
      { type: ParseError, name: 'ParseError', cause: /has a "constructor.prototype" key/ },
    )
    expect(({} as { isAdmin?: unknown }).isAdmin).toBeUndefined()
  })

  it('a schema mismatch (zod): ValidationError with each issue and its path', async () => {
    const error = await reportsTheBadRecord(
      wire({ parser: jsonParse({ schema: Order }) }),
      JSON.stringify({ orderId: 7, quantity: 0 }),
      {
        type: ValidationError,
        name: 'ValidationError',
        cause: /: does not match the schema: orderId: .*string.*; quantity: Too small/,
      },
    )
    expect((error as ValidationError).issues.map((issue) => issue.path)).toEqual([
      ['orderId'],
      ['quantity'],
    ])
    expect(error.retryable).toBe(false)
  })
})

const Reading = {
  type: 'record',
  name: 'Reading',
  fields: [
    { name: 'sensor', type: 'string' },
    { name: 'celsius', type: 'double' },
  ],
}
const reading = avro.Type.forSchema(Reading as avro.Schema)
const datum = (sensor: string) => reading.toBuffer({ sensor, celsius: 21.5 })
const confluent = (id: number, body: Buffer) => {
  const header = Buffer.alloc(5)
  header.writeUInt32BE(id, 1)
  return Buffer.concat([header, body])
}

/** A Confluent registry that knows schema 1 only, on 127.0.0.1; closed after `use`. */
async function withRegistry<T>(use: (url: string) => Promise<T>): Promise<T> {
  const server = createServer((request, response) => {
    if (request.url === '/schemas/ids/1') {
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({ schema: JSON.stringify(Reading) }))
    } else {
      response.statusCode = 404
      response.end(JSON.stringify({ error_code: 40403, message: 'Schema not found' }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
}

describe('bad Avro fails its record alone', () => {
  const avroSandwich = (bad: Buffer) =>
    kinesisEvent([
      { data: confluent(1, datum('s0')) },
      { data: bad, partitionKey: 'bad-key' },
      { data: confluent(1, datum('s2')) },
    ])

  it('a wrong magic byte: ParseError naming the byte', async () => {
    await withRegistry(async (url) => {
      const parser = avroParse({ registry: confluentSchemaRegistry({ url }) })
      const run = wire({ parser })
      const event = avroSandwich(Buffer.from(order('a')))
      expect(await run.lambda(event, lambdaContext())).toEqual(answerAt(1))
      const error = getBatch(event)?.errors.get(1)
      expect(error).toBeInstanceOf(ParseError)
      expect(error?.message).toBe(
        `record ${sequenceNumber(1)} of ${SHARD} (partition key "bad-key"): is not in the Confluent wire format: it starts with byte 0x7b, not the magic byte 0x00`,
      )
      expect(getBatch(event)?.records[2]?.data).toEqual({ sensor: 's2', celsius: 21.5 })
      expect(run.logger.lines[1]?.details[0]).toMatchObject({ error })
    })
  })

  it('a truncated datum: ParseError saying where it ends', async () => {
    const error = await reportsTheBadRecord(
      wire({ parser: avroParse({ schema: Reading }) }),
      datum('s1').subarray(0, 5),
      {
        type: ParseError,
        name: 'ParseError',
        cause: /: is not a valid Avro datum of the schema: it ends early, after 5 bytes$/,
      },
      datum('s0'),
    )
    expect(error.retryable).toBe(false)
  })

  it('trailing bytes: ParseError counting them', async () => {
    await reportsTheBadRecord(
      wire({ parser: avroParse({ schema: Reading }) }),
      Buffer.concat([datum('s1'), Buffer.from([0, 0])]),
      {
        type: ParseError,
        name: 'ParseError',
        cause: /: has 2 trailing bytes after the Avro datum of the schema$/,
      },
      datum('s0'),
    )
  })

  it('an unknown schema id with the registry down: retryable SchemaRegistryError, never diverted', async () => {
    // A port that was just closed: the connection is refused at once.
    const url = await withRegistry(async (url) => url)
    const sunk: string[] = []
    const run = wire({
      parser: avroParse({ registry: confluentSchemaRegistry({ url, timeout: 2000 }) }),
      onPoison: async (record) => void sunk.push(record.sequenceNumber),
    })
    const event = kinesisEvent([{ data: confluent(9, datum('s0')), partitionKey: 'bad-key' }])
    expect(await run.lambda(event, lambdaContext())).toEqual(answerAt(0))
    expect(run.handled).toEqual([])
    expect(sunk).toEqual([])
    const error = getBatch(event)?.errors.get(0)
    expect(error?.name).toBe('SchemaRegistryError')
    expect(error?.retryable).toBe(true)
    expect(error?.message).toMatch(
      new RegExp(
        `^record ${sequenceNumber(0)} of ${SHARD} \\(partition key "bad-key"\\): cannot get schema 9 of the Confluent Schema Registry at ${url}: GET /schemas/ids/9 failed: connect ECONNREFUSED `,
      ),
    )
    expect(run.logger.lines.map((line) => [line.level, line.message])).toEqual([
      ['error', 'record failed'],
      ['debug', 'record failed: its stack and causes'],
      ['warn', 'batch done with failures'],
    ])
    expect(run.logger.lines[0]?.details[0]).toMatchObject({ stage: 'decode' })
  })

  it('an unknown schema id with the registry up: the 404 is in the message, and it is final', async () => {
    await withRegistry(async (url) => {
      const run = wire({ parser: avroParse({ registry: confluentSchemaRegistry({ url }) }) })
      const event = avroSandwich(confluent(404, datum('s1')))
      expect(await run.lambda(event, lambdaContext())).toEqual(answerAt(1))
      expect(run.handled).toEqual([sequenceNumber(0)])
      const error = getBatch(event)?.errors.get(1)
      expect(error?.name).toBe('SchemaRegistryError')
      expect(error?.message).toMatch(
        /cannot get schema 404 of .*: GET \/schemas\/ids\/404 answered HTTP 404: Schema not found \(error 40403\)$/,
      )
      expect(error?.retryable).toBe(false)
    })
  })

  it('Glue zlib datums past maxBatchInflatedBytes: the first over it fails alone, retryable; one alone over it is poison', async () => {
    const client = {
      send: async () => ({ DataFormat: 'AVRO', SchemaDefinition: JSON.stringify(Reading) }),
    }
    const glue = (sensor: string) =>
      Buffer.concat([Buffer.of(3, 5), Buffer.alloc(16, 7), zlib.deflateSync(datum(sensor))])
    const limit = 2 * datum('s0').length
    const registry = glueSchemaRegistry({ client, maxBatchInflatedBytes: limit })
    const run = wire({ parser: avroParse({ registry }), onPoison: async () => {} })
    const event = kinesisEvent(['s0', 's1', 's2', 's3'].map((sensor) => ({ data: glue(sensor) })))
    expect(await run.lambda(event, lambdaContext())).toEqual(answerAt(2))
    expect(run.handled).toEqual([sequenceNumber(0), sequenceNumber(1)])
    const error = getBatch(event)?.errors.get(2)
    expect(error).toBeInstanceOf(DecodeError)
    expect(error?.message).toBe(
      `record ${sequenceNumber(2)} of ${SHARD} (partition key "1"): its zlib-compressed Glue datum does not fit in what is left of maxBatchInflatedBytes (${limit}), the most one invocation inflates; Lambda delivers it again, in a later invocation with a fresh budget`,
    )
    expect(error?.retryable).toBe(true)
    // Lambda delivers again from record 2, in an invocation of its own budget.
    const again = kinesisEvent(['s2', 's3'].map((sensor) => ({ data: glue(sensor) })))
    expect(await run.lambda(again, lambdaContext())).toEqual({ batchItemFailures: [] })
    const alone = kinesisEvent([{ data: glue('s'.repeat(limit)) }])
    expect(await run.lambda(alone, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(getBatch(alone)?.errors.get(0)?.message).toMatch(
      /; its Kinesis record alone inflates to more than that, so no invocation can inflate it$/,
    )
    expect(getBatch(alone)?.status[0]).toBe(RecordStatus.Diverted)
  })
})

describe('an event that is not a Kinesis batch fails the invocation', () => {
  it.each([
    ['an SQS event', { Records: [{ eventSource: 'aws:sqs', body: '{}' }] }, 'got aws:sqs'],
    [
      'a DynamoDB stream event',
      { Records: [{ eventSource: 'aws:dynamodb', dynamodb: {} }] },
      'got aws:dynamodb',
    ],
    ['an event without Records', { detail: {} }, 'got an event without Records'],
    ['null', null, 'got null'],
    ['a null first record', { Records: [null] }, 'got records without eventSource'],
  ])('%s: ConfigurationError, thrown, logged once', async (_kind, event, got) => {
    const run = wire()
    const invocation = run.lambda(event as unknown as KinesisStreamEvent, lambdaContext())
    await expect(invocation).rejects.toThrow(ConfigurationError)
    await invocation.catch((error: Error) => {
      expect(error.name).toBe('ConfigurationError')
      expect(error.message).toBe(`@shardwise/kinesis-decode: expected an aws:kinesis event, ${got}`)
      expect(run.logger.lines).toEqual([
        {
          level: 'error',
          message: 'the invocation failed; Lambda will retry the whole batch',
          details: [{ errorName: 'ConfigurationError', errorMessage: error.message }],
        },
        {
          level: 'debug',
          message: 'the invocation failed: its stack and causes',
          details: [{ error }],
        },
      ])
    })
    expect(run.started).toEqual([])
  })

  it('a record without a sequence number: ConfigurationError naming its position', async () => {
    const event = kinesisEvent([{ data: order('a') }, { data: order('b') }])
    const second = event.Records[1] as KinesisStreamEvent['Records'][number]
    delete (second.kinesis as { sequenceNumber?: string }).sequenceNumber
    const run = wire()
    await expect(run.lambda(event, lambdaContext())).rejects.toThrow(
      '@shardwise/kinesis-decode: Records[1] has no kinesis.sequenceNumber',
    )
    expect(run.started).toEqual([])
  })
})

describe('edge batches', () => {
  it('a record without an eventID: handled, with an empty shard id', async () => {
    const event = kinesisEvent([{ data: order('a') }])
    delete (event.Records[0] as { eventID?: string }).eventID
    const shards: string[] = []
    const run = wire({ handler: (record) => void shards.push(record.shardId) })
    expect(await run.lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(shards).toEqual([''])
  })

  it('an empty batch: an empty answer, nothing handled, nothing logged', async () => {
    const run = wire()
    expect(await run.lambda({ Records: [] }, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(run.started).toEqual([])
    expect(run.logger.lines).toEqual([])
  })
})

describe('a record handler that misbehaves fails its record alone', () => {
  const failingAt =
    (thrown: () => unknown): RecordHandler<unknown> =>
    async (record) => {
      if (record.partitionKey === 'bad-key') throw thrown()
    }

  it.each([
    ['a string', () => 'database busy', /: the record handler failed: database busy$/],
    [
      'a plain object',
      () => ({ code: 'EBUSY', attempt: 3 }),
      /: the record handler failed: non-Error value thrown: {"code":"EBUSY","attempt":3}$/,
    ],
    ['null', () => null, /: the record handler failed: non-Error value thrown: null$/],
    [
      'undefined',
      () => undefined,
      /: the record handler failed: non-Error value thrown: undefined$/,
    ],
  ])(
    'throws %s: RecordHandlerError, retryable, the value as cause',
    async (_kind, thrown, cause) => {
      const value = thrown()
      const error = await reportsTheBadRecord(wire({ handler: failingAt(thrown) }), order('b'), {
        type: RecordHandlerError,
        name: 'RecordHandlerError',
        cause,
      })
      expect(error.cause).toEqual(value)
      expect(error.retryable).toBe(true)
    },
  )

  it('throws synchronously (not an async function): RecordHandlerError', async () => {
    const run = wire({
      handler: (record) => {
        if (record.partitionKey === 'bad-key') throw new RangeError('quantity out of range')
      },
    })
    const error = await reportsTheBadRecord(run, order('b'), {
      type: RecordHandlerError,
      name: 'RecordHandlerError',
      cause: /: the record handler failed: quantity out of range$/,
    })
    expect(error.cause).toBeInstanceOf(RangeError)
  })

  it('never settles: the timeout guard answers with that record before the timeout', async () => {
    let aborted: unknown
    const run = wire({
      timeoutMarginMs: 150,
      handler: (record, _context, { signal }) => {
        if (record.partitionKey !== 'bad-key') return undefined
        signal.addEventListener('abort', () => {
          aborted = signal.reason
        })
        return new Promise(() => {})
      },
    })
    // On the fake clock, so that a busy machine cannot move the guard's timer past the deadline.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    const context = lambdaContext(400)
    const event = kinesisEvent(sandwich(order('b')))
    try {
      expect(await settleOnFakeClock(vi, run.lambda(event, context))).toEqual(answerAt(1))
      expect(context.getRemainingTimeInMillis()).toBe(150)
    } finally {
      vi.useRealTimers()
    }
    expect(run.started).toEqual([sequenceNumber(0), sequenceNumber(1)])
    expect(run.handled).toEqual([sequenceNumber(0)])
    expect(aborted).toMatchObject({
      name: 'TimeoutError',
      message: 'the invocation stops 150 ms before its timeout',
    })
    // The record was cut off, not failed: it has no error of its own, only its place.
    expect(getBatch(event)?.status[1]).toBe(RecordStatus.Pending)
    expect(run.logger.lines.map((line) => [line.level, line.message, line.details[0]])).toEqual([
      [
        'error',
        'record not finished: cut off by the timeout guard, or reported by the handler',
        {
          shardId: 'shardId-000000000006',
          sequenceNumber: sequenceNumber(1),
          subSequenceNumber: undefined,
          partitionKey: expect.any(String),
          stage: 'handler',
        },
      ],
      [
        'warn',
        'batch done with failures',
        expect.objectContaining({ checkpoint: sequenceNumber(1), succeeded: 1, notHandled: 2 }),
      ],
    ])
  })
})

describe('poison records', () => {
  const poisonAt: RecordHandler<unknown> = (record) => {
    if (record.partitionKey === 'bad-key') throw new NonRetryableError('unknown product')
  }

  it('without onPoison: reported like any failure, the shard stops at it', async () => {
    const error = await reportsTheBadRecord(wire({ handler: poisonAt }), order('b'), {
      type: RecordHandlerError,
      name: 'RecordHandlerError',
      cause: /: the record handler failed: unknown product$/,
    })
    expect(error.retryable).toBe(false)
    expect(error.cause).toBeInstanceOf(NonRetryableError)
  })

  it('with onPoison: the sink takes it with its raw bytes and error, the batch goes on', async () => {
    const sunk: Array<{ record: KinesisRecord<unknown>; error: RecordError }> = []
    const run = wire({
      handler: poisonAt,
      onPoison: async (record, error) => void sunk.push({ record, error }),
    })
    const event = kinesisEvent(sandwich(order('b')))
    expect(await run.lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(run.handled).toEqual([sequenceNumber(0), sequenceNumber(2)])
    expect(sunk).toHaveLength(1)
    const { record, error } = sunk[0] as (typeof sunk)[number]
    expect(record.sequenceNumber).toBe(sequenceNumber(1))
    expect(Buffer.from(record.rawData).toString()).toBe(order('b'))
    expect(error).toBeInstanceOf(RecordHandlerError)
    expect(error.message).toBe(
      `record ${sequenceNumber(1)} of ${SHARD} (partition key "bad-key"): the record handler failed: unknown product`,
    )
    expect(run.logger.lines.map((line) => [line.level, line.message])).toEqual([
      ['warn', 'record sent to the poison sink'],
      ['debug', 'record sent to the poison sink: its stack and causes'],
      ['warn', 'batch done with failures'],
    ])
    expect(run.logger.lines[0]?.details[0]).toEqual({
      shardId: SHARD,
      sequenceNumber: sequenceNumber(1),
      subSequenceNumber: undefined,
      partitionKey: 'bad-key',
      stage: 'handler',
      errorName: 'RecordHandlerError',
      errorMessage: error.message,
    })
    expect(run.logger.lines[1]?.details[0]).toMatchObject({ error })
  })

  it('with onPoison, bad bytes are poison too: a bad base64 record is diverted', async () => {
    const sunk: RecordError[] = []
    const run = wire({
      parser: jsonParse({ schema: Order }),
      onPoison: async (_record, error) => void sunk.push(error),
    })
    const event = kinesisEvent(sandwich({ base64: 'not base64!' }))
    expect(await run.lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(run.handled).toEqual([sequenceNumber(0), sequenceNumber(2)])
    expect(sunk.map((error) => error.name)).toEqual(['DecodeError'])
  })

  it('with an onPoison that rejects: PoisonSinkError, reported, the shard stops at it', async () => {
    const run = wire({
      handler: poisonAt,
      onPoison: async () => {
        throw new Error('queue unavailable')
      },
    })
    const error = await reportsTheBadRecord(run, order('b'), {
      type: PoisonSinkError,
      name: 'PoisonSinkError',
      cause:
        /: the poison sink failed \(queue unavailable\) for: record .*: the record handler failed: unknown product$/,
    })
    expect(error.retryable).toBe(true)
  })
})

describe('values the library did not create', () => {
  const revoked = () => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }
  const unreadable =
    'non-Error value thrown: an object that JSON.stringify and String cannot show (both threw)'

  it.each([
    ['a revoked Proxy', revoked, unreadable],
    [
      'an Error whose message and name getters throw',
      () =>
        Object.defineProperties(new Error('hidden'), {
          message: {
            get() {
              throw new Error('no')
            },
          },
          name: {
            get() {
              throw new Error('no')
            },
          },
        }),
      'an Error whose message or name getter threw',
    ],
    ['a Symbol', () => Symbol('busy'), 'non-Error value thrown: Symbol(busy)'],
  ])(
    'the record handler throws %s: RecordHandlerError, retryable, saying what could be read',
    async (_kind, thrown, message) => {
      const run = wire({
        handler: async (record) => {
          if (record.partitionKey === 'bad-key') throw thrown()
        },
      })
      const error = await reportsTheBadRecord(run, order('b'), {
        type: RecordHandlerError,
        name: 'RecordHandlerError',
        cause: new RegExp(`: the record handler failed: ${literally(message)}$`),
      })
      expect(error.retryable).toBe(true)
    },
  )

  it('onPoison rejects with a revoked Proxy: PoisonSinkError, reported, the shard stops at it', async () => {
    const run = wire({
      handler: async (record) => {
        if (record.partitionKey === 'bad-key') throw new NonRetryableError('unknown product')
      },
      onPoison: async () => {
        throw revoked()
      },
    })
    await reportsTheBadRecord(run, order('b'), {
      type: PoisonSinkError,
      name: 'PoisonSinkError',
      cause: new RegExp(`: the poison sink failed \\(${literally(unreadable)}\\) for: record `),
    })
  })

  it("a schema's validate or a reviver throws a revoked Proxy: the record fails, named", async () => {
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'hostile',
        validate: (value: unknown) => {
          if ((value as { orderId?: unknown }).orderId === 'b') throw revoked()
          return { value }
        },
      },
    }
    await reportsTheBadRecord(wire({ parser: jsonParse({ schema }) }), order('b'), {
      type: RecordError,
      name: 'RecordError',
      cause: new RegExp(`: the schema threw: ${literally(unreadable)}$`),
    })
    const reviver = (key: string, value: unknown) => {
      if (key === 'orderId' && value === 'b') throw revoked()
      return value
    }
    await reportsTheBadRecord(wire({ parser: jsonParse({ reviver }) }), order('b'), {
      type: ParseError,
      name: 'ParseError',
      cause: new RegExp(`: the reviver threw: ${literally(unreadable)}$`),
    })
  })
})

describe('time and order', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("a slow asynchronous schema: validated at each record's turn, the guard answers with the records handled", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    const Slow = Order.refine(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      return true
    })
    const run = wire({ parser: jsonParse({ schema: Slow, validationConcurrency: 1 }) })
    const event = kinesisEvent(Array.from({ length: 200 }, (_, i) => ({ data: order(`o${i}`) })))
    const answer = await settleOnFakeClock(vi, run.lambda(event, lambdaContext(2000)))
    // 200 validations of 20 ms one at a time take 4 s, twice the time left: the guard answers
    // 1,000 ms before the deadline, naming the first record not handled.
    expect(run.handled.length).toBeGreaterThan(10)
    expect(run.handled.length).toBeLessThan(200)
    expect(answer).toEqual(answerAt(run.handled.length))
  })

  it('Avro: a registry that never answers a look-up: the guard answers with the records handled', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
    // Schema 1 answers; schema 2's look-up never settles (a registry of your own, no timeout).
    const registry = {
      readFrame: (payload: Buffer) => ({ id: payload.readUInt32BE(1), bytes: payload, start: 5 }),
      lookUp: (id: string | number) =>
        id === 1
          ? Promise.resolve({ definition: Reading, references: [] })
          : new Promise<never>(() => {}),
      describe: (id: string | number) => `schema ${id}`,
    }
    const run = wire({ parser: avroParse({ registry }) })
    const known = confluent(1, datum('s'))
    await run.lambda(kinesisEvent([{ data: known }]), lambdaContext(60_000))
    run.handled.length = 0
    let answer: unknown
    const event = kinesisEvent([
      { data: known },
      { data: known },
      { data: confluent(2, datum('s')) },
      { data: known },
    ])
    void run.lambda(event, lambdaContext(1500)).then((a) => {
      answer = a
    })
    // The guard fires 1,000 ms before the deadline; records 0 and 1 decoded at once.
    await vi.advanceTimersByTimeAsync(500)
    expect(answer).toEqual(answerAt(2))
    expect(run.handled).toEqual([sequenceNumber(0), sequenceNumber(1)])
  })

  it.each(['partitionKey', 'none'] as const)(
    'a poison record after one that fails retryably, in %s order: not sent to the sink, it comes again',
    async (ordering) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
      const sunk: string[] = []
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
      const lambda = middy(
        eachRecord<unknown>(
          async (record) => {
            const position = Number(record.sequenceNumber.slice(-7))
            // Record 1 fails retryably at 20 ms; record 2, started beside it, is poison at 5 ms.
            if (position === 1) {
              await sleep(20)
              throw new Error('database busy')
            }
            if (position === 2) {
              await sleep(5)
              throw new NonRetryableError('unknown product')
            }
          },
          { ordering },
        ),
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(
          partialFailures({
            logger: false,
            onPoison: async (record) => void sunk.push(record.sequenceNumber),
          }),
        )
      const event = kinesisEvent(
        ['a', 'b', 'c'].map((data, i) => ({ data: order(data), partitionKey: `k${i}` })),
      )
      expect(await settleOnFakeClock(vi, lambda(event, lambdaContext()))).toEqual(answerAt(1))
      expect(sunk).toEqual([])
    },
  )

  it.each([
    ['Infinity', Number.POSITIVE_INFINITY],
    ['NaN', Number.NaN],
    ['2^31', 2 ** 31],
  ])(
    'a remaining time of %s: no deadline known, the whole batch runs, said at debug level',
    async (_what, remaining) => {
      const logger = recordingLogger()
      const lambda = middy(
        eachRecord(async () => {
          await new Promise((resolve) => setTimeout(resolve, 1))
        }),
        // middy's own early timeout reads the remaining time too: off, as it has the same clamp.
        { timeoutEarlyInMillis: 0 },
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger }))
      const event = kinesisEvent(Array.from({ length: 20 }, (_, i) => ({ data: order(`o${i}`) })))
      const context = { ...lambdaContext(), getRemainingTimeInMillis: () => remaining }
      expect(await lambda(event, context)).toEqual({ batchItemFailures: [] })
      expect(logger.lines.map((line) => [line.level, line.message])).toEqual([
        [
          'debug',
          `no deadline known: getRemainingTimeInMillis() answered ${String(remaining)}, not 0 to 2^31 - 1 ms; the timeout guard is off for this batch`,
        ],
      ])
    },
  )

  it('onWindowEnd throws anything: WindowEndError with it as cause, the invocation fails', async () => {
    const thrown = Symbol('store down')
    const lambda = middy(
      foldWindow((state: { n: number }) => ({ n: state.n + 1 }), {
        initialState: () => ({ n: 0 }),
        onWindowEnd: () => {
          throw thrown
        },
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const event = windowEvent([{ data: order('a') }], {}, true)
    const failure = await lambda(event, lambdaContext()).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(WindowEndError)
    expect(failure).toMatchObject({
      message: `@shardwise/partial-failures: onWindowEnd failed for the window from 2026-11-25T10:00:00Z to 2026-11-25T10:05:00Z of ${SHARD}; Lambda retries the invocation: non-Error value thrown: Symbol(store down)`,
      cause: thrown,
    })
  })
})

function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

describe('the answer and the log, whatever the handler and the logger do', () => {
  it('many small corrupt compressed records: each fails alone, and the valid compressed ones after them decode', async () => {
    const corrupt = Buffer.from('1f8b0800000000000003ffffff', 'hex')
    const run = wire({ parser: jsonParse(), onPoison: async () => {} })
    const records: RecordSpec[] = Array.from({ length: 16 }, () => ({ data: corrupt }))
    records.push({ data: zlib.gzipSync(order('after')) })
    const event = kinesisEvent(records)
    expect(await run.lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [],
    })
    expect(run.handled).toEqual([sequenceNumber(16)])
    const batch = getBatch(event)
    for (let i = 0; i < 16; i++) {
      expect(batch?.errors.get(i)?.message).toMatch(/: data is not valid gzip: /)
    }
  })

  it("a batch handler of one's own answers batchItemFailures that is not a list: the whole batch is retried, said once", async () => {
    const logger = recordingLogger()
    const lambda = middy(async () => ({
      batchItemFailures: { itemIdentifier: sequenceNumber(2) },
    }))
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    const event = kinesisEvent(sandwich(order('b')))
    expect(await lambda(event, lambdaContext())).toEqual(answerAt(0))
    const said = logger.lines.filter((line) => /which is not an array/.test(line.message))
    expect(said).toHaveLength(1)
    expect(said[0]?.message).toMatch(/retrying the whole batch$/)
  })

  it('a logger whose calls throw: the answer is the same, and console says once that the lines are lost', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {})
    const down = () => {
      throw new Error('log transport down')
    }
    try {
      const lambda = middy(
        eachRecord(async (record: KinesisRecord) => {
          if (record.sequenceNumber === sequenceNumber(1)) throw new Error('db down')
        }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger: { error: down, warn: down, info: down, debug: down } }))
      expect(await lambda(kinesisEvent(sandwich(order('b'))), lambdaContext())).toEqual(answerAt(1))
      expect(consoleError).toHaveBeenCalledTimes(1)
    } finally {
      consoleError.mockRestore()
    }
  })

  it("a batch handler of one's own reports all 10,000 records: answered with the first, in linear time", async () => {
    const event = kinesisEvent(Array.from({ length: 10_000 }, (_, i) => ({ data: order(`${i}`) })))
    const reportAll = {
      batchItemFailures: event.Records.map((record) => ({
        itemIdentifier: record.kinesis.sequenceNumber,
      })),
    }
    // Counts how often the answer reads a record's place: comparing each reported item with
    // every record read them 50 million times, in 3 to 5 s outside the timeout guard.
    let reads = 0
    const lambda = middy(async (decoded: KinesisStreamEvent) => {
      for (const record of getBatch(decoded)?.records ?? []) {
        const value = record.sequenceNumber
        Object.defineProperty(record, 'sequenceNumber', {
          get: () => {
            reads++
            return value
          },
        })
      }
      return reportAll
    })
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    expect(await lambda(event, lambdaContext())).toEqual(answerAt(0))
    expect(reads).toBeLessThanOrEqual(4 * 10_000)
  })
})

describe('a handler that writes over its record', () => {
  it('a handler writes its payload over its record: the checkpoint and the error name the record that failed', async () => {
    const claimsNine = (i: number) =>
      JSON.stringify({
        i,
        sequenceNumber: sequenceNumber(9),
        shardId: 'shardId-9',
        partitionKey: 'x',
      })
    const run = wire({
      handler: (record) => {
        Object.assign(record, JSON.parse(Buffer.from(record.data as Uint8Array).toString()))
        if ((record as unknown as { i: number }).i === 3) throw new Error('db down')
      },
    })
    const event = kinesisEvent(
      Array.from({ length: 10 }, (_, i) => ({ data: claimsNine(i), partitionKey: `k${i}` })),
    )
    expect(await run.lambda(event, lambdaContext())).toEqual(answerAt(3))
    const failed = run.logger.lines.find(
      (line) => line.message === 'record failed: its stack and causes',
    )
    expect(failed?.details[0]).toMatchObject({
      shardId: SHARD,
      sequenceNumber: sequenceNumber(3),
      partitionKey: 'k3',
      error: { sequenceNumber: sequenceNumber(3), shardId: SHARD, partitionKey: 'k3' },
    })
  })
})
