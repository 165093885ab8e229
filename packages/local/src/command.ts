/**
 * `shardwise`: run a Lambda Kinesis handler against a stream with the event source mapping's
 * rules (`shardwise run`), or watch it on a generated workload (`shardwise demo`). Each command
 * lives in its own file; this one finds the command, parses its flags and turns errors into exit
 * statuses.
 */
import { ConfigurationError, messageOf } from '@shardwise/core'
import {
  type Command,
  type Flags,
  parseFlags,
  UsageError,
  usage,
  withFlagNames,
} from './cli-args.js'
import { demoCommand } from './demo-command.js'
import { runCommand } from './run-command.js'

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
  --filter-criteria <json>                  event filtering: {"Filters":[{"Pattern":"<json>"}]},
                                            or file://<path>; records that match no filter
                                            are never invoked
  --on-failure <file>                       append what Lambda sends the on-failure destination
                                            (batch metadata, one JSON document per line)

Run:
  --exit-when-idle <seconds>      stop once nothing was read or invoked for that long
                                  (default: run until Ctrl-C)
  --poll-interval-ms <ms>         wait between reads of a caught-up shard (default 1000)
  --progress-interval <seconds>   progress line every n seconds; 0 turns it off (default 5)
  --verbose                       log every failed invocation, not only discarded batches
  -h, --help                      this help

At the end it prints a summary: records read, records filtered out, invocations, retries,
bisects, records sent to the on-failure destination, and records per second.
`

const COMMANDS: Command[] = [runCommand, demoCommand]

/** Every command's flags, and --help: the parser takes them all, whichever the command. */
export const allFlags: Flags = Object.assign({}, ...COMMANDS.map((c) => c.flags), {
  help: { type: 'boolean', short: 'h' },
} satisfies Flags)

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseFlags>
  try {
    parsed = parseFlags(argv, allFlags)
  } catch (error) {
    return usage(messageOf(error))
  }
  const { values, positionals } = parsed
  const name = positionals[0]
  if (values.help || name === 'help') {
    process.stdout.write(HELP)
    return 0
  }
  // As the AWS CLI does: a missing command is a usage mistake, said in one line on stderr.
  if (name === undefined) return usage('missing command: run or demo')
  if (positionals.length > 1) return usage(`unexpected argument ${positionals[1]}`)
  const command = COMMANDS.find((c) => c.name === name)
  if (command === undefined) return usage(`unknown command ${name}`)

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
    return await command.run(values, controller.signal)
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
