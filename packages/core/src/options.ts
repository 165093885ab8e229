/**
 * Option checking for the middlewares, done once when a middleware is built. The messages take
 * the form of `@middy/util`'s `validateOptions` ("Option 'x' must be integer", "Unknown option
 * 'y'"), whose 4 KB counted against the core chain's bundle budget.
 */
import { isObjectLike, kindOf, messageOf } from './index.js'

/** The event is not a Kinesis event, or an option is wrong: a mistake in the wiring, not in a record. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError'
}

/** A `ConfigurationError` whose message names the package the mistake was made with. */
export function misconfigured(pkg: string, problem: string, options?: ErrorOptions) {
  return new ConfigurationError(`${pkg}: ${problem}`, options)
}

/**
 * The error of an event whose `Records[at]` has no sequence number (none, not a string, or
 * empty): Lambda can be told of a record only by its sequence number, so failing the invocation,
 * for Lambda to retry the whole batch, is all that is left. One message for every package.
 */
export function noSequenceNumber(pkg: string, at: number) {
  return misconfigured(pkg, `Records[${at}] has no kinesis.sequenceNumber`)
}

/**
 * The longest delay a Node timer keeps: one set for longer, or for `Infinity` or `NaN`, fires
 * after 1 ms, so an option or a value that feeds a timer stays at or under it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** What is wrong with the option `name`'s value, or `undefined` when it is right. */
export type OptionRule = (value: unknown, name: string) => string | undefined

/** The rules of an options object: one per option name; options without a rule are refused. */
export type OptionRules = Readonly<Record<string, OptionRule>>

export const isObject = (value: unknown): value is Record<string, unknown> =>
  isObjectLike(value) && !Array.isArray(value)

export function unknownOption(
  rules: OptionRules,
  options: Record<string, unknown>,
  prefix: string,
): string | undefined {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(rules, key)) return `Unknown option '${prefix}${key}'`
  }
  return undefined
}

/**
 * What is wrong with `options`, whose keys all have a rule (see `unknownOption`): the first thing
 * found, or `undefined`.
 */
export function problemOf(
  rules: OptionRules,
  required: readonly string[],
  options: Record<string, unknown>,
  prefix: string,
): string | undefined {
  for (const key of required) {
    if (options[key] === undefined) return `Missing required option '${prefix}${key}'`
  }
  // Each rule reads its option as the middleware will, inherited or not.
  for (const key of Object.keys(rules)) {
    const value = options[key]
    if (value === undefined) continue
    const problem = (rules[key] as OptionRule)(value, `${prefix}${key}`)
    if (problem !== undefined) return problem
  }
  return undefined
}

/**
 * Checks a middleware's options when it is built; a mistake throws a `ConfigurationError` whose
 * message names the package. `undefined` options are taken as `{}`. The answer is a copy of the
 * options, each read once: a getter that would answer otherwise at a second read cannot slip a
 * value past the check, and options that cannot be read (a getter or a Proxy trap that throws, a
 * revoked Proxy) are a `ConfigurationError` too, with what was thrown as its `cause`.
 */
export function checkOptions<T extends object>(
  packageName: string,
  rules: OptionRules,
  options: T | undefined,
  required: readonly (keyof T & string)[] = [],
): T {
  if (options === undefined) options = {} as T
  let problem: string | undefined
  const read: Record<string, unknown> = {}
  try {
    if (!isObject(options)) {
      problem = `options must be an object, got ${kindOf(options)}`
    } else {
      problem = unknownOption(rules, options, '')
      if (problem === undefined) {
        // Each option is read as the middleware would read it, inherited or not.
        for (const key of Object.keys(rules)) {
          const value = (options as Record<string, unknown>)[key]
          if (value !== undefined) read[key] = value
        }
        problem = problemOf(rules, required, read, '')
      }
    }
  } catch (error) {
    throw misconfigured(packageName, `the options cannot be read: ${messageOf(error)}`, {
      cause: error,
    })
  }
  if (problem !== undefined) throw misconfigured(packageName, `${problem}`)
  return read as T
}
