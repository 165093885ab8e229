/**
 * `shardwise`: run a Lambda Kinesis handler against a stream with the event source mapping's
 * rules (`shardwise run`), one saved event through it (`shardwise invoke`), records an
 * on-failure destination names through it again (`shardwise redrive`), or a generated workload
 * (`shardwise demo`). Each command lives in its own file with its flags and help; this one finds
 * the command, parses its flags and turns errors into exit statuses.
 */
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { ConfigurationError, messageOf } from '@shardwise/core'
import { checkMappingCommand } from './check-mapping-command.js'
import { type Command, parseFlags, UsageError, usage, withFlagNames } from './cli-args.js'
import { demoCommand } from './demo-command.js'
import { invokeCommand } from './invoke-command.js'
import { redriveCommand } from './redrive-command.js'
import { runCommand } from './run-command.js'

export const COMMANDS: readonly Command[] = [
  runCommand,
  invokeCommand,
  redriveCommand,
  checkMappingCommand,
  demoCommand,
]

const SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** The status a shell reports for a process a signal ended: 128 plus its number. */
function signalStatus(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal]
}

const GLOBAL_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return `Usage: shardwise <command> [options]

Runs a Lambda handler for Kinesis events locally, with the rules of Lambda's event source
mapping.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Options:
  -h, --help  this help; shardwise <command> --help for a command's flags
  --version   the version of @shardwise/local

Exit status: 0 success, 1 failure, 2 a usage mistake (the reason on stderr).
`
}

/** The package's version, read once from its package.json (one folder above src/ and dist/). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  return String(pkg.version)
}

export async function main(argv: string[]): Promise<number> {
  const name = argv[0]
  const command = COMMANDS.find((c) => c.name === name)
  if (command === undefined) return global(name === 'help' ? ['--help', ...argv.slice(1)] : argv)
  let parsed: ReturnType<typeof parseFlags>
  try {
    parsed = parseFlags(argv.slice(1), { ...command.flags, help: GLOBAL_FLAGS.help })
  } catch (error) {
    return usage(messageOf(error), command.name)
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(command.help)
    return 0
  }
  if (positionals.length > 0) return usage(`unexpected argument ${positionals[0]}`, command.name)

  const controller = new AbortController()
  // The first SIGINT (Ctrl-C) or SIGTERM stops the command, which sums up what it did; the
  // second ends the process at once. Either way the status is 128 plus the first signal's
  // number, as a shell reports a process the signal ended: 130 for SIGINT, 143 for SIGTERM.
  // One listener for the whole command: removing the last one would leave the signal without
  // a handler for a moment, and a second signal then would kill the process without a status.
  let stoppedBy: NodeJS.Signals | undefined
  const interrupt = (signal: NodeJS.Signals) => {
    if (stoppedBy !== undefined) process.exit(signalStatus(stoppedBy))
    stoppedBy = signal
    process.stderr.write(
      '\nstopping: what is in flight finishes first (Ctrl-C again to quit now)\n',
    )
    controller.abort()
  }
  for (const name of SIGNALS) process.on(name, interrupt)
  try {
    const status = await command.run(values, controller.signal)
    return stoppedBy === undefined ? status : signalStatus(stoppedBy)
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message, command.name)
    // A value out of its bounds is a usage mistake too: say it with the flag's name.
    if (error instanceof ConfigurationError)
      return usage(withFlagNames(error.message), command.name)
    process.stderr.write(`shardwise: ${messageOf(error)}\n`)
    const cause = (error as { cause?: unknown }).cause
    if (cause !== undefined) process.stderr.write(`  cause: ${messageOf(cause)}\n`)
    return 1
  } finally {
    for (const name of SIGNALS) process.removeListener(name, interrupt)
  }
}

/** `shardwise`, `shardwise --help`, `shardwise --version`, or a command it does not know. */
function global(argv: string[]): number {
  let parsed: ReturnType<typeof parseFlags>
  try {
    parsed = parseFlags(argv, GLOBAL_FLAGS)
  } catch (error) {
    return usage(messageOf(error))
  }
  const { values, positionals } = parsed
  if (values.version) {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  const names = COMMANDS.map((c) => c.name)
  if (values.help) {
    const about = COMMANDS.find((c) => c.name === positionals[0])
    process.stdout.write(about?.help ?? overview())
    return 0
  }
  const first = positionals[0]
  // As the AWS CLI does: a missing command is a usage mistake, said in one line on stderr.
  if (first === undefined) {
    return usage(`missing command: ${names.slice(0, -1).join(', ')} or ${names.at(-1)}`)
  }
  return usage(`unknown command ${first} (commands: ${names.join(', ')})`)
}
