/** `shardwise run`: a handler module on a stream, with the mapping's settings from the flags. */
import { readFileSync } from 'node:fs'
import { messageOf } from '@shardwise/core'

import {
  type Command,
  type Flags,
  functionResponseTypes,
  number,
  text,
  UsageError,
  type Values,
} from './cli-args.js'
import { runMapping } from './mapping.js'
import { templateRun } from './run-template.js'
import type { MappingSettings, StartingPosition } from './settings.js'
import { progressLine, summary } from './summary.js'

export const runFlags = {
  handler: { type: 'string' },
  stream: { type: 'string' },
  template: { type: 'string' },
  function: { type: 'string' },
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
  'checkpoint-file': { type: 'string' },
  'function-arn': { type: 'string' },
  'exit-when-idle': { type: 'string' },
  'poll-interval-ms': { type: 'string' },
  'progress-interval': { type: 'string' },
  verbose: { type: 'boolean' },
} satisfies Flags

const HELP = `Usage: shardwise run --handler <module>[:<export>] --stream <name> [options]
       shardwise run --handler <module>[:<export>] --template <file> [--function <id>] [options]

Reads every shard of a stream (kinesalite, LocalStack or AWS) and invokes the handler with the
events Lambda builds, applying the event source mapping's rules. Mapping flags are named as in
\`aws lambda create-event-source-mapping\`.

Function:
  --handler <module>[:<export>]   the handler module (a path, relative to the current
                                  directory) and its export; default export name: handler
  --timeout <seconds>             the function's timeout, 1 to 900 (default 3)
  --function-arn <arn>            the function's ARN in the events, the context and the
                                  on-failure documents (default: on AWS, the function in
                                  the account of your credentials; locally, 000000000000)

Stream:
  --stream <name>                 the stream to read
  --endpoint <url>                a Kinesis endpoint (kinesalite, LocalStack); without it, AWS
  --region <region>               default: $AWS_REGION, then us-east-1

From a template (the settings that will be deployed; flags given as well override them):
  --template <file>               a CloudFormation template (JSON or YAML, cdk synth's output
                                  included), a SAM template.yaml or a serverless.yml
  --function <id>                 the function whose mapping to run: its logical id,
                                  FunctionName, CDK path or serverless.yml key (needed when the
                                  template has several); its timeout is the run's --timeout,
                                  and the stream's name is taken from the template when it
                                  says it
  The run prints each setting it uses and where it came from.

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
  --filter-criteria <json>                  event filtering: {"Filters":[{"Pattern":"<json>"}]},
                                            or file://<path>; records that match no filter
                                            are never invoked
  --on-failure <file>                       append what Lambda sends the on-failure destination
                                            (batch metadata, one JSON document per line)

Run:
  --checkpoint-file <path>        keep each shard's checkpoint and open windows in this
                                  JSON file, written after each settled batch; a new run
                                  with it resumes where this one stopped (default: progress
                                  is not kept, a new run starts at --starting-position)
  --exit-when-idle <seconds>      stop once nothing was read or invoked for that long
                                  (default: run until Ctrl-C)
  --poll-interval-ms <ms>         wait between reads of a caught-up shard (default 1000)
  --progress-interval <seconds>   progress line every n seconds; 0 turns it off (default 5)
  --verbose                       log every failed invocation, not only discarded batches
  -h, --help                      this help

At the end it prints a summary: records read, records filtered out, invocations, retries,
bisects, records sent to the on-failure destination, records per second, and the records a
handler reported failed while ReportBatchItemFailures is off (Lambda drops them; each such
batch is warned of). Progress lines and the summary show each shard's checkpoint, how far its
last read was behind the tip (MillisBehindLatest) and the age of its oldest record not done.
Retries wait as Lambda's do: 1 s before the first, doubling to at most 12 s.

Ctrl-C (or SIGTERM) stops the run: nothing new starts, an invocation in flight gets 5 s to
finish, then the summary is printed and the exit status is 130 (143 after SIGTERM). A second
Ctrl-C quits at once.
`

export const runCommand: Command = {
  name: 'run',
  summary: "read a stream and invoke a handler with the event source mapping's rules",
  help: HELP,
  flags: runFlags,
  async run(values, signal) {
    const handler = text(values, 'handler')
    if (handler === undefined) throw new UsageError('--handler is required')
    const flags = mappingSettings(values)
    const fromTemplate = templateRun(values, flags)
    const stream = fromTemplate?.stream ?? text(values, 'stream')
    if (stream === undefined) throw new UsageError('--stream is required')
    if (fromTemplate !== undefined) process.stderr.write(fromTemplate.startLines)
    const checkpointFile = text(values, 'checkpoint-file')
    process.stderr.write(
      checkpointFile === undefined
        ? 'progress is not kept: a new run starts again from the starting position (--checkpoint-file <path> keeps it)\n'
        : `checkpoints kept in ${checkpointFile}: a new run with it resumes where this one stops\n`,
    )
    const progressSeconds = number(values, 'progress-interval') ?? 5
    const verbose = values.verbose === true
    const stats = await runMapping({
      stream,
      handler,
      mapping: fromTemplate?.mapping ?? flags,
      endpoint: text(values, 'endpoint'),
      region: text(values, 'region'),
      onFailure: text(values, 'on-failure'),
      checkpointFile,
      functionArn: text(values, 'function-arn'),
      timeoutSeconds: number(values, 'timeout') ?? fromTemplate?.timeoutSeconds,
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
  const types = functionResponseTypes(values)
  if (types !== undefined) settings.functionResponseTypes = types
  set('bisectBatchOnFunctionError', values['bisect-batch-on-function-error'] as boolean | undefined)
  set('maximumRetryAttempts', number(values, 'maximum-retry-attempts'))
  set('maximumRecordAgeInSeconds', number(values, 'maximum-record-age-in-seconds'))
  set('parallelizationFactor', number(values, 'parallelization-factor'))
  set('tumblingWindowInSeconds', number(values, 'tumbling-window-in-seconds'))
  set('filterCriteria', filterCriteria(text(values, 'filter-criteria')))
  return settings
}
