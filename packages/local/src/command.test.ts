import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { COMMANDS, main } from './command.js'
import { invokeCommand } from './invoke-command.js'
import { startLocalKinesis } from './kinesalite.js'
import { produce } from './produce.js'
import { capture } from './test-helpers.js'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('shardwise', () => {
  it('<command> --help documents every flag that command takes, and only its own', async () => {
    for (const command of COMMANDS) {
      const io = capture()
      expect(await main([command.name, '--help'])).toBe(0)
      const help = io.out()
      expect(help).toMatch(new RegExp(`^Usage: shardwise ${command.name} `))
      for (const flag of Object.keys(command.flags)) expect(help).toContain(`--${flag}`)
      expect(help).toContain('-h, --help')
      vi.restoreAllMocks()
    }
    const io = capture()
    expect(await main(['run', '--help'])).toBe(0)
    expect(io.out()).toContain('--no-bisect-batch-on-function-error')
    // A flag of another command is refused, with the command's own help named.
    expect(await main(['demo', '--batch-size', '3'])).toBe(2)
    expect(io.err()).toContain("Unknown option '--batch-size'")
    expect(io.err()).toContain('Run shardwise demo --help for the options.')
  })

  it('--help lists every command; help <command> is <command> --help', async () => {
    const io = capture()
    expect(await main(['--help'])).toBe(0)
    for (const command of COMMANDS) expect(io.out()).toContain(`  ${command.name}  `)
    expect(io.out()).toContain('--version')
    vi.restoreAllMocks()
    const help = capture()
    expect(await main(['help', 'invoke'])).toBe(0)
    expect(help.out()).toBe(invokeCommand.help)
  })

  it('--version prints the version of the package', async () => {
    const io = capture()
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect(await main(['--version'])).toBe(0)
    expect(io.out()).toBe(`${pkg.version}\n`)
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('takes no command for a usage mistake: exit 2, the reason on stderr, nothing on stdout', async () => {
    const io = capture()
    expect(await main([])).toBe(2)
    const names = COMMANDS.map((c) => c.name)
    expect(io.err()).toBe(
      `shardwise: missing command: ${names.slice(0, -1).join(', ')} or ${names.at(-1)}\n` +
        'Run shardwise --help for the options.\n',
    )
    expect(io.out()).toBe('')
    expect(await main(['--verbose'])).toBe(2)
    expect(await main(['bogus'])).toBe(2)
    expect(io.err()).toContain(`unknown command bogus (commands: ${names.join(', ')})`)
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

/** A handler module that appends each invocation's decoded payloads, one JSON array a line. */
async function recordingHandler(
  dir: string,
): Promise<{ module: string; calls: () => Promise<string[][]> }> {
  const log = join(dir, 'calls.jsonl')
  const module = join(dir, 'recording.mjs')
  await writeFile(
    module,
    `import { appendFileSync } from 'node:fs'
    export const handler = async (event) => {
      const payloads = event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString('latin1'))
      appendFileSync(${JSON.stringify(log)}, JSON.stringify(payloads) + '\\n')
      return { batchItemFailures: [] }
    }\n`,
  )
  const calls = async () =>
    (await readFile(log, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as string[])
  return { module, calls }
}

describe('shardwise run --filter-criteria', () => {
  it('invokes only the records that match a filter, and moves past the others', async () => {
    const kinesis = await startLocalKinesis()
    try {
      await kinesis.createStream('filtered', 1)
      const text = (s: string) => new TextEncoder().encode(s)
      const json = (v: unknown) => text(JSON.stringify(v))
      // In put order: the last record matches no filter, so the shard ends on a filtered one.
      await produce({ client: kinesis.client, stream: 'filtered' }, [
        { partitionKey: 'a', data: json({ event_type: 'function_1', message: 'foo' }) },
        { partitionKey: 'a', data: json({ event_type: 'function_2', message: 'bar' }) },
        { partitionKey: 'a', data: text('plain text, not JSON') },
        { partitionKey: 'vip', data: text('plain text from a VIP') },
        { partitionKey: 'a', data: json({ event_type: 'function_1', message: 'baz', n: 300.0 }) },
        { partitionKey: 'a', data: json({ event_type: 'FUNCTION_1', message: 'qux' }) },
        { partitionKey: 'a', data: json({ event_type: 'function_3' }) },
      ])
      const dir = await mkdtemp(join(tmpdir(), 'shardwise-filter-'))
      const handler = await recordingHandler(dir)
      const criteria = {
        Filters: [
          { Pattern: JSON.stringify({ data: { event_type: ['function_1'] } }) },
          { Pattern: JSON.stringify({ partitionKey: [{ prefix: 'vip' }] }) },
        ],
      }
      const file = join(dir, 'criteria.json')
      await writeFile(file, JSON.stringify(criteria))
      const io = capture()
      const code = await main([
        'run',
        '--handler',
        handler.module,
        '--stream',
        'filtered',
        '--endpoint',
        kinesis.endpoint,
        '--function-response-types',
        'ReportBatchItemFailures',
        '--batch-size',
        '2',
        '--filter-criteria',
        `file://${file}`,
        '--exit-when-idle',
        '0.5',
        '--poll-interval-ms',
        '50',
        '--progress-interval',
        '0',
      ])
      // Nothing but the start line: no warning.
      expect(io.err()).toBe(
        'progress is not kept: a new run starts again from the starting position (--checkpoint-file <path> keeps it)\n',
      )
      expect(code).toBe(0)
      // Batches are formed from the records that match, in order: 3 of 7, in two invocations.
      expect(await handler.calls()).toEqual([
        ['{"event_type":"function_1","message":"foo"}', 'plain text from a VIP'],
        ['{"event_type":"function_1","message":"baz","n":300}'],
      ])
      expect(io.out()).toMatch(/records read\s+7\n/)
      expect(io.out()).toMatch(/records filtered out\s+4\n/)
      expect(io.out()).toMatch(/records succeeded\s+3\n/)
      expect(io.out()).toMatch(/invocations\s+2\n/)
    } finally {
      vi.restoreAllMocks()
      await kinesis.close()
    }
  })

  it('gives each of two mappings the record of its own event_type, as recorded on AWS', async () => {
    // kinesis-esm-recorded-on-aws.json, test_kinesis_event_filtering_json_pattern: two mappings
    // on one stream, patterns on data.event_type function_1 and function_2; the first function
    // received [{"event_type": "function_1", "message": "foo"}].
    const kinesis = await startLocalKinesis()
    try {
      await kinesis.createStream('two-mappings', 1)
      const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
      await produce({ client: kinesis.client, stream: 'two-mappings' }, [
        { partitionKey: 'k', data: json({ event_type: 'function_1', message: 'foo' }) },
        { partitionKey: 'k', data: json({ event_type: 'function_2', message: 'bar' }) },
      ])
      const received: unknown[][] = []
      for (const type of ['function_1', 'function_2']) {
        const dir = await mkdtemp(join(tmpdir(), 'shardwise-filter-'))
        const handler = await recordingHandler(dir)
        const io = capture()
        const pattern = JSON.stringify({ data: { event_type: [type] } })
        const args = ['run', '--handler', handler.module, '--stream', 'two-mappings']
        args.push('--endpoint', kinesis.endpoint, '--batch-size', '1')
        args.push('--filter-criteria', JSON.stringify({ Filters: [{ Pattern: pattern }] }))
        args.push('--exit-when-idle', '0.5', '--poll-interval-ms', '50', '--progress-interval', '0')
        expect(await main(args)).toBe(0)
        expect(io.out()).toMatch(/invocations\s+1\n/)
        vi.restoreAllMocks()
        received.push((await handler.calls()).flat().map((p) => JSON.parse(p)))
      }
      expect(received).toEqual([
        [{ event_type: 'function_1', message: 'foo' }],
        [{ event_type: 'function_2', message: 'bar' }],
      ])
    } finally {
      vi.restoreAllMocks()
      await kinesis.close()
    }
  })

  it('refuses an invalid pattern before reading, with the filter, the field and the reason', async () => {
    const io = capture()
    const pattern = JSON.stringify({ data: { amount: [{ numeric: ['>', 'ten'] }] } })
    const args = ['run', '--handler', 'h.js', '--stream', 's', '--endpoint', 'http://127.0.0.1:1']
    args.push('--filter-criteria', JSON.stringify({ Filters: [{ Pattern: pattern }] }))
    expect(await main(args)).toBe(2)
    expect(io.err()).toContain(
      'FilterCriteria: Filters[0].Pattern data.amount: numeric takes ["<op>", <number>]',
    )
  })
})
