import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate } from 'node:timers/promises'
import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InvocationRecord } from './destination.js'
import type { MappingEvent } from './event.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { type MappingStats, runMapping } from './mapping.js'
import { produce } from './produce.js'
import { kinesisClient } from './shards.js'
import { progressLine, summary } from './summary.js'

let kinesis: LocalKinesis
let dir: string
let streams = 0

beforeAll(async () => {
  kinesis = await startLocalKinesis()
  dir = await mkdtemp(join(tmpdir(), 'shardwise-local-'))
})
afterAll(async () => {
  await kinesis.close()
})

const text = new TextEncoder()
const decode = (data: string) => Buffer.from(data, 'base64').toString('utf8')

async function stream(messages: string[], shards = 1): Promise<string> {
  const name = `s${++streams}`
  await kinesis.createStream(name, shards)
  await putAll(name, messages)
  return name
}

async function putAll(name: string, messages: string[]) {
  await produce(
    { client: kinesis.client, stream: name },
    messages.map((m) => ({ partitionKey: m.split('-')[0] as string, data: text.encode(m) })),
  )
}

const quick = { exitWhenIdleSeconds: 0.3, pollIntervalMs: 50, timeoutSeconds: 5 }

/**
 * A clock that moves only when the mapping waits for a retry: Lambda's backoff, which takes a
 * minute of real time, takes none. It stops the run once `stopAfterMs` have passed.
 */
function fakeClock(options: { startMs?: number; stopAfterMs?: number; stop?: AbortController }) {
  const startMs = options.startMs ?? Date.now()
  const clock = {
    nowMs: startMs,
    waits: [] as number[],
    now: () => clock.nowMs,
    sleep: async (ms: number) => {
      clock.waits.push(ms)
      clock.nowMs += ms
      if (options.stopAfterMs !== undefined && clock.nowMs - startMs > options.stopAfterMs) {
        options.stop?.abort()
      }
      await setImmediate()
    },
  }
  return clock
}

// Each test runs a real poller against kinesalite: a second alone, several under a full
// parallel test run on 2 cores, so vitest's 5 s default is too tight.
describe('runMapping against kinesalite', { timeout: 60_000 }, () => {
  it('invokes the handler with Lambda events and a context counting down from the timeout', async () => {
    const name = await stream(['a-1', 'a-2', 'a-3'])
    const events: MappingEvent[] = []
    let remaining = 0
    const stats = await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      handler: async (event, context) => {
        events.push(event)
        remaining = context.getRemainingTimeInMillis()
      },
    })
    expect(events.flatMap((e) => e.Records.map((r) => decode(r.kinesis.data)))).toEqual([
      'a-1',
      'a-2',
      'a-3',
    ])
    const record = events[0]?.Records[0]
    expect(record?.eventID).toBe(`shardId-000000000000:${record?.kinesis.sequenceNumber}`)
    expect(record?.eventSourceARN).toBe(`arn:aws:kinesis:us-east-1:000000000000:stream/${name}`)
    expect(remaining).toBeGreaterThan(4000)
    expect(remaining).toBeLessThanOrEqual(5000)
    expect(stats).toMatchObject({ recordsRead: 3, recordsSucceeded: 3, invocations: 1 })
  })

  it('puts the region asked for in awsRegion and eventSourceARN, whatever kinesalite was started with', async () => {
    const name = await stream(['a-1'])
    const events: MappingEvent[] = []
    await runMapping({
      ...quick,
      stream: name,
      endpoint: kinesis.endpoint,
      region: 'ap-southeast-2',
      handler: async (event: MappingEvent) => {
        events.push(event)
      },
    })
    expect(events[0]?.Records[0]).toMatchObject({
      awsRegion: 'ap-southeast-2',
      eventSourceARN: `arn:aws:kinesis:ap-southeast-2:000000000000:stream/${name}`,
    })

    const local = await startLocalKinesis({ region: 'eu-west-1' })
    try {
      await local.createStream('regional', 1)
      const summary = await local.client.send(
        new DescribeStreamSummaryCommand({ StreamName: 'regional' }),
      )
      expect(summary.StreamDescriptionSummary?.StreamARN).toBe(
        'arn:aws:kinesis:eu-west-1:000000000000:stream/regional',
      )
      await produce({ client: local.client, stream: 'regional' }, [
        { partitionKey: 'a', data: text.encode('a-1') },
      ])
      const seen: MappingEvent[] = []
      await runMapping({
        ...quick,
        stream: 'regional',
        client: local.client,
        handler: async (event: MappingEvent) => {
          seen.push(event)
        },
      })
      expect(seen[0]?.Records[0]).toMatchObject({
        awsRegion: 'eu-west-1',
        eventSourceARN: 'arn:aws:kinesis:eu-west-1:000000000000:stream/regional',
      })
    } finally {
      await local.close()
    }
  })

  it('starts no batch after the signal aborts, even with records ready and one failing for ever', async () => {
    const name = await stream(Array.from({ length: 200 }, (_, i) => `k${i % 5}-${i}`))
    const stop = new AbortController()
    let invocations = 0
    let afterAbort = 0
    const stats = await runMapping({
      pollIntervalMs: 50,
      timeoutSeconds: 5,
      stream: name,
      client: kinesis.client,
      signal: stop.signal,
      clock: fakeClock({}),
      mapping: { batchSize: 10, functionResponseTypes: ['ReportBatchItemFailures'] },
      handler: async (event: MappingEvent) => {
        if (stop.signal.aborted) afterAbort++
        if (++invocations === 3) stop.abort()
        // The first record fails every time (retries are unlimited by default).
        return { batchItemFailures: [{ itemIdentifier: event.Records[0]?.kinesis.sequenceNumber }] }
      },
    })
    expect(afterAbort).toBe(0)
    expect(stats.invocations).toBe(3)
  })

  it.each([
    ['throws', {}, () => Promise.reject(new Error('always'))],
    // An answer without `state` fails a tumbling window's invocation: paced the same.
    [
      'never returns state in a tumbling window',
      { tumblingWindowInSeconds: 900 },
      async () => ({}),
    ],
  ] as const)(
    'paces the retries of a handler that %s: 8 invocations in 60 s of the clock, as AWS recorded',
    async (_, mapping, handler) => {
      const name = await stream(['a-1'])
      const stop = new AbortController()
      const clock = fakeClock({ stopAfterMs: 60_000, stop })
      const at: number[] = []
      const stats = await runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        signal: stop.signal,
        clock,
        mapping: { batchSize: 1, ...mapping },
        handler: () => {
          at.push(clock.now())
          return handler()
        },
      })
      // Capped exponential backoff, 1 s doubling to 12 s: the 9th would come at 63 s.
      expect(at.map((ms) => ms - (at[0] as number))).toEqual([
        0, 1000, 3000, 7000, 15_000, 27_000, 39_000, 51_000,
      ])
      expect(clock.waits).toEqual([1000, 2000, 4000, 8000, 12_000, 12_000, 12_000, 12_000])
      expect(stats).toMatchObject({ invocations: 8, retries: 8, retryWaitMs: 63_000 })
    },
  )

  it('yields between invocations: timers and kinesalite keep answering while a handler fails at once', async () => {
    const name = await stream(['a-1'])
    const stop = new AbortController()
    // No backoff at all: the worst case, a handler that throws at once, retried at once.
    const clock = { now: () => Date.now(), sleep: async () => {} }
    let invocations = 0
    let progress = 0
    let described = 0
    // The run ends once both timers have been seen twice, however slow the machine, or at the
    // 200,000th invocation, which only a lane loop that never yields reaches first.
    const stopOnceSeen = () => {
      if (progress > 1 && described > 1) stop.abort()
    }
    const asking = setInterval(() => {
      kinesis.client.send(new DescribeStreamSummaryCommand({ StreamName: name })).then(() => {
        described++
        stopOnceSeen()
      })
    }, 20)
    try {
      await runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        signal: stop.signal,
        clock,
        onProgress: () => {
          progress++
          stopOnceSeen()
        },
        progressIntervalMs: 50,
        handler: () => {
          // Without a yield, the timer above never runs: stop here rather than spin for ever.
          if (++invocations === 200_000) stop.abort()
          throw new Error('always')
        },
      })
    } finally {
      clearInterval(asking)
    }
    expect(invocations).toBeLessThan(200_000)
    expect(progress).toBeGreaterThan(1)
    expect(described).toBeGreaterThan(1)
  })

  it('produces more than the 5 MiB one PutRecords request takes, in requests within the limit', async () => {
    const name = `s${++streams}`
    await kinesis.createStream(name, 1)
    const big = Array.from({ length: 6 }, (_, i) => ({
      partitionKey: `big-${i}`,
      data: new Uint8Array(1_000_000).fill(97 + i),
    }))
    await produce({ client: kinesis.client, stream: name }, big)
    const sizes: number[] = []
    await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      handler: async (event: MappingEvent) => {
        for (const r of event.Records) sizes.push(Buffer.from(r.kinesis.data, 'base64').length)
      },
    })
    expect(sizes).toEqual(new Array(6).fill(1_000_000))
  })

  it('rejects with the error, and stops, when the on-failure destination does not take a document', async () => {
    const name = await stream(['a-1', 'a-2'])
    const run = runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      mapping: { maximumRetryAttempts: 0 },
      onFailure: {
        send: async () => {
          throw new Error('queue unavailable')
        },
      },
      handler: async () => {
        throw new Error('always fails')
      },
    })
    await expect(run).rejects.toThrow(
      /^shardId-000000000000: the on-failure destination did not take the document of 2 records, .*: queue unavailable$/,
    )
  })

  it('refuses, before reading, an on-failure file it cannot write, and a timeout that is not whole seconds', async () => {
    const name = await stream(['a-1'])
    let invoked = false
    const handler = async () => {
      invoked = true
    }
    const base = { ...quick, stream: name, client: kinesis.client, handler }
    await expect(
      runMapping({ ...base, onFailure: join(dir, 'no-such-dir', 'failed.jsonl') }),
    ).rejects.toThrow(/^onFailure: cannot write .*no-such-dir\/failed\.jsonl: ENOENT/)
    await expect(runMapping({ ...base, timeoutSeconds: 2.5 })).rejects.toThrow(
      "timeoutSeconds must be a whole number of seconds from 1 to 900, as Lambda's, got 2.5",
    )
    // Each feeds a timer, which Node runs after 1 ms past 2^31 - 1 ms: a poll that never waits.
    await expect(runMapping({ ...base, pollIntervalMs: 2 ** 31 })).rejects.toThrow(
      'pollIntervalMs must be a number above 0 and at most 2147483647, got 2147483648',
    )
    await expect(runMapping({ ...base, exitWhenIdleSeconds: 3e6 })).rejects.toThrow(
      'exitWhenIdleSeconds must be a number above 0 and at most 2147483.647, got 3000000',
    )
    expect(invoked).toBe(false)
  })

  it('starts at LATEST: only records put after the start', async () => {
    const name = await stream(['old-1'])
    const seen: string[] = []
    const run = runMapping({
      ...quick,
      exitWhenIdleSeconds: 2,
      stream: name,
      client: kinesis.client,
      mapping: { startingPosition: 'LATEST' },
      handler: async (event: MappingEvent) => {
        for (const r of event.Records) seen.push(decode(r.kinesis.data))
      },
    })
    // Time for the mapping to take its LATEST iterators before the new record arrives.
    await new Promise((r) => setTimeout(r, 1000))
    await putAll(name, ['new-1'])
    await run
    expect(seen).toEqual(['new-1'])
  })

  it('starts AT_TIMESTAMP', async () => {
    const name = await stream(['old-1'])
    await new Promise((r) => setTimeout(r, 1100))
    const from = Date.now() / 1000
    await putAll(name, ['new-1', 'new-2'])
    const seen: string[] = []
    await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      mapping: { startingPosition: 'AT_TIMESTAMP', startingPositionTimestamp: from },
      handler: async (event: MappingEvent) => {
        for (const r of event.Records) seen.push(decode(r.kinesis.data))
      },
    })
    expect(seen).toEqual(['new-1', 'new-2'])
  })

  it('starts AT_TIMESTAMP on the built-in kinesalite when no record is at or after the timestamp yet', async () => {
    // kinesalite 3.3.3 never answers GetShardIterator AT_TIMESTAMP on such a shard.
    const name = await stream(['old-1', 'old-2'], 2)
    await new Promise((r) => setTimeout(r, 1100))
    const seen: string[] = []
    const run = runMapping({
      ...quick,
      exitWhenIdleSeconds: 1.5,
      stream: name,
      client: kinesis.client,
      mapping: { startingPosition: 'AT_TIMESTAMP', startingPositionTimestamp: Date.now() / 1000 },
      handler: async (event: MappingEvent) => {
        for (const r of event.Records) seen.push(decode(r.kinesis.data))
      },
    })
    await new Promise((r) => setTimeout(r, 500))
    await putAll(name, ['new-1'])
    const stats = await run
    expect(seen).toEqual(['new-1'])
    expect(stats.recordsRead).toBe(1)
  })

  it('fails with an error naming the call and the shard when a Kinesis request never answers', async () => {
    const name = await stream(['old-1'])
    await new Promise((r) => setTimeout(r, 1100))
    // A client of its own: to the mapping this is any endpoint, so it asks for AT_TIMESTAMP,
    // on which kinesalite hangs.
    const client = new KinesisClient({
      endpoint: kinesis.endpoint,
      region: kinesis.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      requestHandler: new NodeHttpHandler(),
    })
    try {
      const run = runMapping({
        ...quick,
        requestTimeoutMs: 500,
        stream: name,
        client,
        mapping: { startingPosition: 'AT_TIMESTAMP', startingPositionTimestamp: Date.now() / 1000 },
        handler: async () => {},
      })
      await expect(run).rejects.toThrow(
        `GetShardIterator AT_TIMESTAMP on ${name}/shardId-000000000000 got no answer within 0.5 s`,
      )
    } finally {
      client.destroy()
    }
  })

  it('loads <module>:<export>, fails a batch that times out, and writes the destination', async () => {
    const name = await stream(['slow-1'])
    const module = join(dir, 'slow.mjs')
    await writeFile(module, 'export const slow = () => new Promise(() => {})\n')
    const onFailure = join(dir, 'timeout.jsonl')
    const stats = await runMapping({
      ...quick,
      timeoutSeconds: 1,
      stream: name,
      client: kinesis.client,
      handler: `${module}:slow`,
      mapping: { maximumRetryAttempts: 0 },
      onFailure,
    })
    expect(stats).toMatchObject({ invocations: 1, recordsToDestination: 1, destinationMessages: 1 })
    const [doc] = (await readFile(onFailure, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)) as InvocationRecord[]
    expect(doc?.requestContext).toMatchObject({
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 1,
    })
    expect(doc?.responseContext).toEqual({
      statusCode: 200,
      executedVersion: '$LATEST',
      functionError: 'Unhandled',
    })
    expect(doc?.KinesisBatchInfo).toMatchObject({ shardId: 'shardId-000000000000', batchSize: 1 })
    expect(doc?.KinesisBatchInfo.startSequenceNumber).toBe(doc?.KinesisBatchInfo.endSequenceNumber)
  })

  it('names a missing export', async () => {
    const module = join(dir, 'none.mjs')
    await writeFile(module, 'export const other = 1\n')
    await expect(runMapping({ stream: 'x', handler: module })).rejects.toThrow(
      /no function export named handler \(it exports other\)/,
    )
  })

  it('runs tumbling windows with state and a final invocation', async () => {
    const name = await stream(['w-1', 'w-2', 'w-3'])
    const calls: Array<{ records: number; state: unknown; final: boolean | undefined }> = []
    const windows: string[] = []
    await runMapping({
      ...quick,
      exitWhenIdleSeconds: 2.5,
      stream: name,
      client: kinesis.client,
      mapping: { tumblingWindowInSeconds: 1, batchSize: 2 },
      handler: async (event: MappingEvent) => {
        windows.push(event.window?.start ?? '')
        calls.push({
          records: event.Records.length,
          state: event.state,
          final: event.isFinalInvokeForWindow,
        })
        const count = ((event.state as { count?: number }).count ?? 0) + event.Records.length
        return { state: { count } }
      },
    })
    expect(windows[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    const final = calls.filter((c) => c.final)
    expect(final.length).toBeGreaterThanOrEqual(1)
    expect(calls.reduce((n, c) => n + c.records, 0)).toBe(3)
    const totals = final.map((c) => (c.state as { count: number }).count)
    expect(totals.reduce((a, b) => a + b, 0)).toBe(3)
  })

  it('keeps order per partition key with ParallelizationFactor, running keys side by side', async () => {
    const messages: string[] = []
    for (let i = 0; i < 200; i++) messages.push(`k${i % 7}-${i}`)
    const name = await stream(messages)
    const seen = new Map<string, number[]>()
    let running = 0
    let most = 0
    await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      mapping: { parallelizationFactor: 4, batchSize: 10 },
      handler: async (event: MappingEvent) => {
        most = Math.max(most, ++running)
        await new Promise((r) => setTimeout(r, 5))
        for (const r of event.Records) {
          const [key, n] = decode(r.kinesis.data).split('-') as [string, string]
          seen.set(key, [...(seen.get(key) ?? []), Number(n)])
        }
        running--
      },
    })
    expect(most).toBeGreaterThan(1)
    for (const list of seen.values()) expect(list).toEqual([...list].sort((a, b) => a - b))
    expect([...seen.values()].flat().length).toBe(200)
  })

  // kinesis-esm-recorded-on-aws.json, test_kinesis_report_batch_item_failure_scenarios[...],
  // test_kinesis_event_source_mapping_with_on_failure_destination_config and
  // test_kinesis_maximum_record_age_exceeded[...]: the settings of each recorded mapping, the
  // function's answer, and the document AWS wrote (condition, approximateInvokeCount,
  // responseContext.functionError, or no responseContext at all).
  it.each([
    [
      'empty_string_item_identifier_failure',
      true,
      2,
      -1,
      () => ({ batchItemFailures: [{ itemIdentifier: '' }] }),
      'RetryAttemptsExhausted',
      3,
      null,
    ],
    [
      'null_item_identifier_failure',
      true,
      2,
      -1,
      () => ({ batchItemFailures: [{ itemIdentifier: null }] }),
      'RetryAttemptsExhausted',
      3,
      null,
    ],
    [
      'invalid_key_foo_failure',
      true,
      2,
      -1,
      (seq: string) => ({ batchItemFailures: [{ foo: seq }] }),
      'RetryAttemptsExhausted',
      3,
      null,
    ],
    [
      'invalid_key_foo_null_value_failure',
      true,
      2,
      -1,
      () => ({ batchItemFailures: [{ foo: null }] }),
      'RetryAttemptsExhausted',
      3,
      null,
    ],
    [
      'item_identifier_not_present_failure',
      true,
      2,
      -1,
      () => ({ batchItemFailures: [{ itemIdentifier: '1234' }] }),
      'RetryAttemptsExhausted',
      3,
      null,
    ],
    [
      'unhandled_exception_in_function',
      true,
      2,
      -1,
      () => {
        throw new Error('failed')
      },
      'RetryAttemptsExhausted',
      3,
      'Unhandled',
    ],
    [
      'on_failure_destination_config',
      false,
      1,
      -1,
      () => {
        throw new Error('failed')
      },
      'RetryAttemptsExhausted',
      2,
      'Unhandled',
    ],
    [
      'expire-while-retrying',
      false,
      -1,
      60,
      () => {
        throw new Error('failed')
      },
      'RecordAgeExceeded',
      8,
      undefined,
    ],
  ] as const)(
    'writes the on-failure document AWS recorded for %s',
    async (_, report, retries, age, answer, condition, count, functionError) => {
      const name = await stream(['a-1'])
      const onFailure = join(dir, `recorded-${streams}.jsonl`)
      let sequenceNumber = ''
      await runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        clock: fakeClock({}),
        onFailure,
        mapping: {
          batchSize: 1,
          functionResponseTypes: report ? ['ReportBatchItemFailures'] : [],
          maximumRetryAttempts: retries,
          maximumRecordAgeInSeconds: age,
        },
        handler: async (event: MappingEvent) => {
          sequenceNumber = event.Records[0]?.kinesis.sequenceNumber as string
          return answer(sequenceNumber)
        },
      })
      const lines = (await readFile(onFailure, 'utf8')).trim().split('\n')
      expect(lines).toHaveLength(1)
      const doc = JSON.parse(lines[0] as string) as InvocationRecord
      expect(Object.keys(doc)).toEqual([
        'requestContext',
        ...(functionError === undefined ? [] : ['responseContext']),
        'version',
        'timestamp',
        'KinesisBatchInfo',
      ])
      expect(doc).toStrictEqual(
        recordedDocument(name, sequenceNumber, condition, count, functionError),
      )
    },
  )

  it('writes the on-failure document AWS recorded for expire-before-ingestion: 1 invocation counted, none made', async () => {
    const name = await stream(['a-1'])
    const onFailure = join(dir, `recorded-${streams}.jsonl`)
    let invocations = 0
    await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      // The record is 61 s old when the mapping first sees it.
      clock: fakeClock({ startMs: Date.now() + 61_000 }),
      onFailure,
      mapping: { batchSize: 1, maximumRetryAttempts: 0, maximumRecordAgeInSeconds: 60 },
      handler: async () => {
        invocations++
      },
    })
    const doc = JSON.parse(await readFile(onFailure, 'utf8')) as InvocationRecord
    expect(invocations).toBe(0)
    expect(doc).toStrictEqual(
      recordedDocument(
        name,
        doc.KinesisBatchInfo.startSequenceNumber,
        'RecordAgeExceeded',
        1,
        undefined,
      ),
    )
  })

  it("shows each shard's checkpoint, MillisBehindLatest and the age of its oldest record not done, in progress lines and the summary", async () => {
    const name = await stream(['a-1', 'a-2', 'a-3', 'a-4', 'a-5'])
    // kinesalite always answers MillisBehindLatest 0; AWS says how far a read is from the tip.
    // While `behind` is set, GetRecords answers say so, as AWS's would for a consumer behind.
    let behind: number | undefined = 7000
    const client = kinesisClient(kinesis.endpoint, 'us-east-1')
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        const output = result.output as { MillisBehindLatest?: number }
        if (context.commandName === 'GetRecordsCommand' && behind !== undefined) {
          output.MillisBehindLatest = behind
        }
        return result
      },
      { step: 'initialize' },
    )
    const clock = fakeClock({})
    const sequences: string[] = []
    const arrivals: number[] = []
    let during: MappingStats | undefined
    let release = () => {}
    try {
      const stats = await runMapping({
        ...quick,
        stream: name,
        client,
        clock,
        mapping: { functionResponseTypes: ['ReportBatchItemFailures'] },
        progressIntervalMs: 20,
        onProgress: (s) => {
          if (sequences.length === 7 && during === undefined) {
            during = s
            release()
          }
        },
        handler: async (event: MappingEvent) => {
          for (const r of event.Records) {
            sequences.push(r.kinesis.sequenceNumber)
            arrivals.push(Math.round(r.kinesis.approximateArrivalTimestamp * 1000))
          }
          // The first invocation reports the 4th record; the retry (4th and 5th) waits for a
          // progress line, then succeeds with the shard back at its tip.
          if (sequences.length === 5)
            return { batchItemFailures: [{ itemIdentifier: sequences[3] }] }
          await new Promise<void>((done) => {
            release = done
          })
          behind = undefined
          return { batchItemFailures: [] }
        },
      })
      expect(sequences.length).toBe(7)
      // During the retry: done up to the 3rd record; the 4th, read at the clock's start, has
      // waited the 1 s backoff and more.
      expect(during?.shardLag).toEqual([
        {
          shardId: 'shardId-000000000000',
          checkpoint: sequences[2],
          millisBehindLatest: 7000,
          iteratorAgeMs: clock.nowMs - (arrivals[3] as number),
        },
      ])
      expect(clock.nowMs - (arrivals[3] as number)).toBeGreaterThanOrEqual(1000)
      const ageText = `${((clock.nowMs - (arrivals[3] as number)) / 1000).toFixed(1)} s old`
      expect(progressLine(during as MappingStats)).toContain(
        `\n  shardId-000000000000  checkpoint ${sequences[2]}, 7000 ms behind latest, oldest record not done ${ageText}`,
      )
      // At the end: everything done, the last read at the tip.
      expect(stats.shardLag).toEqual([
        {
          shardId: 'shardId-000000000000',
          checkpoint: sequences[6],
          millisBehindLatest: 0,
          iteratorAgeMs: undefined,
        },
      ])
      expect(summary(stats)).toContain(
        `Shards\n  shardId-000000000000  checkpoint ${sequences[6]}, 0 ms behind latest, no record waiting\n`,
      )
    } finally {
      client.destroy()
    }
  })

  it('warns on every batch whose batchItemFailures Lambda ignores without ReportBatchItemFailures, and counts the records it drops', async () => {
    const name = await stream(['x-1', 'x-2', 'x-3', 'x-4', 'x-5'])
    const warnings: string[] = []
    const sequences: string[] = []
    const stats = await runMapping({
      ...quick,
      stream: name,
      client: kinesis.client,
      mapping: { batchSize: 2 },
      handler: async (event: MappingEvent) => {
        const records = event.Records.map((r) => r.kinesis.sequenceNumber)
        sequences.push(...records)
        // The first batch reports its second record, the second an identifier Lambda would
        // refuse (the whole batch), the third nothing.
        if (sequences.length === 2) return { batchItemFailures: [{ itemIdentifier: records[1] }] }
        if (sequences.length === 4) return { batchItemFailures: [{ itemIdentifier: '' }] }
        return { batchItemFailures: [] }
      },
      logger: { info: () => {}, warn: (message) => warnings.push(message) },
    })
    // Lambda checkpoints everything, retrying nothing: 1 + 2 records dropped.
    expect(stats).toMatchObject({
      invocations: 3,
      recordsSucceeded: 5,
      retries: 0,
      recordsDroppedUnreported: 3,
    })
    expect(warnings).toEqual([
      `shardId-000000000000: the function reported 1 record(s) failed from ${sequences[1]}, but ReportBatchItemFailures is off: Lambda ignores batchItemFailures, checkpoints the whole batch and drops them (add --function-response-types ReportBatchItemFailures)`,
      `shardId-000000000000: the function reported 2 record(s) failed from ${sequences[2]}, but ReportBatchItemFailures is off: Lambda ignores batchItemFailures, checkpoints the whole batch and drops them (add --function-response-types ReportBatchItemFailures)`,
    ])
  })
})

/** The document AWS recorded (with this run's names and numbers where AWS's are redacted). */
function recordedDocument(
  stream: string,
  sequenceNumber: string,
  condition: string,
  approximateInvokeCount: number,
  functionError: string | null | undefined,
) {
  const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  return {
    requestContext: {
      requestId: expect.stringMatching(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      ),
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:local-function',
      condition,
      approximateInvokeCount,
    },
    ...(functionError === undefined
      ? {}
      : { responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError } }),
    version: '1.0',
    timestamp: iso,
    KinesisBatchInfo: {
      shardId: 'shardId-000000000000',
      startSequenceNumber: sequenceNumber,
      endSequenceNumber: sequenceNumber,
      approximateArrivalOfFirstRecord: iso,
      approximateArrivalOfLastRecord: iso,
      batchSize: 1,
      streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`,
    },
  }
}
