import {
  ListShardsCommand,
  MergeShardsCommand,
  SplitShardCommand,
  waitUntilStreamExists,
} from '@aws-sdk/client-kinesis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { MappingEvent } from './event.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { runMapping } from './mapping.js'
import { produce } from './produce.js'

let kinesis: LocalKinesis
let streams = 0

beforeAll(async () => {
  kinesis = await startLocalKinesis()
})
afterAll(async () => {
  await kinesis.close()
})

const KEYS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel']
const text = new TextEncoder()

/** `perKey` records for each key, numbered from `from` within the key: `alpha:3`. */
function records(from: number, perKey: number) {
  const out = []
  for (let i = from; i < from + perKey; i++) {
    for (const key of KEYS) out.push({ partitionKey: key, data: text.encode(`${key}:${i}`) })
  }
  return out
}

async function put(name: string, from: number, perKey: number) {
  await produce({ client: kinesis.client, stream: name }, records(from, perKey))
}

async function active(name: string) {
  await waitUntilStreamExists(
    { client: kinesis.client, maxWaitTime: 30, minDelay: 1 },
    { StreamName: name },
  )
}

/** What a run handled: each record's data with its shard, in the order the handler saw them. */
function recorder() {
  const seen: Array<{ shard: string; key: string; n: number }> = []
  const handle = (event: MappingEvent) => {
    for (const r of event.Records) {
      const [key, n] = Buffer.from(r.kinesis.data, 'base64').toString('utf8').split(':')
      seen.push({ shard: r.eventID.split(':')[0] as string, key: key as string, n: Number(n) })
    }
  }
  return { seen, handle }
}

/** Every key's records arrived once each, 0 to count - 1, in order. */
function expectEachKeyOnceInOrder(seen: Array<{ key: string; n: number }>, count: number) {
  for (const key of KEYS) {
    const numbers = seen.filter((s) => s.key === key).map((s) => s.n)
    expect(numbers, key).toEqual(Array.from({ length: count }, (_, i) => i))
  }
}

const HALF = (2n ** 127n).toString()

/**
 * Runs a stream of `shards` shards holding 5 records per key; in the first batch, `reshard`
 * changes its shards and 5 more records per key are put. Returns what the handler saw.
 */
async function runThroughReshard(
  prefix: string,
  shards: number,
  batchSize: number,
  reshard: (name: string) => Promise<unknown>,
  listed?: { shards: number; listShardsIntervalMs: number },
) {
  const name = `${prefix}${++streams}`
  await kinesis.createStream(name, shards)
  await put(name, 0, 5)
  const { seen, handle } = recorder()
  let resharded: Promise<void> | undefined
  let shardsSeen = 0
  let foundWhileRead: boolean | undefined
  const stats = await runMapping({
    stream: name,
    client: kinesis.client,
    pollIntervalMs: 50,
    exitWhenIdleSeconds: 1,
    timeoutSeconds: 30,
    mapping: { batchSize },
    ...(listed === undefined
      ? {}
      : {
          listShardsIntervalMs: listed.listShardsIntervalMs,
          progressIntervalMs: 20,
          onProgress: (progress) => {
            shardsSeen = progress.shards
          },
        }),
    handler: async (event) => {
      handle(event)
      resharded ??= (async () => {
        await reshard(name)
        await active(name)
        await put(name, 5, 5)
        // The first batch holds its lane, so its parent's reading cannot end, nor find the new
        // shards at its end: only the periodic ListShards can find them before this returns.
        if (listed !== undefined) foundWhileRead = await until(() => shardsSeen === listed.shards)
      })()
      await resharded
    },
  })
  await resharded
  return { stats, seen, foundWhileRead }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether `done` came true within 5 s. */
async function until(done: () => boolean): Promise<boolean> {
  const endMs = Date.now() + 5000
  while (!done()) {
    if (Date.now() > endMs) return false
    await sleep(20)
  }
  return true
}

const split = (name: string) =>
  kinesis.client.send(
    new SplitShardCommand({
      StreamName: name,
      ShardToSplit: 'shardId-000000000000',
      NewStartingHashKey: HALF,
    }),
  )
const merge = (name: string) =>
  kinesis.client.send(
    new MergeShardsCommand({
      StreamName: name,
      ShardToMerge: 'shardId-000000000000',
      AdjacentShardToMerge: 'shardId-000000000001',
    }),
  )

describe('shards that change during a run', { timeout: 60_000 }, () => {
  it('reads the children of a split made during the run, after their parent, losing and repeating nothing', async () => {
    const { stats, seen } = await runThroughReshard('split', 1, 8, split)
    expect(stats.shards).toBe(3)
    expect(stats.recordsRead).toBe(80)
    expect(seen).toHaveLength(80)
    expectEachKeyOnceInOrder(seen, 10)
    // The parent's 40 records all came before any child's.
    expect(seen.slice(0, 40).every((s) => s.shard === 'shardId-000000000000')).toBe(true)
    expect(new Set(seen.slice(40).map((s) => s.shard))).toEqual(
      new Set(['shardId-000000000001', 'shardId-000000000002']),
    )
  })

  it('reads the child of a merge made during the run after both parents, losing and repeating nothing', async () => {
    const { stats, seen } = await runThroughReshard('merge', 2, 4, merge)
    expect(stats.shards).toBe(3)
    expect(stats.recordsRead).toBe(80)
    expect(seen).toHaveLength(80)
    expectEachKeyOnceInOrder(seen, 10)
    // Both parents' 40 records came before the child's.
    expect(seen.findIndex((s) => s.shard === 'shardId-000000000002')).toBe(40)
    expect(seen.slice(40).every((s) => s.shard === 'shardId-000000000002')).toBe(true)
  })

  type Seen = Awaited<ReturnType<typeof runThroughReshard>>['seen']
  it.each([
    [
      'the children of a split',
      1,
      8,
      split,
      (seen: Seen) => seen.slice(0, 40).every((s) => s.shard === 'shardId-000000000000'),
    ],
    [
      'the child of a merge',
      2,
      4,
      merge,
      (seen: Seen) => seen.findIndex((s) => s.shard === 'shardId-000000000002') === 40,
    ],
  ] as const)(
    'finds %s by the periodic ListShards while the parents are still read, and reads them after the parents',
    async (_, shards, batchSize, reshard, parentsFirst) => {
      const { stats, seen, foundWhileRead } = await runThroughReshard(
        'listed',
        shards,
        batchSize,
        reshard,
        { shards: 3, listShardsIntervalMs: 100 },
      )
      expect(foundWhileRead).toBe(true)
      expect(stats.shards).toBe(3)
      expect(seen).toHaveLength(80)
      expectEachKeyOnceInOrder(seen, 10)
      expect(parentsFirst(seen)).toBe(true)
    },
  )

  it('reads the children of a split though a ListShards begun before the split answers after the parent ended', async () => {
    const name = `staleList${++streams}`
    await kinesis.createStream(name, 1)
    await put(name, 0, 5)
    const { seen, handle } = recorder()
    // One periodic ListShards, answered before the split, is held until after the parent was
    // read to its end and its batches settled: the listing asked for at its end must be newer.
    let hold: 'off' | 'armed' | 'held' = 'off'
    let answered = () => {}
    const heldAnswered = new Promise<void>((resolve) => {
      answered = resolve
    })
    let release = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const send = kinesis.client.send.bind(kinesis.client) as (command: unknown) => Promise<unknown>
    const spy = vi.spyOn(kinesis.client, 'send').mockImplementation((async (command: unknown) => {
      const out = await send(command)
      if (command instanceof ListShardsCommand && hold === 'armed') {
        hold = 'held'
        answered()
        await released
      }
      return out
    }) as never)
    let resharded: Promise<void> | undefined
    try {
      await runMapping({
        stream: name,
        client: kinesis.client,
        pollIntervalMs: 50,
        exitWhenIdleSeconds: 1,
        timeoutSeconds: 30,
        listShardsIntervalMs: 100,
        mapping: { batchSize: 8 },
        handler: async (event) => {
          handle(event)
          resharded ??= (async () => {
            hold = 'armed'
            await heldAnswered
            await split(name)
            await active(name)
            await put(name, 5, 5)
          })()
          await resharded
          if (seen.length === 40) setTimeout(release, 1000)
        },
      })
    } finally {
      release()
      spy.mockRestore()
    }
    expect(hold).toBe('held')
    expect(seen).toHaveLength(80)
    expectEachKeyOnceInOrder(seen, 10)
  })

  it("closes a tumbling window at its shard's end with a final invocation, as Lambda does", async () => {
    const name = `window${++streams}`
    await kinesis.createStream(name, 1)
    await put(name, 0, 1)
    await kinesis.client.send(
      new SplitShardCommand({
        StreamName: name,
        ShardToSplit: 'shardId-000000000000',
        NewStartingHashKey: HALF,
      }),
    )
    await active(name)
    const finals: Array<{ shard: string; state: unknown; records: number }> = []
    await runMapping({
      stream: name,
      client: kinesis.client,
      pollIntervalMs: 50,
      exitWhenIdleSeconds: 1,
      // A window far longer than the run: only the shard's end can close it.
      mapping: { tumblingWindowInSeconds: 900 },
      handler: async (event) => {
        const windowed = event as MappingEvent & {
          isFinalInvokeForWindow: boolean
          isWindowTerminatedEarly: boolean
          shardId: string
          state: { count?: number }
        }
        if (windowed.isFinalInvokeForWindow) {
          expect(windowed.isWindowTerminatedEarly).toBe(false)
          finals.push({
            shard: windowed.shardId,
            state: windowed.state,
            records: event.Records.length,
          })
        }
        return { state: { count: (windowed.state.count ?? 0) + event.Records.length } }
      },
    })
    // The parent's 8 records, summed in its window, closed when it ended; the children are
    // empty and open no window.
    expect(finals).toEqual([{ shard: 'shardId-000000000000', state: { count: 8 }, records: 0 }])
  })
})
