/**
 * `shardwise demo`: kinesalite in this process, a stream of several shards, a mixed workload
 * (JSON, KPL aggregates, gzip, a few poison records), and a handler run through the mapping
 * with bisect, retries, partial failures and parallelization on. The workload and the settings
 * are defined here, once; the handler is a module of `examples/`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { kplAggregate } from '@shardwise/testing'
import { startLocalKinesis } from './kinesalite.js'
import { type MappingStats, runMapping } from './mapping.js'
import { type ProducedRecord, produce } from './produce.js'
import type { MappingSettings } from './settings.js'
import { progressLine, summary } from './summary.js'

export const DEMO_STREAM = 'shardwise-demo'
export const DEMO_SHARDS = 4

/** The mapping the demo runs with: what a careful team would deploy. */
export const DEMO_MAPPING: MappingSettings = {
  batchSize: 100,
  functionResponseTypes: ['ReportBatchItemFailures'],
  bisectBatchOnFunctionError: true,
  maximumRetryAttempts: 2,
  parallelizationFactor: 2,
  startingPosition: 'TRIM_HORIZON',
}

/** What each demo record carries once decoded: its key's counter, so order can be checked. */
export interface DemoMessage {
  key: string
  n: number
  format: 'json' | 'kpl' | 'gzip'
}

/** The workload and what it holds, for the lines that explain the summary. */
export interface DemoWorkload {
  /** In the order they are put: what Lambda counts as records. */
  records: ProducedRecord[]
  /** Messages the handler sees once it de-aggregates: a KPL aggregate carries several. */
  messages: number
  json: number
  gzip: number
  kplAggregates: number
  kplMessages: number
  poison: number
}

/**
 * The workload, in the order it is put: per key, messages numbered from 0. Every fifth record of
 * a key alternates between a KPL aggregate of 5 messages and a gzip record; a few records are
 * poison (bytes that are no JSON at all).
 */
export function demoWorkload(keys = 40, perKey = 150, poison = 4): DemoWorkload {
  const encoder = new TextEncoder()
  const records: ProducedRecord[] = []
  const json = (message: DemoMessage) => encoder.encode(JSON.stringify(message))
  const counts = { json: 0, gzip: 0, kplAggregates: 0, kplMessages: 0 }
  for (let round = 0; round < perKey; round++) {
    for (let k = 0; k < keys; k++) {
      const key = `device-${k}`
      if (round % 10 === 3) {
        const parts: ProducedRecord[] = []
        for (let s = 0; s < 5; s++) {
          parts.push({ partitionKey: key, data: json({ key, n: round * 10 + s, format: 'kpl' }) })
        }
        records.push(kplAggregate(parts))
        counts.kplAggregates++
        counts.kplMessages += parts.length
      } else if (round % 10 === 7) {
        records.push({
          partitionKey: key,
          data: gzipSync(json({ key, n: round * 10, format: 'gzip' })),
        })
        counts.gzip++
      } else {
        records.push({ partitionKey: key, data: json({ key, n: round * 10, format: 'json' }) })
        counts.json++
      }
    }
  }
  // Poison records spread over the stream, each under its own key.
  for (let p = 0; p < poison; p++) {
    const at = Math.floor(((p + 1) * records.length) / (poison + 1))
    records.splice(at, 0, { partitionKey: `poison-${p}`, data: encoder.encode(`{not json #${p}`) })
  }
  return {
    records,
    messages: counts.json + counts.gzip + counts.kplMessages,
    ...counts,
    poison,
  }
}

export interface DemoOptions {
  /** `<module>[:<export>]` of the handler. */
  handler: string
  out: NodeJS.WritableStream
  signal?: AbortSignal
  /** A smaller workload, for tests: keys and messages per key (default 40 and 150). */
  size?: { keys: number; perKey: number }
  /** Where the temporary folder is made (and removed). Default: the system's. */
  tempDir?: string
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { out } = options
  const kinesis = await startLocalKinesis()
  // The on-failure file lives in a folder of its own, removed at the end with what it holds.
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'shardwise-demo-'))
  try {
    await kinesis.createStream(DEMO_STREAM, DEMO_SHARDS)
    const workload = demoWorkload(options.size?.keys, options.size?.perKey)
    out.write(
      `kinesalite at ${kinesis.endpoint}, stream ${DEMO_STREAM} with ${DEMO_SHARDS} shards\n` +
        `putting ${workload.records.length} Kinesis records: ${workload.json} JSON, ` +
        `${workload.gzip} gzip, ${workload.kplAggregates} KPL aggregates carrying ` +
        `${workload.kplMessages} messages, and ${workload.poison} poison records\n`,
    )
    await produce({ client: kinesis.client, stream: DEMO_STREAM }, workload.records)

    const onFailure = join(dir, 'on-failure.jsonl')
    out.write(`mapping: ${describeMapping(DEMO_MAPPING)}\nhandler: ${options.handler}\n`)
    const stats = await runMapping({
      stream: DEMO_STREAM,
      handler: options.handler,
      client: kinesis.client,
      region: kinesis.region,
      mapping: DEMO_MAPPING,
      onFailure,
      timeoutSeconds: 10,
      exitWhenIdleSeconds: 2,
      pollIntervalMs: 200,
      functionName: 'shardwise-demo',
      signal: options.signal,
      logger: { info: () => {}, warn: (message) => out.write(`  ${message}\n`) },
      onProgress: (stats) => out.write(`${progressLine(stats)}\n`),
      progressIntervalMs: 1000,
    })
    out.write(summary(stats))
    out.write(meaning(stats, workload))

    const lines = (await readFile(onFailure, 'utf8').catch(() => '')).split('\n').filter(Boolean)
    if (lines.length === 0) {
      out.write('\nOn-failure destination: no document, as no batch was discarded\n')
    } else {
      out.write(`\nOn-failure destination: ${lines.length} document(s), one per discarded batch\n`)
    }
    for (const line of lines) {
      const { KinesisBatchInfo: info, requestContext } = JSON.parse(line)
      const range =
        info.batchSize === 1
          ? info.startSequenceNumber
          : `${info.startSequenceNumber} to ${info.endSequenceNumber} (${info.batchSize} records)`
      out.write(
        `  ${info.shardId} ${range}, ${requestContext.condition} after ${requestContext.approximateInvokeCount} invocations\n`,
      )
    }
    await describeHandler(options.handler, out)
  } finally {
    await rm(dir, { recursive: true, force: true })
    await kinesis.close()
  }
}

/** `batch size 100, ReportBatchItemFailures, ...`: the demo's settings in words. */
function describeMapping(m: MappingSettings): string {
  const parts = [`batch size ${m.batchSize}`]
  if (m.functionResponseTypes?.includes('ReportBatchItemFailures')) {
    parts.push('ReportBatchItemFailures')
  }
  if (m.bisectBatchOnFunctionError) parts.push('bisect on function error')
  parts.push(`at most ${m.maximumRetryAttempts} retries`)
  parts.push(`parallelization factor ${m.parallelizationFactor}`)
  parts.push(`from ${m.startingPosition}`)
  return parts.join(', ')
}

/** What the summary's numbers mean on this workload, for a reader new to Lambda's counts. */
function meaning(stats: MappingStats, workload: DemoWorkload): string {
  const retries = DEMO_MAPPING.maximumRetryAttempts
  return [
    '',
    'What the numbers mean',
    `  Records are Kinesis records, as Lambda counts them (${stats.recordsRead} read). A KPL aggregate is one`,
    `  record however many messages it carries: a handler that de-aggregates (the demo's does, with`,
    `  kinesisDecode) sees ${workload.messages} messages in the ${workload.records.length - workload.poison} good records, and ${workload.poison} poison records.`,
    '  Retries count failed invocations run again as they were; bisects count splits. With',
    '  ReportBatchItemFailures and bisect both on, Lambda splits a batch at the record the handler',
    `  reports, so the failures it reports count as bisects (${stats.bisects}) rather than retries; a batch of`,
    `  one record that fails again counts as a retry (${stats.retries}).`,
    `  Records to on-failure destination are those Lambda gave up on after ${retries} retries (${stats.recordsToDestination});`,
    "  a handler that sends poison records to a dead-letter sink of its own, as the demo's does,",
    '  keeps its batches from failing for ever.',
    '',
  ].join('\n')
}

/** Prints the handler module's own account of what it saw, when it exports `report()`. */
async function describeHandler(spec: string, out: NodeJS.WritableStream): Promise<void> {
  const colon = spec.lastIndexOf(':')
  const path = colon > 1 ? spec.slice(0, colon) : spec
  const mod = (await import(pathToFileURL(resolve(path)).href)) as { report?: () => string }
  const report = typeof mod.report === 'function' ? mod.report() : ''
  if (report.trim() !== '') out.write(`\nThe handler's account, from its report()\n${report}\n`)
}
