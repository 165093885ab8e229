import { mkdtemp } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setImmediate } from 'node:timers/promises'
import { CreateStreamCommand, waitUntilStreamExists } from '@aws-sdk/client-kinesis'
import kinesalite from 'kinesalite'
import { afterEach, describe, expect, it } from 'vitest'
import { runMapping } from './mapping.js'
import { produce } from './produce.js'
import { kinesisClient } from './shards.js'

const servers: Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((r) => server.close(() => r(undefined)))
  }
})

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  return (server.address() as AddressInfo).port
}

/**
 * kinesalite on a port of its own, its streams in a folder, which a test can stop and start
 * again on the same port and folder, as a developer restarts `kinesalite --path`.
 */
async function restartableKinesis() {
  const path = await mkdtemp(join(tmpdir(), 'shardwise-kinesalite-'))
  const start = () => {
    const server = kinesalite({ path, createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 })
    servers.push(server)
    return server
  }
  let server = start()
  const port = await listen(server)
  const endpoint = `http://127.0.0.1:${port}`
  return {
    endpoint,
    client: kinesisClient(endpoint, 'us-east-1'),
    async stop() {
      servers.splice(servers.indexOf(server), 1)
      server.closeAllConnections()
      await new Promise((r) => server.close(() => r(undefined)))
    },
    async restart(downMs: number) {
      await this.stop()
      await new Promise((r) => setTimeout(r, downMs))
      server = start()
      await listen(server, port)
    },
  }
}

async function createStream(client: ReturnType<typeof kinesisClient>, name: string) {
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }))
  await waitUntilStreamExists({ client, maxWaitTime: 30, minDelay: 1 }, { StreamName: name })
}

const text = new TextEncoder()
const records = (from: number, to: number) => {
  const out = []
  for (let i = from; i < to; i++) out.push({ partitionKey: `k${i % 3}`, data: text.encode(`${i}`) })
  return out
}

/**
 * The real clock, moved on by each wait for a retry instead of waiting: a minute of backoff
 * takes none, and records read by the real clock are never in its future. `still`: only the
 * waits move it, for a run that reads nothing.
 */
function fakeClock(still = false) {
  const startMs = Date.now()
  const clock = {
    sleptMs: 0,
    waits: [] as number[],
    now: () => (still ? startMs : Date.now()) + clock.sleptMs,
    sleep: async (ms: number) => {
      clock.waits.push(ms)
      clock.sleptMs += ms
      await setImmediate()
    },
  }
  return clock
}

function lines() {
  const seen: string[] = []
  return { seen, logger: { info: () => {}, warn: (m: string) => seen.push(m) } }
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

describe('reading through Kinesis outages', { timeout: 60_000 }, () => {
  it('tries a refused connection again with capped exponential backoff, then names the call, stream and endpoint', async () => {
    const closed = createServer()
    const port = await listen(closed)
    await new Promise((r) => closed.close(() => r(undefined)))
    const clock = fakeClock(true)
    const { seen, logger } = lines()
    const run = runMapping({
      stream: 'orders',
      endpoint: `http://127.0.0.1:${port}`,
      handler: async () => {},
      clock,
      logger,
      outageToleranceSeconds: 10,
    })
    await expect(run).rejects.toThrow(
      new RegExp(
        `^DescribeStreamSummary on orders at http://127\\.0\\.0\\.1:${port} failed \\(still failing after 10 s of retries\\): ` +
          'Error: connect ECONNREFUSED .*\\. nothing answers there: start kinesalite or LocalStack, or correct --endpoint$',
      ),
    )
    // 0.1 s doubling, capped at 5 s, the last wait cut to the 10 s bound.
    expect(clock.waits).toEqual([100, 200, 400, 800, 1600, 3200, 3700])
    expect(seen).toEqual([
      `DescribeStreamSummary on orders: the connection failed (ECONNREFUSED) at http://127.0.0.1:${port}; retrying with backoff for up to 10 s`,
    ])
  })

  it('survives a kinesalite restart mid-run: says so, and loses and repeats nothing', async () => {
    const kinesis = await restartableKinesis()
    try {
      await createStream(kinesis.client, 'restart')
      await produce({ client: kinesis.client, stream: 'restart' }, records(0, 50))
      const seen: number[] = []
      const log = lines()
      let restarted: Promise<void> | undefined
      const stats = await runMapping({
        stream: 'restart',
        endpoint: kinesis.endpoint,
        pollIntervalMs: 50,
        exitWhenIdleSeconds: 1,
        logger: log.logger,
        mapping: { batchSize: 10 },
        handler: async (event) => {
          for (const r of event.Records) seen.push(Number(Buffer.from(r.kinesis.data, 'base64')))
          // Once: down for 0.5 s, then 50 more records are put.
          restarted ??= kinesis
            .restart(500)
            .then(() => produce({ client: kinesis.client, stream: 'restart' }, records(50, 100)))
            .then(() => undefined)
        },
      })
      await restarted
      expect(seen).toEqual(records(0, 100).map((_, i) => i))
      expect(stats).toMatchObject({ recordsRead: 100, recordsSucceeded: 100 })
      expect(log.seen.some((m) => /retrying with backoff for up to 60 s$/.test(m))).toBe(true)
      expect(
        log.seen.some((m) => m.startsWith(`Kinesis answers again at ${kinesis.endpoint}`)),
      ).toBe(true)
    } finally {
      kinesis.client.destroy()
    }
  })

  it('names what the first request met when stopped while it waits to try again', async () => {
    const closed = createServer()
    const port = await listen(closed)
    await new Promise((r) => closed.close(() => r(undefined)))
    const stop = new AbortController()
    const run = runMapping({
      stream: 'orders',
      endpoint: `http://127.0.0.1:${port}`,
      handler: async () => {},
      signal: stop.signal,
      logger: { info: () => {}, warn: () => stop.abort() },
    })
    await expect(run).rejects.toThrow(
      new RegExp(
        `^DescribeStreamSummary on orders at http://127\\.0\\.0\\.1:${port} failed \\(stopped while retrying\\): Error: connect ECONNREFUSED`,
      ),
    )
  })

  it('ends quietly when stopped while Kinesis is down, with what was done', async () => {
    const kinesis = await restartableKinesis()
    try {
      await createStream(kinesis.client, 'down')
      await produce({ client: kinesis.client, stream: 'down' }, records(0, 5))
      const stop = new AbortController()
      const seen: string[] = []
      let down: Promise<void> | undefined
      const stats = await runMapping({
        stream: 'down',
        endpoint: kinesis.endpoint,
        pollIntervalMs: 50,
        signal: stop.signal,
        listShardsIntervalMs: 100,
        logger: {
          info: () => {},
          warn: (m) => {
            seen.push(m)
            // Ctrl-C once the outage is said.
            if (m.includes('retrying with backoff')) stop.abort()
          },
        },
        handler: async () => {
          down ??= kinesis.stop()
        },
      })
      await down
      expect(stats).toMatchObject({ recordsRead: 5, recordsSucceeded: 5 })
      expect(seen.filter((m) => m.includes('retrying with backoff'))).toHaveLength(1)
    } finally {
      kinesis.client.destroy()
    }
  })

  it('tries throttled and 5xx answers again and loses nothing', async () => {
    const kinesis = await restartableKinesis()
    await createStream(kinesis.client, 'throttled')
    await produce({ client: kinesis.client, stream: 'throttled' }, records(0, 30))
    // A stand-in in front of kinesalite: throttles the first 3 GetRecords, answers 503 to the
    // first ListShards, and passes everything else on.
    const counts = new Map<string, number>()
    const proxy = createServer(async (request, response) => {
      const target = String(request.headers['x-amz-target']).split('.')[1] ?? ''
      const n = (counts.get(target) ?? 0) + 1
      counts.set(target, n)
      const payload = await body(request)
      if (target === 'ListShards' && n === 1) {
        response.writeHead(503, { 'content-type': 'text/html' }).end('<html>busy</html>')
        return
      }
      if (target === 'GetRecords' && n <= 3) {
        response.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(
          JSON.stringify({
            __type: 'ProvisionedThroughputExceededException',
            message: 'Rate exceeded',
          }),
        )
        return
      }
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(request.headers))
        if (typeof v === 'string') headers[k] = v
      const answer = await fetch(`${kinesis.endpoint}${request.url}`, {
        method: request.method ?? 'POST',
        headers,
        body: payload,
      })
      response.writeHead(answer.status, Object.fromEntries(answer.headers))
      response.end(Buffer.from(await answer.arrayBuffer()))
    })
    servers.push(proxy)
    const port = await listen(proxy)
    const clock = fakeClock()
    const log = lines()
    const seen: number[] = []
    try {
      const stats = await runMapping({
        stream: 'throttled',
        endpoint: `http://127.0.0.1:${port}`,
        pollIntervalMs: 50,
        exitWhenIdleSeconds: 0.5,
        clock,
        logger: log.logger,
        handler: async (event) => {
          for (const r of event.Records) seen.push(Number(Buffer.from(r.kinesis.data, 'base64')))
        },
      })
      expect(seen).toEqual(records(0, 30).map((_, i) => i))
      expect(stats.recordsSucceeded).toBe(30)
      // One wait for the 503, then three for the throttling: each outage starts at 0.1 s.
      expect(clock.waits).toEqual([100, 100, 200, 400])
      expect(log.seen).toEqual([
        expect.stringMatching(/^ListShards on throttled: the endpoint answered HTTP 503 at /),
        expect.stringMatching(/^Kinesis answers again at /),
        expect.stringMatching(
          /^GetRecords on throttled\/shardId-000000000000: throttled \(ProvisionedThroughputExceededException\) at /,
        ),
        expect.stringMatching(/^Kinesis answers again at /),
      ])
    } finally {
      kinesis.client.destroy()
    }
  })

  it('says that an endpoint answering an HTML page is not the Kinesis API', async () => {
    const page = createServer((_, response) => {
      response
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<html><body>Welcome</body></html>')
    })
    servers.push(page)
    const port = await listen(page)
    await expect(
      runMapping({
        stream: 'orders',
        endpoint: `http://127.0.0.1:${port}`,
        handler: async () => {},
      }),
    ).rejects.toThrow(
      `DescribeStreamSummary on orders at http://127.0.0.1:${port} failed: it answered with an HTML page (HTTP 200), not the Kinesis API. ` +
        "--endpoint should be the Kinesis endpoint itself: kinesalite's address, or LocalStack's http://localhost:4566",
    )
  })

  it('refuses an endpoint without a scheme before any request', async () => {
    await expect(
      runMapping({ stream: 'orders', endpoint: 'localhost:4567', handler: async () => {} }),
    ).rejects.toThrow(
      'the endpoint localhost:4567 has no http:// or https:// scheme: write http://localhost:4567 (or https://)',
    )
  })
})
