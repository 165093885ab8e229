/**
 * `shardwise demo`: kinesalite in this process, a stream of several shards, a mixed workload
 * (JSON, KPL aggregates, gzip, a few poison records), and a handler run through the mapping
 * with bisect, retries, partial failures and parallelization on. The workload and the settings
 * are defined here, once; the handler is a module of `examples/`.
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { startLocalKinesis } from './kinesalite.js'
import { runMapping } from './mapping.js'
import { aggregate, type ProducedRecord, produce } from './produce.js'
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

/**
 * The workload, in the order it is put: per key, messages numbered from 0. Every fifth record of
 * a key alternates between a KPL aggregate of 5 messages and a gzip record; a few records are
 * poison (bytes that are no JSON at all).
 */
export function demoWorkload(keys = 40, perKey = 150, poison = 4): ProducedRecord[] {
  const encoder = new TextEncoder()
  const records: ProducedRecord[] = []
  const json = (message: DemoMessage) => encoder.encode(JSON.stringify(message))
  for (let round = 0; round < perKey; round++) {
    for (let k = 0; k < keys; k++) {
      const key = `device-${k}`
      if (round % 10 === 3) {
        const parts: ProducedRecord[] = []
        for (let s = 0; s < 5; s++) {
          parts.push({ partitionKey: key, data: json({ key, n: round * 10 + s, format: 'kpl' }) })
        }
        records.push(aggregate(parts))
      } else if (round % 10 === 7) {
        records.push({
          partitionKey: key,
          data: gzipSync(json({ key, n: round * 10, format: 'gzip' })),
        })
      } else {
        records.push({ partitionKey: key, data: json({ key, n: round * 10, format: 'json' }) })
      }
    }
  }
  // Poison records spread over the stream, each under its own key.
  for (let p = 0; p < poison; p++) {
    const at = Math.floor(((p + 1) * records.length) / (poison + 1))
    records.splice(at, 0, { partitionKey: `poison-${p}`, data: encoder.encode(`{not json #${p}`) })
  }
  return records
}

export interface DemoOptions {
  /** `<module>[:<export>]` of the handler. */
  handler: string
  out: NodeJS.WritableStream
  signal?: AbortSignal
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { out } = options
  const kinesis = await startLocalKinesis()
  try {
    await kinesis.createStream(DEMO_STREAM, DEMO_SHARDS)
    const workload = demoWorkload()
    out.write(
      `kinesalite at ${kinesis.endpoint}: stream ${DEMO_STREAM} with ${DEMO_SHARDS} shards\n` +
        `putting ${workload.length} records (JSON, KPL aggregates, gzip, and poison)...\n`,
    )
    await produce({ client: kinesis.client, stream: DEMO_STREAM }, workload)

    const dir = await mkdtemp(join(tmpdir(), 'shardwise-demo-'))
    const onFailure = join(dir, 'on-failure.jsonl')
    out.write(`mapping: ${JSON.stringify(DEMO_MAPPING)}\nhandler: ${options.handler}\n`)
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

    const lines = (await readFile(onFailure, 'utf8').catch(() => '')).split('\n').filter(Boolean)
    out.write(`\nOn-failure destination ${onFailure} (${lines.length} document(s)):\n`)
    for (const line of lines) {
      const { KinesisBatchInfo: info, requestContext } = JSON.parse(line)
      const range =
        info.batchSize === 1
          ? info.startSequenceNumber
          : `${info.startSequenceNumber} to ${info.endSequenceNumber} (${info.batchSize} records)`
      out.write(
        `  ${info.shardId} ${range}: ${requestContext.condition} after ${requestContext.approximateInvokeCount} invocations\n`,
      )
    }
    await describeHandler(options.handler, out)
  } finally {
    await kinesis.close()
  }
}

/** Prints the handler module's own account of what it saw, when it exports `report()`. */
async function describeHandler(spec: string, out: NodeJS.WritableStream): Promise<void> {
  const colon = spec.lastIndexOf(':')
  const path = colon > 1 ? spec.slice(0, colon) : spec
  const mod = (await import(pathToFileURL(resolve(path)).href)) as { report?: () => string }
  if (typeof mod.report === 'function') out.write(`\nThe handler's account:\n${mod.report()}\n`)
}
