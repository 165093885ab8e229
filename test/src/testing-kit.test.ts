/**
 * `@shardwise/testing` against the real readers: its KPL aggregates, gzip and zstd payloads read
 * back by kinesisDecode and by the reference KPL library (aws-kinesis-agg, checksums on), its
 * sample event against the one the examples deploy with, and `invoke` on a whole chain.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import middy from '@middy/core'
import { decodeEvent, kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import {
  awsSampleEvent,
  gzip,
  invoke,
  kinesisEvent,
  kplAggregate,
  lambdaContext,
  sequenceNumber,
  settleOnFakeClock,
  zstd,
} from '@shardwise/testing'
import { describe, expect, it, vi } from 'vitest'

interface PeerUserRecord {
  partitionKey: string
  explicitPartitionKey?: string
  subSequenceNumber?: number
  data: string
}
const peer = createRequire(import.meta.url)('aws-kinesis-agg') as {
  deaggregateSync(
    record: { partitionKey: string; sequenceNumber: string; data: string },
    computeChecksums: boolean,
    done: (error: Error | null | undefined, records?: PeerUserRecord[]) => void,
  ): void
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8')

describe('@shardwise/testing read back by the real readers', () => {
  const users = [
    { partitionKey: 'a', data: 'one' },
    { partitionKey: 'a', data: Uint8Array.of(0xff, 0) },
    {
      partitionKey: 'b',
      data: { json: { n: 2 } },
      explicitHashKey: '170141183460469231731687303715884105728',
    },
  ]

  it('kplAggregate: kinesisDecode expands it into its user records, keys and hash key kept', () => {
    const batch = decodeEvent(kinesisEvent([kplAggregate(users), 'plain']))
    expect(
      batch.records.map((r) => [r.partitionKey, r.explicitHashKey, r.subSequenceNumber]),
    ).toEqual([
      ['a', undefined, 0],
      ['a', undefined, 1],
      ['b', '170141183460469231731687303715884105728', 2],
      ['1', undefined, undefined],
    ])
    expect(batch.records.map((r) => Buffer.from(r.data).toString('hex'))).toEqual([
      Buffer.from('one').toString('hex'),
      'ff00',
      Buffer.from('{"n":2}').toString('hex'),
      Buffer.from('plain').toString('hex'),
    ])
    expect(batch.decoded?.kplAggregates).toBe(1)
  })

  it('kplAggregate: the reference library reads it with its MD5 checked', () => {
    const { data } = kplAggregate(users)
    let read: PeerUserRecord[] | undefined
    peer.deaggregateSync(
      {
        partitionKey: 'a',
        sequenceNumber: sequenceNumber(0),
        data: Buffer.from(data).toString('base64'),
      },
      true,
      (error, records) => {
        if (error) throw error
        read = records
      },
    )
    // Its reader gives every user record table entry 0 as explicit hash key when it has none (the
    // protobuf default), so only kinesisDecode's reading above checks the hash keys.
    expect(read?.map((r) => [r.partitionKey, r.subSequenceNumber])).toEqual([
      ['a', 0],
      ['a', 1],
      ['b', 2],
    ])
    expect(read?.map((r) => Buffer.from(r.data, 'base64').toString('hex'))).toEqual([
      Buffer.from('one').toString('hex'),
      'ff00',
      Buffer.from('{"n":2}').toString('hex'),
    ])
  })

  it('kplAggregate: a wrong MD5 is no aggregate for kinesisDecode (the checksum is what makes it one)', () => {
    const { data } = kplAggregate(users)
    const corrupt = Uint8Array.from(data)
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] as number) ^ 1
    expect(decodeEvent(kinesisEvent([corrupt])).records).toHaveLength(1)
  })

  it('gzip and zstd payloads: kinesisDecode decompresses them, inside an aggregate too', () => {
    const batch = decodeEvent(
      kinesisEvent([
        gzip({ json: { id: 1 } }),
        zstd('z'),
        kplAggregate([{ partitionKey: 'k', data: gzip('in an aggregate') }]),
      ]),
    )
    expect(batch.records.map((r) => text(r.data))).toEqual(['{"id":1}', 'z', 'in an aggregate'])
  })

  it("awsSampleEvent is the sample the examples' SAM template invokes with", () => {
    const sample = JSON.parse(
      readFileSync(new URL('../../examples/events/kinesis-sample.json', import.meta.url), 'utf8'),
    )
    expect(awsSampleEvent()).toEqual(sample)
  })
})

describe('invoke on a whole chain', () => {
  const chain = (fail: (text: string) => boolean) =>
    middy(
      eachRecord(async (record) => {
        if (fail(text(record.data))) throw new Error(`cannot save ${text(record.data)}`)
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))

  it('a record that fails: Lambda checkpoints past the ones before it and retries from it', async () => {
    const event = kinesisEvent(['a', 'b', 'bad', 'c'])
    const { response, verdict } = await invoke(
      chain((t) => t === 'bad'),
      event,
      lambdaContext(5000),
    )
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }] })
    expect(verdict).toMatchObject({
      outcome: 'partial',
      done: [sequenceNumber(0), sequenceNumber(1)],
      retried: [sequenceNumber(2), sequenceNumber(3)],
    })
  })

  it('a KPL sub-record that fails: its carrier is retried, with the sub-records before it', async () => {
    const event = kinesisEvent([
      'a',
      kplAggregate([
        { partitionKey: 'k', data: 'b0' },
        { partitionKey: 'k', data: 'bad' },
      ]),
    ])
    const { verdict } = await invoke(
      chain((t) => t === 'bad'),
      event,
    )
    expect(verdict).toMatchObject({ done: [sequenceNumber(0)], retried: [sequenceNumber(1)] })
  })

  it("a record that never settles, on a fake clock: the chain's timeout guard answers before Lambda's timeout", async () => {
    vi.useFakeTimers()
    try {
      const handler = middy(
        eachRecord(async (record, _context, { signal }) => {
          if (text(record.data) !== 'stuck') return
          await new Promise((_, reject) =>
            signal.addEventListener('abort', () => reject(signal.reason)),
          )
        }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      const invocation = invoke(handler, kinesisEvent(['a', 'stuck', 'c']), lambdaContext(3000))
      const { verdict } = await settleOnFakeClock(vi, invocation)
      expect(verdict).toMatchObject({ outcome: 'partial', checkpoint: sequenceNumber(1) })
      // Without the guard, invoke's own timeout ends it when the context has no time left.
      const unguarded = middy(
        eachRecord(() => new Promise<never>(() => {}), { timeoutMarginMs: 0 }),
      )
        .use(kinesisDecode())
        .use(partialFailures({ logger: false }))
      const late = invoke(unguarded, kinesisEvent(['a']), lambdaContext(3000))
      const timedOut = await settleOnFakeClock(vi, late)
      expect(timedOut.verdict).toMatchObject({ outcome: 'failure', retried: [sequenceNumber(0)] })
      expect(timedOut.verdict.reason).toMatch(/had not answered when the context had no time left/)
    } finally {
      vi.useRealTimers()
    }
  })

  it('the sample event, all handled: done, nothing retried', async () => {
    const seen: string[] = []
    const handler = middy(
      eachRecord(async (record) => {
        seen.push(text(record.data))
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const { verdict } = await invoke(handler, awsSampleEvent())
    expect(seen).toEqual(['Hello, this is a test.', 'This is only a test.'])
    expect(verdict).toMatchObject({ outcome: 'success', retried: [] })
  })
})

describe("the README's sample usage", () => {
  it('a poison user record in an aggregate: its carrier and what follows are retried', async () => {
    const saved: string[] = []
    const handler = middy(
      eachRecord(async (record) => {
        const text = new TextDecoder().decode(record.data)
        if (text === 'poison') throw new Error('cannot save it')
        saved.push(text)
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const event = kinesisEvent([
      'plain',
      gzip('gzip'),
      zstd('zstd'),
      kplAggregate([
        { partitionKey: 'a', data: 'first of the aggregate' },
        { partitionKey: 'b', data: 'poison' },
      ]),
      'after',
    ])
    const { response, verdict } = await invoke(handler, event, lambdaContext(3000))
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(3) }] })
    expect(verdict).toMatchObject({
      outcome: 'partial',
      done: [sequenceNumber(0), sequenceNumber(1), sequenceNumber(2)],
      retried: [sequenceNumber(3), sequenceNumber(4)],
    })
    expect(saved).toEqual(['plain', 'gzip', 'zstd', 'first of the aggregate'])
  })
})
