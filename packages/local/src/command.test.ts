import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { allFlags, main } from './command.js'
import { startLocalKinesis } from './kinesalite.js'
import { produce } from './produce.js'

function capture() {
  let out = ''
  let err = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk)
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk)
    return true
  })
  return { out: () => out, err: () => err }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('shardwise', () => {
  it('--help documents every flag the parser accepts', async () => {
    const io = capture()
    expect(await main(['--help'])).toBe(0)
    const help = io.out()
    const flags = Object.keys(allFlags)
    expect(flags.length).toBeGreaterThan(15)
    for (const flag of flags) expect(help).toContain(`--${flag}`)
    expect(help).toContain('--no-bisect-batch-on-function-error')
  })

  it('takes no command for a usage mistake: exit 2, the reason on stderr, nothing on stdout', async () => {
    const io = capture()
    expect(await main([])).toBe(2)
    expect(io.err()).toBe(
      'shardwise: missing command: run or demo\nRun shardwise --help for the options.\n',
    )
    expect(io.out()).toBe('')
    expect(await main(['--verbose'])).toBe(2)
  })

  it('refuses an unknown flag', async () => {
    const io = capture()
    expect(await main(['run', '--batchsize', '10'])).toBe(2)
    expect(io.err()).toContain('batchsize')
  })

  it('refuses a flag that needs a number', async () => {
    const io = capture()
    expect(await main(['run', '--handler', 'h.js', '--stream', 's', '--batch-size', 'ten'])).toBe(2)
    expect(io.err()).toContain('--batch-size takes a number')
  })

  it('takes -1 after a flag, as the AWS CLI writes it, and names the flag of a value out of bounds', async () => {
    const io = capture()
    const base = ['run', '--handler', 'h.js', '--stream', 's']
    // -1 parses: the run then fails on the missing module, not on the arguments.
    expect(await main([...base, '--maximum-retry-attempts', '-1', '--batch-size', '0'])).toBe(2)
    expect(io.err()).not.toContain('ambiguous')
    expect(io.err()).toContain('--batch-size must be >= 1')
  })

  it('refuses a response type Lambda does not know', async () => {
    const io = capture()
    const args = [
      'run',
      '--handler',
      'h.js',
      '--stream',
      's',
      '--function-response-types',
      'Partial',
    ]
    expect(await main(args)).toBe(2)
    expect(io.err()).toContain('ReportBatchItemFailures')
  })

  it('asks for the handler and the stream', async () => {
    const io = capture()
    expect(await main(['run', '--stream', 's'])).toBe(2)
    expect(io.err()).toContain('--handler is required')
  })

  it('says why a handler module cannot be imported', async () => {
    // What an esbuild ESM bundle of a CommonJS dependency throws at load without a require banner.
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-cli-'))
    const module = join(dir, 'broken.mjs')
    await writeFile(module, 'throw new Error(\'Dynamic require of "buffer" is not supported\')\n')
    const io = capture()
    const args = ['run', '--handler', module, '--stream', 's', '--endpoint', 'http://127.0.0.1:1']
    expect(await main(args)).toBe(2)
    expect(io.err()).toContain(
      `cannot import the handler module ${module}: Dynamic require of "buffer" is not supported`,
    )
    const missing = join(dir, 'missing.mjs')
    expect(await main(['run', '--handler', missing, '--stream', 's'])).toBe(2)
    expect(io.err()).toMatch(/cannot import the handler module .*missing\.mjs: Cannot find module/)
  })
})

describe('shardwise run', () => {
  it('runs a handler module on a stream and prints the summary', async () => {
    const kinesis = await startLocalKinesis()
    try {
      await kinesis.createStream('cli', 2)
      const data = (text: string) => new TextEncoder().encode(text)
      await produce({ client: kinesis.client, stream: 'cli' }, [
        { partitionKey: 'a', data: data('ok') },
        { partitionKey: 'b', data: data('poison') },
        { partitionKey: 'c', data: data('ok') },
      ])
      const dir = await mkdtemp(join(tmpdir(), 'shardwise-cli-'))
      const module = join(dir, 'handler.mjs')
      await writeFile(
        module,
        `export const consume = async (event) => ({
          batchItemFailures: event.Records
            .filter((r) => Buffer.from(r.kinesis.data, 'base64').toString() === 'poison')
            .map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })),
        })\n`,
      )
      const onFailure = join(dir, 'failed.jsonl')
      const io = capture()
      const code = await main([
        'run',
        '--handler',
        `${module}:consume`,
        '--stream',
        'cli',
        '--endpoint',
        kinesis.endpoint,
        '--function-response-types',
        'ReportBatchItemFailures',
        '--maximum-retry-attempts',
        '1',
        '--on-failure',
        onFailure,
        '--exit-when-idle',
        '0.5',
        '--poll-interval-ms',
        '50',
        '--progress-interval',
        '0',
      ])
      expect(io.err()).toContain('RetryAttemptsExhausted: discarded 1 record')
      expect(code).toBe(0)
      const out = io.out()
      expect(out).toMatch(/records read\s+3\n/)
      expect(out).toMatch(/records succeeded\s+2\n/)
      expect(out).toMatch(/retries\s+1\n/)
      expect(out).toMatch(/records to on-failure destination\s+1 \(1 batch\(es\)\)/)
      expect(out).toMatch(/records per second\s+\d+/)
      expect((await readFile(onFailure, 'utf8')).trim().split('\n')).toHaveLength(1)
    } finally {
      vi.restoreAllMocks()
      await kinesis.close()
    }
  })
})
