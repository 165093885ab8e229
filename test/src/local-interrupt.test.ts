/**
 * `shardwise run` as a process that a person stops: the first SIGINT (Ctrl-C) or SIGTERM sums
 * up and exits 130 (143 for SIGTERM) within the stated bound (STOP_WITHIN_MS, 5 s, for an invocation in flight),
 * the second exits at once. Progress lines keep coming while a failing batch is retried.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type LocalKinesis, produce, STOP_WITHIN_MS, startLocalKinesis } from '@shardwise/local'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../../packages/local/dist/cli.js', import.meta.url))

let kinesis: LocalKinesis
let dir: string
let streams = 0

beforeAll(async () => {
  kinesis = await startLocalKinesis()
  dir = await mkdtemp(join(tmpdir(), 'shardwise-interrupt-'))
  // Says on stderr that it was invoked, then never answers (the timeout is far away).
  await writeFile(
    join(dir, 'endless.mjs'),
    "export const handler = () => { console.error('invoked'); return new Promise(() => {}) }\n",
  )
  await writeFile(
    join(dir, 'throws.mjs'),
    "export const handler = () => { console.error('invoked'); throw new Error('always') }\n",
  )
})
afterAll(async () => {
  await kinesis.close()
})

interface Run {
  child: ChildProcess
  out: () => string
  err: () => string
  /** Resolves once stderr holds `text` this many times. */
  seen: (text: string, times?: number) => Promise<void>
  exited: Promise<{ code: number | null; atMs: number }>
}

async function run(handler: string, extra: string[] = []): Promise<Run> {
  const stream = `i${++streams}`
  await kinesis.createStream(stream, 1)
  await produce({ client: kinesis.client, stream }, [
    { partitionKey: 'a', data: new TextEncoder().encode('a-1') },
  ])
  const child = spawn(process.execPath, [
    CLI,
    'run',
    '--handler',
    join(dir, handler),
    '--stream',
    stream,
    '--endpoint',
    kinesis.endpoint,
    '--timeout',
    '120',
    '--poll-interval-ms',
    '50',
    ...extra,
  ])
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout.on('data', (chunk) => {
    out += chunk
  })
  child.stderr.on('data', (chunk) => {
    err += chunk
    for (const listener of listeners) listener()
  })
  const exited = new Promise<{ code: number | null; atMs: number }>((done) => {
    child.on('exit', (code) => done({ code, atMs: Date.now() }))
  })
  const seen = (text: string, times = 1) =>
    new Promise<void>((done) => {
      const check = () => {
        if (err.split(text).length - 1 >= times) {
          listeners.delete(check)
          done()
        }
      }
      listeners.add(check)
      check()
    })
  return { child, out: () => out, err: () => err, seen, exited }
}

describe('stopping shardwise run', { timeout: 45_000 }, () => {
  it('abandons an invocation that never ends after the bound, prints the summary and exits 130', async () => {
    const r = await run('endless.mjs')
    await r.seen('invoked')
    const signalledMs = Date.now()
    r.child.kill('SIGINT')
    const { code, atMs } = await r.exited
    expect(code).toBe(130)
    expect(r.err()).toContain('waiting for 1 invocation(s) in flight, 5 s at most')
    expect(r.err()).toContain('abandoned, their records not checkpointed')
    expect(r.out()).toMatch(/invocations abandoned at stop\s+1\n/)
    expect(r.out()).toMatch(/records succeeded\s+0\n/)
    // The bound, then the second the executable gives its output to drain, and room to spare
    // on a busy machine; the handler's own timeout (120 s) is far beyond.
    expect(atMs - signalledMs).toBeGreaterThanOrEqual(STOP_WITHIN_MS - 500)
    expect(atMs - signalledMs).toBeLessThan(STOP_WITHIN_MS + 10_000)
  })

  it('keeps printing progress while retries wait, and stops during the wait at SIGTERM', async () => {
    const r = await run('throws.mjs', ['--progress-interval', '1'])
    // Retries wait 1, 2, then 4 s: two progress lines come during them.
    await r.seen('invoked', 2)
    await r.seen('] read 1, done 0', 2)
    const signalledMs = Date.now()
    r.child.kill('SIGTERM')
    const { code, atMs } = await r.exited
    expect(code).toBe(143)
    const invocations = Number(/invocations\s+(\d+)\n/.exec(r.out())?.[1])
    // Paced: 2 or 3 in the seconds before the signal, where unpaced retries made thousands.
    expect(invocations).toBeGreaterThanOrEqual(2)
    expect(invocations).toBeLessThanOrEqual(4)
    expect(r.out()).toMatch(/invocations abandoned at stop\s+0\n/)
    // The time waited, cut short by the signal: never more than the run lasted.
    const waited = Number(/waited before retries\s+([\d.]+) s\n/.exec(r.out())?.[1])
    const elapsed = Number(/elapsed\s+([\d.]+) s\n/.exec(r.out())?.[1])
    expect(waited).toBeGreaterThanOrEqual(1)
    expect(waited).toBeLessThanOrEqual(elapsed)
    // The wait for the retry ends at once: no bound to wait out, only the second to drain.
    expect(atMs - signalledMs).toBeLessThan(STOP_WITHIN_MS)
  })

  it('exits at once at the second SIGINT, without waiting for the invocation', async () => {
    const r = await run('endless.mjs')
    await r.seen('invoked')
    r.child.kill('SIGINT')
    await r.seen('stopping: what is in flight finishes first')
    const secondMs = Date.now()
    r.child.kill('SIGINT')
    const { code, atMs } = await r.exited
    expect(code).toBe(130)
    expect(r.out()).not.toContain('Summary')
    expect(atMs - secondMs).toBeLessThan(STOP_WITHIN_MS - 1000)
  })
})
