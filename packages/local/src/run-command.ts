/** `shardwise run`: a handler module on a stream, with the mapping's settings from the flags. */
import { readFileSync } from 'node:fs'
import { messageOf } from '@shardwise/core'

import { type Command, type Flags, number, text, UsageError, type Values } from './cli-args.js'
import { runMapping } from './mapping.js'
import type { MappingSettings, StartingPosition } from './settings.js'
import { progressLine, summary } from './summary.js'

export const runFlags = {
  handler: { type: 'string' },
  stream: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  timeout: { type: 'string' },
  'batch-size': { type: 'string' },
  'maximum-batching-window-in-seconds': { type: 'string' },
  'starting-position': { type: 'string' },
  'starting-position-timestamp': { type: 'string' },
  'function-response-types': { type: 'string', multiple: true },
  'bisect-batch-on-function-error': { type: 'boolean' },
  'maximum-retry-attempts': { type: 'string' },
  'maximum-record-age-in-seconds': { type: 'string' },
  'parallelization-factor': { type: 'string' },
  'tumbling-window-in-seconds': { type: 'string' },
  'filter-criteria': { type: 'string' },
  'on-failure': { type: 'string' },
  'exit-when-idle': { type: 'string' },
  'poll-interval-ms': { type: 'string' },
  'progress-interval': { type: 'string' },
  verbose: { type: 'boolean' },
} satisfies Flags

export const runCommand: Command = {
  name: 'run',
  flags: runFlags,
  async run(values, signal) {
    const handler = text(values, 'handler')
    const stream = text(values, 'stream')
    if (handler === undefined) throw new UsageError('--handler is required')
    if (stream === undefined) throw new UsageError('--stream is required')
    const progressSeconds = number(values, 'progress-interval') ?? 5
    const verbose = values.verbose === true
    const stats = await runMapping({
      stream,
      handler,
      mapping: mappingSettings(values),
      endpoint: text(values, 'endpoint'),
      region: text(values, 'region'),
      onFailure: text(values, 'on-failure'),
      timeoutSeconds: number(values, 'timeout'),
      exitWhenIdleSeconds: number(values, 'exit-when-idle'),
      pollIntervalMs: number(values, 'poll-interval-ms'),
      signal,
      onProgress:
        progressSeconds > 0 ? (s) => process.stderr.write(`${progressLine(s)}\n`) : undefined,
      progressIntervalMs: progressSeconds > 0 ? progressSeconds * 1000 : undefined,
      logger: {
        info: (message) => {
          if (verbose) process.stderr.write(`${message}\n`)
        },
        warn: (message) => process.stderr.write(`${message}\n`),
      },
    })
    process.stdout.write(summary(stats))
    return 0
  },
}

/** The JSON itself, or `file://<path>` to read it from a file, as the AWS CLI takes it. */
function filterCriteria(value: string | undefined): string | undefined {
  if (value === undefined || !value.startsWith('file://')) return value
  const path = value.slice('file://'.length)
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`--filter-criteria: cannot read ${path}: ${messageOf(error)}`)
  }
}

/** The `aws lambda create-event-source-mapping` flags, as `runMapping`'s `mapping`. */
export function mappingSettings(values: Values): MappingSettings {
  const settings: MappingSettings = {}
  const set = <K extends keyof MappingSettings>(key: K, value: MappingSettings[K] | undefined) => {
    if (value !== undefined) settings[key] = value
  }
  set('batchSize', number(values, 'batch-size'))
  set('maximumBatchingWindowInSeconds', number(values, 'maximum-batching-window-in-seconds'))
  set('startingPosition', text(values, 'starting-position') as StartingPosition | undefined)
  set('startingPositionTimestamp', number(values, 'starting-position-timestamp'))
  const types = values['function-response-types'] as string[] | undefined
  if (types !== undefined) {
    // The AWS CLI takes a space-separated list; accept commas too.
    const list = types.flatMap((t) => t.split(/[\s,]+/)).filter((t) => t !== '')
    for (const t of list) {
      if (t !== 'ReportBatchItemFailures') {
        throw new UsageError(`--function-response-types takes ReportBatchItemFailures, got ${t}`)
      }
    }
    settings.functionResponseTypes = list as Array<'ReportBatchItemFailures'>
  }
  set('bisectBatchOnFunctionError', values['bisect-batch-on-function-error'] as boolean | undefined)
  set('maximumRetryAttempts', number(values, 'maximum-retry-attempts'))
  set('maximumRecordAgeInSeconds', number(values, 'maximum-record-age-in-seconds'))
  set('parallelizationFactor', number(values, 'parallelization-factor'))
  set('tumblingWindowInSeconds', number(values, 'tumbling-window-in-seconds'))
  set('filterCriteria', filterCriteria(text(values, 'filter-criteria')))
  return settings
}
