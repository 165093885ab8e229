import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { main } from './command.js'
import { startLocalKinesis } from './kinesalite.js'
import { produce } from './produce.js'
import { capture } from './test-helpers.js'

const SAMPLE = fileURLToPath(
  new URL('../../../examples/events/kinesis-sample.json', import.meta.url),
)
const FIRST = '49590338271490256608559692538361571095921575989136588898'
const SECOND = '49590338271490256608559692540925702759324208523137515618'

afterEach(() => {
  vi.restoreAllMocks()
})

/** Writes a handler module whose body is `source` (an async function of event and context). */
async function handlerModule(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shardwise-invoke-'))
  const path = join(dir, 'handler.mjs')
  await writeFile(path, `export const handler = ${source}\n`)
  return path
}

/** The handler that reports the record whose data is "This is only a test." (the second). */
const reportsSecond = `async (event) => ({
  batchItemFailures: event.Records
    .filter((r) => Buffer.from(r.kinesis.data, 'base64').toString() === 'This is only a test.')
    .map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })),
})`

describe('shardwise invoke, on the AWS sample event', () => {
  it('says Lambda checkpoints the whole batch after a success, and exits 0', async () => {
    const module = await handlerModule(
      `async (event, context) => ({ batchItemFailures: [], seen: event.Records.length,
        name: context.functionName, remaining: context.getRemainingTimeInMillis() })`,
    )
    const io = capture()
    expect(await main(['invoke', '--handler', module, '--event', SAMPLE])).toBe(0)
    const out = io.out()
    expect(out).toContain(`with ${SAMPLE}: 2 record(s) of shardId-000000000006, in `)
    const answer = JSON.parse(/^Answer: (.*)$/m.exec(out)?.[1] ?? 'null')
    expect(answer).toMatchObject({ batchItemFailures: [], seen: 2, name: 'local-function' })
    expect(answer.remaining).toBeGreaterThan(0)
    expect(answer.remaining).toBeLessThanOrEqual(3000)
    expect(out).toContain(
      `Success: Lambda checkpoints the whole batch, 2 record(s), up to shardId-000000000006 ${SECOND} (partition key 1).`,
    )
  })

  it('says where Lambda checkpoints and what it retries after a partial failure, and exits 1', async () => {
    const module = await handlerModule(reportsSecond)
    const io = capture()
    const args = ['invoke', '--handler', module, '--event', SAMPLE]
    args.push('--function-response-types', 'ReportBatchItemFailures')
    expect(await main(args)).toBe(1)
    expect(io.out()).toContain(`Answer: {"batchItemFailures":[{"itemIdentifier":"${SECOND}"}]}`)
    expect(io.out()).toContain(
      `Partial failure: Lambda checkpoints 1 record(s), up to shardId-000000000006 ${FIRST} (partition key 1), and retries the 1 from shardId-000000000006 ${SECOND} (partition key 1).`,
    )
    expect(io.out()).toContain(
      'Without ReportBatchItemFailures, Lambda would take this answer as a success and drop those 1 record(s).',
    )
  })

  it('says what Lambda drops when the answer reports failures without ReportBatchItemFailures', async () => {
    const module = await handlerModule(reportsSecond)
    const io = capture()
    expect(await main(['invoke', '--handler', module, '--event', SAMPLE])).toBe(0)
    expect(io.out()).toContain('Success: Lambda checkpoints the whole batch, 2 record(s)')
    expect(io.out()).toContain(
      `but ReportBatchItemFailures is off: Lambda ignores them and drops 1 record(s) the function did not finish, from shardId-000000000006 ${SECOND}`,
    )
  })

  it('says a thrown error retries the whole batch, bisected when asked, and exits 1', async () => {
    const module = await handlerModule(`async () => { throw new TypeError('boom') }`)
    const io = capture()
    const args = ['invoke', '--handler', module, '--event', SAMPLE]
    args.push('--bisect-batch-on-function-error')
    expect(await main(args)).toBe(1)
    expect(io.out()).toContain('Answer: threw TypeError: boom')
    expect(io.out()).toContain(
      `Failure (the function threw: boom): Lambda checkpoints nothing and retries all 2 record(s) from shardId-000000000006 ${FIRST}`,
    )
    expect(io.out()).toContain('splits the batch into 1 and 1 record(s) and retries each half')
  })

  it('fails a handler that runs past --timeout, as Lambda does', async () => {
    const module = await handlerModule('() => new Promise(() => {})')
    const io = capture()
    const args = ['invoke', '--handler', module, '--event', SAMPLE, '--timeout', '1']
    expect(await main(args)).toBe(1)
    expect(io.out()).toContain(
      'Failure (the function timed out: Task timed out after 1.00 seconds)',
    )
    expect(io.out()).toContain('(timeout 1 s)')
  })

  it("judges an event with a tumbling window as a window's: an answer without state fails", async () => {
    const sample = JSON.parse(await readFile(SAMPLE, 'utf8'))
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-invoke-'))
    const windowed = join(dir, 'window.json')
    await writeFile(
      windowed,
      JSON.stringify({
        ...sample,
        window: { start: '2020-12-09T07:04:00Z', end: '2020-12-09T07:06:00Z' },
        state: {},
        shardId: 'shardId-000000000006',
        eventSourceARN: sample.Records[0].eventSourceARN,
        isFinalInvokeForWindow: false,
        isWindowTerminatedEarly: false,
      }),
    )
    const stateless = await handlerModule('async () => ({ batchItemFailures: [] })')
    const io = capture()
    expect(await main(['invoke', '--handler', stateless, '--event', windowed])).toBe(1)
    expect(io.out()).toContain(
      'Failure (Lambda rejects the answer: a tumbling window needs the answer to carry `state`)',
    )
    const counting = await handlerModule(
      'async (event) => ({ state: { n: (event.state.n ?? 0) + event.Records.length } })',
    )
    expect(await main(['invoke', '--handler', counting, '--event', windowed])).toBe(0)
    expect(io.out()).toContain('Answer: {"state":{"n":2}}')
  })

  it('refuses an event Lambda would never send, naming the record', async () => {
    const sample = JSON.parse(await readFile(SAMPLE, 'utf8'))
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-invoke-'))
    const module = await handlerModule('async () => null')
    const swapped = join(dir, 'swapped.json')
    await writeFile(swapped, JSON.stringify({ Records: [...sample.Records].reverse() }))
    const io = capture()
    expect(await main(['invoke', '--handler', module, '--event', swapped])).toBe(2)
    expect(io.err()).toContain(
      `Records[1] (${FIRST}) does not come after Records[0] (${SECOND}): Lambda sends a batch in sequence order`,
    )
    const broken = join(dir, 'broken.json')
    sample.Records[1].kinesis.sequenceNumber = 'abc'
    await writeFile(broken, JSON.stringify(sample))
    expect(await main(['invoke', '--handler', module, '--event', broken])).toBe(2)
    expect(io.err()).toContain('Records[1]: kinesis.sequenceNumber "abc" is no sequence number')
    expect(await main(['invoke', '--handler', module])).toBe(2)
    expect(io.err()).toContain('--event is required')
  })
})

describe('shardwise invoke, on an event saved during a run against kinesalite', () => {
  it('replays the saved batch and finds the checkpoint the run found', async () => {
    const kinesis = await startLocalKinesis()
    try {
      await kinesis.createStream('replay', 1)
      const text = (s: string) => new TextEncoder().encode(s)
      await produce({ client: kinesis.client, stream: 'replay' }, [
        { partitionKey: 'a', data: text('ok 1') },
        { partitionKey: 'a', data: text('ok 2') },
        { partitionKey: 'a', data: text('poison') },
        { partitionKey: 'a', data: text('ok 3') },
      ])
      const dir = await mkdtemp(join(tmpdir(), 'shardwise-invoke-'))
      const saved = join(dir, 'event.json')
      // Saves the first event that holds the poison record, and reports it.
      const module = await handlerModule(`async (event) => {
        const { existsSync, writeFileSync } = await import('node:fs')
        const poison = event.Records.filter(
          (r) => Buffer.from(r.kinesis.data, 'base64').toString() === 'poison')
        if (poison.length > 0 && !existsSync(${JSON.stringify(saved)})) {
          writeFileSync(${JSON.stringify(saved)}, JSON.stringify(event))
        }
        return { batchItemFailures: poison.map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) }
      }`)
      const io = capture()
      const run = ['run', '--handler', module, '--stream', 'replay', '--endpoint', kinesis.endpoint]
      run.push('--function-response-types', 'ReportBatchItemFailures')
      run.push('--maximum-retry-attempts', '0', '--exit-when-idle', '0.5')
      run.push('--poll-interval-ms', '50', '--progress-interval', '0')
      expect(await main(run)).toBe(0)
      // No retry: the run checkpoints the 2 records before the poison and discards the rest.
      expect(io.out()).toMatch(/records succeeded\s+2\n/)
      expect(io.out()).toMatch(/records to on-failure destination\s+2 /)
      vi.restoreAllMocks()

      const event = JSON.parse(await readFile(saved, 'utf8'))
      expect(event.Records).toHaveLength(4)
      const [, second, third] = event.Records.map(
        (r: { kinesis: { sequenceNumber: string } }) => r.kinesis.sequenceNumber,
      )
      const replay = capture()
      const args = ['invoke', '--handler', module, '--event', saved]
      args.push('--function-response-types', 'ReportBatchItemFailures')
      expect(await main(args)).toBe(1)
      expect(replay.out()).toContain('4 record(s) of shardId-000000000000')
      expect(replay.out()).toContain(
        `Partial failure: Lambda checkpoints 2 record(s), up to shardId-000000000000 ${second} (partition key a), and retries the 2 from shardId-000000000000 ${third} (partition key a).`,
      )
    } finally {
      vi.restoreAllMocks()
      await kinesis.close()
    }
  })
})
