/**
 * `shardwise`: run a Lambda Kinesis handler against a stream with the event source mapping's
 * rules (`shardwise run`), or watch it on a generated workload (`shardwise demo`).
 */
import { existsSync } from 'node:fs'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { ConfigurationError, messageOf } from '@shardwise/core'
import { runDemo } from './demo.js'
import { type MappingStats, runMapping } from './mapping.js'
import type { MappingSettings, StartingPosition } from './settings.js'

const HELP = `Usage:
  shardwise run --handler <module>[:<export>] --stream <name> [options]
  shardwise demo [--handler <module>[:<export>]]

Runs a Lambda handler for Kinesis events locally, against a real stream, with the rules of
Lambda's event source mapping. Mapping flags are named as in
\`aws lambda create-event-source-mapping\`.

Function:
  --handler <module>[:<export>]   the handler module (a path, relative to the current
                                  directory) and its export; default export name: handler
  --timeout <seconds>             the function's timeout, 1 to 900 (default 3)

Stream:
  --stream <name>                 the stream to read
  --endpoint <url>                a Kinesis endpoint (kinesalite, LocalStack); without it, AWS
  --region <region>               default: $AWS_REGION, then us-east-1

Event source mapping:
  --batch-size <n>                          records per invocation, 1 to 10000 (default 100)
  --maximum-batching-window-in-seconds <n>  wait for a full batch up to n seconds, 0 to 300 (default 0)
  --starting-position <position>            TRIM_HORIZON (default), LATEST or AT_TIMESTAMP
  --starting-position-timestamp <seconds>   epoch seconds, with AT_TIMESTAMP
  --function-response-types ReportBatchItemFailures
                                            read batchItemFailures from the answer
  --bisect-batch-on-function-error          split a failed batch in two before retrying
  --no-bisect-batch-on-function-error       (the default)
  --maximum-retry-attempts <n>              -1 (infinite, default) or 0 to 10000
  --maximum-record-age-in-seconds <n>       -1 (infinite, default) or 60 to 604800
  --parallelization-factor <n>              concurrent batches per shard, 1 to 10 (default 1)
  --tumbling-window-in-seconds <n>          0 (off, default) to 900
  --on-failure <file>                       append what Lambda sends the on-failure destination
                                            (batch metadata, one JSON document per line)

Run:
  --exit-when-idle <seconds>      stop once nothing was read or invoked for that long
                                  (default: run until Ctrl-C)
  --poll-interval-ms <ms>         wait between reads of a caught-up shard (default 1000)
  --progress-interval <seconds>   progress line every n seconds; 0 turns it off (default 5)
  --verbose                       log every failed invocation, not only discarded batches
  -h, --help                      this help

At the end it prints a summary: records read, invocations, retries, bisects, records sent to
the on-failure destination, and records per second.
`

const options = {
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
  'on-failure': { type: 'string' },
  'exit-when-idle': { type: 'string' },
  'poll-interval-ms': { type: 'string' },
  'progress-interval': { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options']

const DEMO_HANDLER = 'examples/dist/demo-handler.js'

class UsageError extends Error {
  override name = 'UsageError'
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof options; allowPositionals: true; allowNegative: true }>
  >
  try {
    parsed = parseArgs({
      args: joinNegativeNumbers(argv),
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    })
  } catch (error) {
    return usage(messageOf(error))
  }
  const { values, positionals } = parsed
  const command = positionals[0]
  if (values.help || command === 'help') {
    process.stdout.write(HELP)
    return 0
  }
  // As the AWS CLI does: a missing command is a usage mistake, said in one line on stderr.
  if (command === undefined) return usage('missing command: run or demo')
  if (positionals.length > 1) return usage(`unexpected argument ${positionals[1]}`)

  const controller = new AbortController()
  const interrupt = () => {
    process.stderr.write(
      '\nstopping: the batches in flight finish first (Ctrl-C again to quit now)\n',
    )
    process.once('SIGINT', () => process.exit(130))
    controller.abort()
  }
  process.once('SIGINT', interrupt)
  try {
    if (command === 'demo') {
      const handler = values.handler ?? DEMO_HANDLER
      if (values.handler === undefined && !existsSync(DEMO_HANDLER)) {
        return usage(
          `${DEMO_HANDLER} is missing: run the demo from the repository root after a build ` +
            '(pnpm demo), or pass --handler <module>',
        )
      }
      await runDemo({
        handler,
        out: process.stdout,
        signal: controller.signal,
      })
      return 0
    }
    if (command !== 'run') return usage(`unknown command ${command}`)
    if (values.handler === undefined) return usage('--handler is required')
    if (values.stream === undefined) return usage('--stream is required')
    const progressSeconds = number(values, 'progress-interval') ?? 5
    const verbose = values.verbose === true
    const stats = await runMapping({
      stream: values.stream,
      handler: values.handler,
      mapping: mappingSettings(values),
      endpoint: values.endpoint,
      region: values.region,
      onFailure: values['on-failure'],
      timeoutSeconds: number(values, 'timeout'),
      exitWhenIdleSeconds: number(values, 'exit-when-idle'),
      pollIntervalMs: number(values, 'poll-interval-ms'),
      signal: controller.signal,
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
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message)
    // A value out of its bounds is a usage mistake too: say it with the flag's name.
    if (error instanceof ConfigurationError) return usage(withFlagNames(error.message))
    process.stderr.write(`shardwise: ${messageOf(error)}\n`)
    const cause = (error as { cause?: unknown }).cause
    if (cause !== undefined) process.stderr.write(`  cause: ${messageOf(cause)}\n`)
    return 1
  } finally {
    process.removeListener('SIGINT', interrupt)
  }
}

type Values = Partial<Record<keyof typeof options, string | boolean | string[] | undefined>>

function mappingSettings(values: Values): MappingSettings {
  const settings: MappingSettings = {}
  const set = <K extends keyof MappingSettings>(key: K, value: MappingSettings[K] | undefined) => {
    if (value !== undefined) settings[key] = value
  }
  set('batchSize', number(values, 'batch-size'))
  set('maximumBatchingWindowInSeconds', number(values, 'maximum-batching-window-in-seconds'))
  set('startingPosition', values['starting-position'] as StartingPosition | undefined)
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
  return settings
}

/**
 * `--maximum-retry-attempts -1`, as the AWS CLI writes it: parseArgs would take `-1` for an
 * option of its own, so a negative number after a flag that takes a value is joined to it.
 */
function joinNegativeNumbers(argv: string[]): string[] {
  const joined: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const next = argv[i + 1]
    const flag = arg.startsWith('--') ? (arg.slice(2) as keyof typeof options) : undefined
    if (flag !== undefined && options[flag]?.type === 'string' && /^-\d/.test(next ?? '')) {
      joined.push(`${arg}=${next}`)
      i++
    } else {
      joined.push(arg)
    }
  }
  return joined
}

/** `Option 'batchSize' must be >= 1` as the command line writes it: `--batch-size`. */
function withFlagNames(message: string): string {
  return message.replace(
    /Option '(?:mapping\.)?([A-Za-z]+)'/g,
    (_, name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
  )
}

function number(values: Values, flag: keyof typeof options): number | undefined {
  const raw = values[flag]
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) {
    throw new UsageError(`--${flag} takes a number, got ${JSON.stringify(raw)}`)
  }
  return value
}

function usage(message: string): number {
  process.stderr.write(`shardwise: ${message}\nRun shardwise --help for the options.\n`)
  return 2
}

export function progressLine(s: MappingStats): string {
  return (
    `[${(s.elapsedMs / 1000).toFixed(1)}s] read ${s.recordsRead}, done ${s.recordsSucceeded}, ` +
    `invocations ${s.invocations}, retries ${s.retries}, bisects ${s.bisects}, ` +
    `to destination ${s.recordsToDestination}, ${Math.round(s.recordsPerSecond)} records/s`
  )
}

export function summary(s: MappingStats): string {
  const rows: Array<[string, string]> = [
    ['shards', String(s.shards)],
    ['records read', String(s.recordsRead)],
    ['records succeeded', String(s.recordsSucceeded)],
    ['invocations', String(s.invocations)],
    ['retries', String(s.retries)],
    ['bisects', String(s.bisects)],
    [
      'records to on-failure destination',
      `${s.recordsToDestination} (${s.destinationMessages} batch(es))`,
    ],
    ['elapsed', `${(s.elapsedMs / 1000).toFixed(1)} s`],
    ['records per second', String(Math.round(s.recordsPerSecond))],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return `Summary\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`
}
