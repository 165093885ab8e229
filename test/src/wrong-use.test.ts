/**
 * The chain as a new user gets it wrong: middlewares in another order, one left out or doubled,
 * a handler of their own, an event from another source. Each either works or fails with an
 * error that says what to do, and never answers a checkpoint past a record that did not succeed.
 */
import middy, { type MiddlewareObj } from '@middy/core'
import eventNormalizer from '@middy/event-normalizer'
import { avroParse } from '@shardwise/avro-parse'
import { ConfigurationError, type KinesisStreamBatchResponse } from '@shardwise/core'
import { jsonParse } from '@shardwise/json-parse'
import { DEFER_FROM, kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { invoke, kinesisEvent, lambdaContext, sequenceNumber } from '@shardwise/testing'
import type { KinesisStreamEvent } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'

/** Six orders; record 2 is not JSON and record 4's handler fails. */
const ordersEvent = () =>
  kinesisEvent(
    ['{"id":0}', '{"id":1}', '{"id": ', '{"id":3}', '{"id":4}', '{"id":5}'].map((data) => ({
      data,
    })),
  )

function ordersHandler(handled: unknown[]) {
  return eachRecord<{ id: number }>(async (record) => {
    if (!(typeof record.data === 'object' && record.data !== null && 'id' in record.data)) {
      throw new Error(`not an order: ${String(record.data)}`)
    }
    handled.push(record.data.id)
  })
}

const named = {
  kinesisDecode: () => kinesisDecode(),
  jsonParse: () => jsonParse() as MiddlewareObj,
  partialFailures: () => partialFailures({ logger: false }) as MiddlewareObj,
}
type Name = keyof typeof named

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items]
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  )
}

describe('the middlewares in any .use() order', () => {
  it.each(
    permutations(Object.keys(named) as Name[]).map((order) => [order.join(', '), order] as const),
  )('%s', async (_name, order) => {
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
    for (const name of order) lambda.use(named[name]())
    const parseFirst = order.indexOf('jsonParse') < order.indexOf('kinesisDecode')
    if (parseFirst) {
      await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(
        '@shardwise/json-parse: the event has no decoded records; add .use(kinesisDecode()) before .use(jsonParse())',
      )
      expect(handled).toEqual([])
      return
    }
    expect(await lambda(ordersEvent(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }],
    })
    expect(handled).toEqual([0, 1])
  })
})

describe('partialFailures with a handler of your own', () => {
  const chain = (handler: (event: KinesisStreamEvent) => Promise<unknown>) =>
    middy(handler)
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }) as MiddlewareObj)

  it('keeps the batchItemFailures the handler answers', async () => {
    const lambda = chain(async () => ({
      batchItemFailures: [
        { itemIdentifier: sequenceNumber(4) },
        { itemIdentifier: sequenceNumber(1) },
      ],
    }))
    expect(
      await lambda(
        kinesisEvent([{ data: 'a' }, { data: 'b' }, { data: 'c' }, { data: 'd' }, { data: 'e' }]),
        lambdaContext(),
      ),
    ).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
  })

  it('retries the whole batch when the handler throws', async () => {
    const lambda = chain(async () => {
      throw new Error('database down')
    })
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow('database down')
  })

  it('reports a record that decoding failed even when the handler says nothing', async () => {
    const lambda = chain(async () => undefined)
    const event = kinesisEvent([{ data: 'a' }, { data: { base64: '!!' } }, { data: 'c' }])
    expect(await lambda(event, lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(1) }],
    })
  })

  it('places Promise.allSettled results on the records of the event', async () => {
    const lambda = chain(async (event) =>
      Promise.allSettled(
        event.Records.map(async (_record, i) => {
          if (i === 2) throw new Error('no')
        }),
      ),
    )
    expect(await lambda(ordersEvent(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }],
    })
  })
})

describe('eachRecord without partialFailures', () => {
  it('answers the first record that did not succeed by itself', async () => {
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
    expect(await lambda(ordersEvent(), lambdaContext())).toEqual({
      batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }],
    })
    expect(handled).toEqual([0, 1])
  })

  it('says what to add when kinesisDecode is missing', async () => {
    const lambda = middy(ordersHandler([]))
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(
      'add .use(kinesisDecode()) to the middy chain',
    )
  })

  it('carries the state on a tumbling window event, without which Lambda fails the invocation', async () => {
    const lambda = middy(ordersHandler([])).use(kinesisDecode())
    const event = {
      ...kinesisEvent([{ data: '1' }]),
      window: { start: '2020-12-09T07:04:00Z', end: '2020-12-09T07:06:00Z' },
      state: { '1': 282 },
      shardId: 'shardId-000000000006',
      isFinalInvokeForWindow: false,
      isWindowTerminatedEarly: false,
    }
    const answer = (await lambda(event, lambdaContext())) as KinesisStreamBatchResponse & {
      state?: unknown
    }
    expect(answer.state).toEqual({ '1': 282 })
  })
})

describe('the parser left out of the chain', () => {
  const Order = z.object({ id: z.number() })

  it('with the generic form, every record fails as retryable: the shard would stall on it', async () => {
    const lambda = middy(
      eachRecord<{ id: number }>(async (record) => {
        if (typeof record.data.id !== 'number') throw new Error('no id')
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const { verdict } = await invoke(lambda, ordersEvent())
    expect(verdict).toMatchObject({ outcome: 'partial', done: [], checkpoint: sequenceNumber(0) })
  })

  it.each([
    [
      'jsonParse({ schema })',
      () => jsonParse({ schema: Order }),
      'jsonParse({ schema }) of @shardwise/json-parse',
    ],
    [
      'avroParse({ schema })',
      () =>
        avroParse<{ id: number }>({
          schema: { type: 'record', name: 'O', fields: [{ name: 'id', type: 'int' }] },
        }),
      'avroParse({ schema }) of @shardwise/avro-parse',
    ],
  ])(
    'with eachRecord(parse, handler), %s: the invocation throws a ConfigurationError naming the parser, no record runs',
    async (_, make, named) => {
      const parse = make()
      const handled: unknown[] = []
      const lambda = middy(eachRecord(parse, async (record) => void handled.push(record.data.id)))
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      const { error, verdict } = await invoke(lambda, ordersEvent())
      expect(error).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toContain(
        `was given ${named}, which did not run on this batch`,
      )
      expect(handled).toEqual([])
      expect(verdict).toMatchObject({
        outcome: 'failure',
        done: [],
        retried: ordersEvent().Records.map((r) => r.kinesis.sequenceNumber),
      })
    },
  )

  it('with eachRecord(parse, handler) and the parser in the chain, after kinesisDecode: the records are typed and handled', async () => {
    const parse = jsonParse({ schema: Order })
    const handled: number[] = []
    const lambda = middy(eachRecord(parse, async (record) => void handled.push(record.data.id)))
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const { verdict } = await invoke(lambda, ordersEvent())
    expect(handled).toEqual([0, 1])
    expect(verdict).toMatchObject({ outcome: 'partial', checkpoint: sequenceNumber(2) })
  })
})

describe('a middleware twice', () => {
  const twice =
    "@shardwise/kinesis-decode: kinesisDecode() is in the middy chain twice; the second would decode again, undoing what ran between (a parser's values and failures): keep one"

  it('two kinesisDecode()s: the invocation fails, saying to keep one, before any record runs', async () => {
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
      .use(kinesisDecode())
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(partialFailures({ logger: false }))
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(twice)
    expect(handled).toEqual([])
  })

  it('a second kinesisDecode() after jsonParse never hands a record that failed parsing to the handler', async () => {
    const handled: string[] = []
    const lambda = middy(
      eachRecord(async (record) => {
        handled.push(record.sequenceNumber)
      }),
    )
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(twice)
    expect(handled).toEqual([])
  })

  it('calling the handler again with the same event object decodes it again', async () => {
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(partialFailures({ logger: false }))
    const event = ordersEvent()
    const first = await lambda(event, lambdaContext())
    expect(await lambda(event, lambdaContext())).toEqual(first)
    expect(handled).toEqual([0, 1, 0, 1])
  })

  it('two jsonParse()s: the invocation fails, saying to keep one', async () => {
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(jsonParse() as MiddlewareObj)
      .use(partialFailures({ logger: false }))
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(
      'jsonParse() of @shardwise/json-parse: jsonParse() of @shardwise/json-parse parsed the batch before it; keep one',
    )
    expect(handled).toEqual([])
  })

  it.each([
    ['jsonParse()', () => jsonParse() as MiddlewareObj],
    ['avroParse()', () => avroParse({ schema: 'string' }) as MiddlewareObj],
  ])(
    'a parser after jsonParse({ schema }) on a batch of large records: the invocation fails as well (%s)',
    async (_, second) => {
      // Large records are parsed at their turn: the second parser found their bytes, where it
      // found the small records' values and threw. jsonParse() alone then parsed them at their
      // turn (the first one's schema never asked), avroParse() failed them all as bad Avro.
      const large = (id: string) => JSON.stringify({ id, pad: 'x'.repeat(DEFER_FROM) })
      const strict = jsonParse({ schema: z.object({ id: z.string().startsWith('ok-') }) })
      const handled: unknown[] = []
      const sunk: unknown[] = []
      const lambda = middy(eachRecord(strict, (record) => void handled.push(record.data)))
        .use(kinesisDecode())
        .use(strict)
        .use(second())
        .use(
          partialFailures({
            logger: false,
            onPoison: async (record) => void sunk.push(record.sequenceNumber),
          }) as MiddlewareObj,
        )
      const event = kinesisEvent([large('ok-0'), large('refused')].map((data) => ({ data })))
      await expect(lambda(event, lambdaContext())).rejects.toThrow(ConfigurationError)
      expect(handled).toEqual([])
      expect(sunk).toEqual([])
    },
  )
})

describe('@middy/event-normalizer, already in the stack', () => {
  const chain = (normalizerFirst: boolean, keepText = false) => {
    const sunk: unknown[] = []
    const handled: unknown[] = []
    const lambda = middy(ordersHandler(handled))
    const shardwise = [
      kinesisDecode(),
      jsonParse() as MiddlewareObj,
      partialFailures({
        logger: false,
        onPoison: async (record) => {
          sunk.push(keepText ? Buffer.from(record.rawData).toString() : record.sequenceNumber)
        },
      }) as MiddlewareObj,
    ]
    const normalizer = eventNormalizer() as MiddlewareObj
    lambda.use(normalizerFirst ? [normalizer, ...shardwise] : [...shardwise, normalizer])
    return { lambda, sunk, handled }
  }

  it('before kinesisDecode: the invocation fails, saying which middleware decoded the data, and no record goes to the sink', async () => {
    const { lambda, sunk, handled } = chain(true)
    await expect(lambda(ordersEvent(), lambdaContext())).rejects.toThrow(
      "@shardwise/kinesis-decode: Records[0].kinesis.data is an object, not Lambda's base64: a middleware before kinesisDecode decoded it (as @middy/event-normalizer does); remove it, or .use() it after kinesisDecode()",
    )
    expect(sunk).toEqual([])
    expect(handled).toEqual([])
  })

  it('before kinesisDecode, with text payloads: the sink keeps each text as it was sent', async () => {
    const { lambda, sunk } = chain(true, true)
    const event = kinesisEvent([{ data: 'plain text' }, { data: 'more text' }])
    expect(await lambda(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(sunk).toEqual(['plain text', 'more text'])
  })

  it('after kinesisDecode: no harm done', async () => {
    const { lambda, sunk, handled } = chain(false)
    expect(await lambda(ordersEvent(), lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(sunk).toEqual([sequenceNumber(2)])
    expect(handled).toEqual([0, 1, 3, 4, 5])
  })
})

describe('an event that is not a Kinesis batch', () => {
  const chain = () =>
    middy(ordersHandler([]))
      .use(kinesisDecode())
      .use(jsonParse() as MiddlewareObj)
      .use(partialFailures({ logger: false }))

  it.each([
    [
      'SQS',
      {
        Records: [
          {
            messageId: '059f36b4-87a3-44ab-83d2-661975830a7d',
            receiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a',
            body: 'test',
            attributes: {},
            messageAttributes: {},
            md5OfBody: '098f6bcd4621d373cade4e832627b4f6',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-2:123456789012:my-queue',
            awsRegion: 'us-east-2',
          },
        ],
      },
      'got aws:sqs',
    ],
    [
      'DynamoDB Streams',
      {
        Records: [
          {
            eventID: '1',
            eventName: 'INSERT',
            eventVersion: '1.0',
            eventSource: 'aws:dynamodb',
            awsRegion: 'us-east-1',
            dynamodb: {
              Keys: { Id: { N: '101' } },
              SequenceNumber: '111',
              SizeBytes: 26,
              StreamViewType: 'NEW_AND_OLD_IMAGES',
            },
            eventSourceARN: 'stream-ARN',
          },
        ],
      },
      'got aws:dynamodb',
    ],
    [
      'an API Gateway test event',
      {
        body: 'eyJ0ZXN0IjoiYm9keSJ9',
        resource: '/{proxy+}',
        path: '/path/to/resource',
        httpMethod: 'POST',
        isBase64Encoded: true,
        queryStringParameters: { foo: 'bar' },
        headers: { Accept: 'text/html' },
        requestContext: { accountId: '123456789012', stage: 'prod' },
      },
      'got an event without Records',
    ],
    [
      "the Lambda console's hello-world test event",
      { key1: 'value1', key2: 'value2' },
      'got an event without Records',
    ],
  ])(
    '%s: a ConfigurationError saying what it expected and what came',
    async (_name, event, got) => {
      await expect(chain()(event as never, lambdaContext())).rejects.toThrow(
        `@shardwise/kinesis-decode: expected an aws:kinesis event, ${got}`,
      )
    },
  )

  it('an empty Records: an empty answer', async () => {
    expect(await chain()({ Records: [] }, lambdaContext())).toEqual({ batchItemFailures: [] })
  })
})
