import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { ShardCheckpoint } from './checkpoints.js'
import { main } from './command.js'
import type { MappingEvent } from './event.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { runMapping } from './mapping.js'
import { produce } from './produce.js'
import { capture } from './test-helpers.js'

let kinesis: LocalKinesis
let dir: string
let streams = 0

beforeAll(async () => {
  kinesis = await startLocalKinesis()
  dir = await mkdtemp(join(tmpdir(), 'shardwise-checkpoints-'))
})
afterAll(async () => {
  await kinesis.close()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const text = new TextEncoder()

async function put(name: string, from: number, count: number) {
  const records = []
  for (let i = from; i < from + count; i++) {
    records.push({ partitionKey: `k${i % 4}`, data: text.encode(String(i)) })
  }
  await produce({ client: kinesis.client, stream: name }, records)
}

const numbers = (event: MappingEvent) =>
  event.Records.map((r) => Number(Buffer.from(r.kinesis.data, 'base64').toString('utf8')))

async function kept(path: string): Promise<Record<string, ShardCheckpoint>> {
  return (JSON.parse(await readFile(path, 'utf8')) as { shards: Record<string, ShardCheckpoint> })
    .shards
}

const quick = { pollIntervalMs: 50, exitWhenIdleSeconds: 0.5, timeoutSeconds: 10 }

describe('--checkpoint-file', { timeout: 60_000 }, () => {
  it.each([
    ['TRIM_HORIZON', {}],
    ['AT_TIMESTAMP', { startingPosition: 'AT_TIMESTAMP' as const }],
  ])(
    'resumes a stopped run where it stopped, from %s: 300 records, each once',
    async (_, position) => {
      const name = `resume${++streams}`
      await kinesis.createStream(name, 1)
      const mapping = {
        batchSize: 30,
        ...position,
        ...('startingPosition' in position
          ? { startingPositionTimestamp: Date.now() / 1000 - 1 }
          : {}),
      }
      await put(name, 0, 300)
      const checkpointFile = join(dir, `${name}.json`)
      const seen: number[] = []
      const stop = new AbortController()
      await runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        checkpointFile,
        signal: stop.signal,
        mapping,
        handler: async (event) => {
          seen.push(...numbers(event))
          // Ctrl-C during the third batch: it finishes, nothing after it starts.
          if (seen.length === 90) stop.abort()
        },
      })
      expect(seen).toHaveLength(90)
      const [shard] = Object.values(await kept(checkpointFile))
      expect(shard?.sequenceNumber).toMatch(/^\d+$/)

      const second = await runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        checkpointFile,
        mapping,
        handler: async (event) => {
          seen.push(...numbers(event))
        },
      })
      expect(second.recordsRead).toBe(210)
      expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i))
      // Written by rename: no temporary file is left beside it.
      expect((await readdir(dir)).filter((f) => f.startsWith(name))).toEqual([`${name}.json`])
    },
  )

  it('reads from LATEST on the first run, and on the next the records put while none ran', async () => {
    const name = `latest${++streams}`
    await kinesis.createStream(name, 2)
    await put(name, 0, 10)
    const checkpointFile = join(dir, `${name}.json`)
    const seen: number[] = []
    const run = () =>
      runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        checkpointFile,
        mapping: { startingPosition: 'LATEST' },
        handler: async (event) => {
          seen.push(...numbers(event))
        },
      })
    await run()
    expect(seen).toEqual([])
    // While no run reads: 20 records, which LATEST alone would skip.
    await put(name, 10, 20)
    const stats = await run()
    expect(stats.recordsRead).toBe(20)
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 10))
    // A third run has nothing left to do.
    seen.length = 0
    await run()
    expect(seen).toEqual([])
  })

  it("keeps a tumbling window's state, and the next run goes on from it", async () => {
    const name = `window${++streams}`
    await kinesis.createStream(name, 1)
    await put(name, 0, 40)
    const checkpointFile = join(dir, `${name}.json`)
    const states: number[] = []
    const stop = new AbortController()
    const run = (signal?: AbortSignal) =>
      runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        checkpointFile,
        signal,
        mapping: { batchSize: 10, tumblingWindowInSeconds: 900 },
        handler: async (event) => {
          const count = (event as { state: { count?: number } }).state.count ?? 0
          states.push(count)
          if (count + event.Records.length === 20) stop.abort()
          return { state: { count: count + event.Records.length } }
        },
      })
    await run(stop.signal)
    const [shard] = Object.values(await kept(checkpointFile))
    expect(shard?.windows?.[0]?.state).toEqual({ count: 20 })
    await run()
    // The second run's first invocation carries the state the first run's last one answered.
    expect(states).toEqual([0, 10, 20, 30])
  })

  describe('records a filter filtered out', () => {
    /** Records `from` to `from + count - 1`, as JSON: those `wanted` says yes to are orders. */
    async function putKinds(
      name: string,
      from: number,
      count: number,
      wanted: (i: number) => boolean,
    ) {
      const records = []
      for (let i = from; i < from + count; i++) {
        const kind = wanted(i) ? 'order' : 'noise'
        records.push({ partitionKey: `k${i % 4}`, data: text.encode(JSON.stringify({ kind, i })) })
      }
      await produce({ client: kinesis.client, stream: name }, records)
    }
    const orders = { Filters: [{ Pattern: '{"data":{"kind":["order"]}}' }] }
    const numbered = (event: MappingEvent) =>
      event.Records.map(
        (r) =>
          (JSON.parse(Buffer.from(r.kinesis.data, 'base64').toString('utf8')) as { i: number }).i,
      )

    /** A run of `name` with the filter and the stream's checkpoint file; `seen` gets what ran. */
    const run = (
      name: string,
      seen: number[],
      more: { signal?: AbortSignal; batchSize?: number; afterBatch?: () => void } = {},
    ) =>
      runMapping({
        ...quick,
        stream: name,
        client: kinesis.client,
        checkpointFile: join(dir, `${name}.json`),
        signal: more.signal,
        mapping: { filterCriteria: orders, batchSize: more.batchSize ?? 100 },
        handler: async (event) => {
          seen.push(...numbered(event))
          more.afterBatch?.()
        },
      })

    it('count as done for the checkpoint: a new run does not read a filtered-out tail again', async () => {
      const name = `filtered${++streams}`
      await kinesis.createStream(name, 1)
      // 0 to 4 are orders, 5 to 9 are filtered out: the shard's tail.
      await putKinds(name, 0, 10, (i) => i < 5)
      const seen: number[] = []
      const first = await run(name, seen)
      expect([first.recordsRead, first.recordsFilteredOut]).toEqual([10, 5])
      expect(seen).toEqual([0, 1, 2, 3, 4])
      const second = await run(name, seen)
      // As Lambda, which checkpoints past them: nothing is read again.
      expect([second.recordsRead, second.recordsFilteredOut]).toEqual([0, 0])
      await putKinds(name, 10, 3, () => true)
      const third = await run(name, seen)
      expect([third.recordsRead, third.recordsFilteredOut]).toEqual([3, 0])
      expect(seen).toEqual([0, 1, 2, 3, 4, 10, 11, 12])
    })

    it('count as done when no record of the shard was invoked', async () => {
      const name = `filteredAll${++streams}`
      await kinesis.createStream(name, 1)
      await putKinds(name, 0, 6, () => false)
      expect((await run(name, [])).recordsFilteredOut).toBe(6)
      const [shard] = Object.values(await kept(join(dir, `${name}.json`)))
      expect(shard?.sequenceNumber).toMatch(/^\d+$/)
      expect((await run(name, [])).recordsRead).toBe(0)
    })

    it('never move the checkpoint past a record that waits before them', async () => {
      const name = `filteredWait${++streams}`
      await kinesis.createStream(name, 1)
      // Even numbers are orders; the run stops during the first batch, 0 and 2.
      await putKinds(name, 0, 10, (i) => i % 2 === 0)
      const seen: number[] = []
      const stop = new AbortController()
      await run(name, seen, { signal: stop.signal, batchSize: 2, afterBatch: () => stop.abort() })
      expect(seen).toEqual([0, 2])
      await run(name, seen)
      expect(seen).toEqual([0, 2, 4, 6, 8])
    })
  })

  it('says at the start whether progress is kept, and refuses a file of another stream', async () => {
    const name = `line${++streams}`
    await kinesis.createStream(name, 1)
    const handler = join(dir, 'noop.mjs')
    await writeFile(handler, 'export const handler = async () => {}\n')
    const args = ['run', '--handler', handler, '--stream', name, '--endpoint', kinesis.endpoint]
    const quickFlags = [
      '--exit-when-idle',
      '0.3',
      '--poll-interval-ms',
      '50',
      '--progress-interval',
      '0',
    ]
    let io = capture()
    expect(await main([...args, ...quickFlags])).toBe(0)
    expect(io.err()).toContain(
      'progress is not kept: a new run starts again from the starting position (--checkpoint-file <path> keeps it)\n',
    )
    vi.restoreAllMocks()
    const checkpointFile = join(dir, `${name}.json`)
    io = capture()
    expect(await main([...args, ...quickFlags, '--checkpoint-file', checkpointFile])).toBe(0)
    expect(io.err()).toContain(
      `checkpoints kept in ${checkpointFile}: a new run with it resumes where this one stops\n`,
    )
    vi.restoreAllMocks()
    await kinesis.createStream(`${name}-other`, 1)
    await expect(
      runMapping({
        ...quick,
        stream: `${name}-other`,
        client: kinesis.client,
        checkpointFile,
        handler: async () => {},
      }),
    ).rejects.toThrow(
      new RegExp(
        `^checkpointFile: ${checkpointFile} holds the checkpoints of arn:aws:kinesis:us-east-1:\\d+:stream/${name}, not of .*stream/${name}-other; use another file for this stream$`,
      ),
    )
  })
})
