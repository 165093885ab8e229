/**
 * `ReportBatchItemFailures` is the one mapping setting Shardwise cannot work without. Without it,
 * Lambda treats an answer that returns as a complete success, whatever it says (DESIGN.md
 * section 5): the records eachRecord never started after a failure are checkpointed past and
 * lost. The READMEs must say so, near the top, and no page may teach that Lambda retries then.
 */
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { type LocalKinesis, produce, runMapping, startLocalKinesis } from '@shardwise/local'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')

async function markdownPages(dir: string): Promise<string[]> {
  const pages: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) {
      continue
    }
    const path = join(dir, entry.name)
    if (entry.isDirectory()) pages.push(...(await markdownPages(path)))
    else if (entry.name.endsWith('.md')) pages.push(path)
  }
  return pages
}

describe('the documentation of ReportBatchItemFailures', () => {
  it('never says that Lambda retries a batch when the setting is off', async () => {
    // The false claim took these forms; any of them teaches a configuration that loses records.
    const falseClaims = [
      /ignores the answer and retries/i,
      /without (it|`?ReportBatchItemFailures`?),? Lambda (ignores the answer|retries)/i,
    ]
    const offending: string[] = []
    for (const page of await markdownPages(ROOT)) {
      const text = (await readFile(page, 'utf8')).replace(/\s*\n>?\s*/g, ' ')
      for (const claim of falseClaims) {
        if (claim.test(text)) offending.push(`${relative(ROOT, page)}: ${claim}`)
      }
    }
    expect(offending).toEqual([])
  })

  it.each(['README.md', 'packages/partial-failures/README.md'])(
    '%s says near its top that the setting is required and what is lost without it',
    async (page) => {
      const top = (await readFile(join(ROOT, page), 'utf8')).split('\n').slice(0, 40).join(' ')
      expect(top).toMatch(/Required: turn on `ReportBatchItemFailures`/)
      expect(top).toMatch(/lost/)
    },
  )
})

describe('what a mapping without ReportBatchItemFailures does to a failed record (local runner)', () => {
  let kinesis: LocalKinesis
  beforeAll(async () => {
    kinesis = await startLocalKinesis()
  })
  afterAll(async () => {
    await kinesis.close()
  })

  it('checkpoints past the failed record and every record after it, none of which ran again', async () => {
    const stream = 'no-report'
    await kinesis.createStream(stream, 1)
    const encoder = new TextEncoder()
    await produce(
      { client: kinesis.client, stream },
      Array.from({ length: 20 }, (_, i) => ({ partitionKey: 'k', data: encoder.encode(`${i}`) })),
    )
    const handled: number[] = []
    let failedOnce = false
    const handler = middy(
      eachRecord(async (record) => {
        const n = Number(new TextDecoder().decode(record.data))
        if (n === 7 && !failedOnce) {
          failedOnce = true
          throw new Error('transient failure of record 7')
        }
        handled.push(n)
      }),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))

    const stats = await runMapping({
      stream,
      client: kinesis.client,
      handler,
      mapping: { batchSize: 10 },
      exitWhenIdleSeconds: 1,
      pollIntervalMs: 50,
      logger: { info: () => {}, warn: () => {} },
    })

    expect(stats.recordsRead).toBe(20)
    // Records 7, 8 and 9 never succeeded: eachRecord stopped at 7, and Lambda took the answer
    // naming 7 as a complete success.
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  })
})
