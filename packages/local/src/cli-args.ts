/**
 * What every `shardwise` command shares: parsing its flags, reading numbers, and saying a usage
 * mistake in one line on stderr with exit status 2, as the AWS CLI does.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util'

export type Flags = NonNullable<ParseArgsConfig['options']>
export type Values = Partial<Record<string, string | boolean | Array<string | boolean>>>

/** A mistake on the command line: the CLI prints it with the hint to `--help` and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export interface Parsed {
  values: Values
  positionals: string[]
}

/** `parseArgs` in strict mode, with negative numbers after a flag taken as its value. */
export function parseFlags(argv: string[], flags: Flags): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: joinNegativeNumbers(argv, flags),
      options: flags,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    })
    return { values: values as Values, positionals }
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/**
 * `--maximum-retry-attempts -1`, as the AWS CLI writes it: parseArgs would take `-1` for an
 * option of its own, so a negative number after a flag that takes a value is joined to it.
 */
function joinNegativeNumbers(argv: string[], flags: Flags): string[] {
  const joined: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const next = argv[i + 1]
    const flag = arg.startsWith('--') ? flags[arg.slice(2)] : undefined
    if (flag?.type === 'string' && /^-\d/.test(next ?? '')) {
      joined.push(`${arg}=${next}`)
      i++
    } else {
      joined.push(arg)
    }
  }
  return joined
}

/** A flag's value as a number, or a `UsageError` naming the flag. */
export function number(values: Values, flag: string): number | undefined {
  const raw = values[flag]
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) {
    throw new UsageError(`--${flag} takes a number, got ${JSON.stringify(raw)}`)
  }
  return value
}

/** `--timeout`: the function's timeout in whole seconds, 1 to 900 as Lambda's; default 3. */
export function timeoutSeconds(values: Values): number {
  const seconds = number(values, 'timeout') ?? 3
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 900) {
    throw new UsageError(`--timeout takes whole seconds from 1 to 900, as Lambda's, got ${seconds}`)
  }
  return seconds
}

/** A flag that takes a string: its value, or undefined. */
export function text(values: Values, flag: string): string | undefined {
  const raw = values[flag]
  return typeof raw === 'string' ? raw : undefined
}

/** `--function-response-types`: the AWS CLI takes a space-separated list; commas work too. */
export function functionResponseTypes(
  values: Values,
): Array<'ReportBatchItemFailures'> | undefined {
  const types = values['function-response-types'] as string[] | undefined
  if (types === undefined) return undefined
  const list = types.flatMap((t) => t.split(/[\s,]+/)).filter((t) => t !== '')
  for (const t of list) {
    if (t !== 'ReportBatchItemFailures') {
      throw new UsageError(`--function-response-types takes ReportBatchItemFailures, got ${t}`)
    }
  }
  return list as Array<'ReportBatchItemFailures'>
}

/** `Option 'batchSize' must be >= 1` as the command line writes it: `--batch-size`. */
export function withFlagNames(message: string): string {
  return message.replace(
    /Option '(?:mapping\.)?([A-Za-z]+)'/g,
    (_, name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
  )
}

/** A usage mistake: the reason and where the help is, on stderr; exit status 2. */
export function usage(message: string, command?: string): number {
  const help = command === undefined ? 'shardwise --help' : `shardwise ${command} --help`
  process.stderr.write(`shardwise: ${message}\nRun ${help} for the options.\n`)
  return 2
}

/** One `shardwise` command: its flags, its help, and what it does with them (its exit status). */
export interface Command {
  name: string
  /** One line for `shardwise --help`. */
  summary: string
  /** What `shardwise <name> --help` prints. */
  help: string
  flags: Flags
  run(values: Values, signal: AbortSignal): Promise<number>
}
