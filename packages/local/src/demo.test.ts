import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { demoWorkload, runDemo } from './demo.js'

describe('shardwise demo', { timeout: 60_000 }, () => {
  it('explains its numbers, ends no line on a colon, and removes its temporary folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-demo-test-'))
    const module = join(dir, 'handler.mjs')
    // Reports each poison record (not JSON) until Lambda gives up on it; no report().
    await writeFile(
      module,
      `export const handler = async (event) => ({
        batchItemFailures: event.Records
          .filter((r) => Buffer.from(r.kinesis.data, 'base64').toString().startsWith('{not json'))
          .slice(0, 1)
          .map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })),
      })\n`,
    )
    const temp = await mkdtemp(join(tmpdir(), 'shardwise-demo-temp-'))
    const out = new PassThrough()
    let text = ''
    out.on('data', (chunk) => {
      text += String(chunk)
    })
    await runDemo({ handler: module, out, size: { keys: 4, perKey: 10 }, tempDir: temp })

    // 4 keys x 10 rounds: round 3 is a KPL aggregate of 5, round 7 gzip, the rest JSON.
    const workload = demoWorkload(4, 10)
    expect([workload.json, workload.gzip, workload.kplAggregates, workload.messages]).toEqual([
      32, 4, 4, 56,
    ])
    expect(text).toContain(
      'putting 44 Kinesis records: 32 JSON, 4 gzip, 4 KPL aggregates carrying 20 messages, and 4 poison records',
    )
    expect(text).toMatch(/records read\s+44\n/)
    expect(text).toContain('What the numbers mean')
    expect(text).toContain('Kinesis records, as Lambda counts them (44 read)')
    expect(text).toContain('sees 56 messages in the 40 good records, and 4 poison records')
    // The summary's row, not a progress line's count on the way.
    const bisects = /\n {2}bisects\s+(\d+)\n/.exec(text)?.[1]
    expect(text).toContain(`count as bisects (${bisects}) rather than retries`)
    expect(text).toMatch(/counts as a retry \(\d+\)\./)
    // The poison records were given up on after 2 retries: one document each.
    expect(text).toMatch(/records to on-failure destination\s+4 \(4 batch\(es\)\)/)
    expect(text).toContain('On-failure destination: 4 document(s), one per discarded batch')
    expect(text.match(/, RetryAttemptsExhausted after \d+ invocations\n/g)).toHaveLength(4)
    expect(text).not.toContain("The handler's account")
    const colonEnded = text.split('\n').filter((line) => line.trimEnd().endsWith(':'))
    expect(colonEnded).toEqual([])
    expect(await readdir(temp)).toEqual([])
  })
})
