/** The `shardwise` executable as a user runs it: a process, its output and its exit status. */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../../packages/local/dist/cli.js', import.meta.url))
const SAMPLE = fileURLToPath(new URL('../../examples/events/kinesis-sample.json', import.meta.url))

/** Long enough for a process that ends by itself, however busy the machine; then it is killed. */
const KILL_AFTER_MS = 120_000

function shardwise(args: string[], stdin?: string) {
  return new Promise<{ code: number | null; signal: string | null; out: string; err: string }>(
    (done) => {
      const child = execFile(process.execPath, [CLI, ...args], { timeout: KILL_AFTER_MS }, () => {
        done({ code: child.exitCode, signal: child.signalCode, out, err })
      })
      child.stdin?.end(stdin ?? '')
      let out = ''
      let err = ''
      child.stdout?.on('data', (chunk) => {
        out += chunk
      })
      child.stderr?.on('data', (chunk) => {
        err += chunk
      })
    },
  )
}

describe('the shardwise executable', { timeout: 30_000 }, () => {
  it('prints its version', async () => {
    const pkg = JSON.parse(
      await readFile(new URL('../../packages/local/package.json', import.meta.url), 'utf8'),
    )
    const { code, out } = await shardwise(['--version'])
    expect([code, out]).toEqual([0, `${pkg.version}\n`])
  })

  it('exits after invoke even when the handler leaves a timer running, as Lambda freezes it', {
    timeout: KILL_AFTER_MS + 30_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-exe-'))
    const module = join(dir, 'lingering.mjs')
    // Times out (1 s) and leaves an interval that would keep Node alive for ever.
    await writeFile(
      module,
      'export const handler = () => new Promise(() => { setInterval(() => {}, 1000) })\n',
    )
    const run = await shardwise([
      'invoke',
      '--handler',
      module,
      '--event',
      SAMPLE,
      '--timeout',
      '1',
    ])
    expect(run.out).toContain('Task timed out after 1.00 seconds')
    // It exited by itself: one that stayed would be killed by the signal after KILL_AFTER_MS.
    expect([run.code, run.signal]).toEqual([1, null])
  })

  it('invoke reads the event from stdin with --event -', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-exe-'))
    const module = join(dir, 'ok.mjs')
    await writeFile(
      module,
      'export const handler = async (event) => ({ n: event.Records.length })\n',
    )
    const sample = await readFile(SAMPLE, 'utf8')
    const run = await shardwise(['invoke', '--handler', module, '--event', '-'], sample)
    expect(run.out).toContain('Answer: {"n":2}')
    expect(run.code).toBe(0)
  })
})
