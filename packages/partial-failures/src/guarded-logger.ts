/**
 * Logging never changes the answer. The logger is the user's: its methods may throw (a
 * transport that is down), answer a promise that rejects, or overflow the stack on what they
 * are given (a Powertools `Logger` formats an error's `cause` chain recursively, so one that
 * loops never ends). `guarded` wraps it so that none of this reaches the invocation.
 */
import { isInstance, isObjectLike, messageOf, propertyOf, shownValue } from '@shardwise/core'
import { pkg } from './typed-parser.js'

/** What the middleware logs with: a Powertools `Logger`, `console`, pino, or anything alike. */
export interface Logger {
  error(message: string, ...details: unknown[]): void
  warn(message: string, ...details: unknown[]): void
  info(message: string, ...details: unknown[]): void
  debug(message: string, ...details: unknown[]): void
}

export const levels = ['error', 'warn', 'info', 'debug'] as const
export type Level = (typeof levels)[number]

/** The fields of a line: strings, numbers, booleans, and lists or counts of them. */
export type LineFields = Record<string, unknown>

/** A guarded logger; `invocationStarts()` lets it say again that the logger fails. */
export interface GuardedLogger extends Logger {
  invocationStarts(): void
  /**
   * One line a person reads: a structured logger (Powertools, pino) gets `fields` as the line's
   * keys; `console`, which would print an object over several lines, gets them as JSON on the
   * same line. No error objects: their stacks and causes go to `debug`.
   */
  line(level: Level, message: string, fields?: LineFields): void
}

/**
 * `logger` with each call guarded: a call that throws or rejects is dropped, and said once per
 * invocation to `console.error` (unless the logger is `console`, which failed already). Errors
 * in the details whose `cause` chain loops or runs deeper than `MAX_CAUSES` are logged as a copy
 * whose chain ends there, with a note saying so.
 */
export function guarded(logger: Logger): GuardedLogger {
  let failed = false
  const onFailure = (level: Level, thrown: unknown) => {
    if (failed || logger === console) return
    failed = true
    try {
      console.error(
        `${pkg}: the logger's ${level}() failed, its lines lost, the answer to Lambda unchanged: ${messageOf(thrown)}`,
      )
    } catch {
      // Nothing is left to say it with.
    }
  }
  const at =
    (level: Level) =>
    (message: string, ...details: unknown[]) => {
      try {
        const result: unknown = logger[level](message, ...details.map(loggable))
        const then = propertyOf(result, 'then')
        if (typeof then === 'function') {
          then.call(result, undefined, (thrown: unknown) => onFailure(level, thrown))
        }
      } catch (thrown) {
        onFailure(level, thrown)
      }
    }
  const debug = at('debug')
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    // console has no level: its debug lines, stacks and causes included, would be written at
    // every failure, so they are written only when the function's log level asks for them.
    debug:
      logger === console
        ? (message, ...details) => {
            if (consoleDebugs()) debug(message, ...details)
          }
        : debug,
    invocationStarts() {
      failed = false
    },
    line(level, message, fields) {
      if (fields === undefined) at(level)(message)
      else if (logger === console) at(level)(`${message} ${jsonLine(fields)}`)
      else at(level)(message, fields)
    },
  }
}

/**
 * Whether the function logs at debug level: Lambda's `ApplicationLogLevel`, which it hands the
 * function as `AWS_LAMBDA_LOG_LEVEL`, or `LOG_LEVEL` (which Powertools reads too), is DEBUG or
 * TRACE.
 */
function consoleDebugs(): boolean {
  const level = process.env.AWS_LAMBDA_LOG_LEVEL || process.env.LOG_LEVEL
  return level !== undefined && /^(debug|trace)$/i.test(level)
}

/** `fields` as one line of JSON; a value JSON cannot write (a BigInt, a cycle) as its string. */
function jsonLine(fields: LineFields): string {
  try {
    return JSON.stringify(fields, (_key, value: unknown) =>
      typeof value === 'bigint' ? String(value) : value,
    )
  } catch {
    return shownValue(fields)
  }
}

/** The most links of a `cause` chain that are logged. */
export const MAX_CAUSES = 16

/** The details of a log line, with each error in them bounded (see `boundedError`). */
function loggable(detail: unknown): unknown {
  if (!isObjectLike(detail)) return detail
  if (isInstance(detail, Error)) return boundedError(detail)
  let copy: Record<string, unknown> | undefined
  try {
    for (const key of Object.keys(detail)) {
      const value = propertyOf(detail, key)
      if (!isInstance(value, Error)) continue
      const bounded = boundedError(value)
      if (bounded === value) continue
      copy ??= { ...(detail as Record<string, unknown>) }
      copy[key] = bounded
    }
  } catch {
    // A value of the user's that cannot be read (a revoked Proxy): handed on as it is.
    return detail
  }
  return copy ?? detail
}

/**
 * The error itself when its `cause` chain ends within `MAX_CAUSES` links without coming back;
 * otherwise a copy of the chain up to where it loops or is cut, with the same names, messages,
 * stacks and own fields, and a string where the chain went on.
 */
function boundedError(error: Error): Error {
  const chain: unknown[] = [error]
  let ends = true
  for (let link: unknown = error; ; ) {
    link = propertyOf(link, 'cause')
    if (!isObjectLike(link)) break
    if (chain.includes(link) || chain.length > MAX_CAUSES) {
      ends = false
      break
    }
    chain.push(link)
  }
  if (ends) return error
  return copyOf(error, chain, 0)
}

/**
 * A copy of `chain[depth]` of the same class, with the same own fields (read once, as values),
 * whose `cause` is the copy of the next link, or a note where the chain loops or is cut.
 */
function copyOf(link: unknown, chain: unknown[], depth: number): Error {
  let prototype: object | null = Error.prototype
  let keys: string[] = []
  try {
    prototype = Object.getPrototypeOf(link)
    keys = Object.getOwnPropertyNames(link)
  } catch {
    // A Proxy whose traps throw: a plain Error with its message stands for it.
  }
  const copy = Object.create(prototype) as Error
  for (const key of keys) {
    if (key === 'cause') continue
    let enumerable = false
    try {
      enumerable = Object.prototype.propertyIsEnumerable.call(link, key)
    } catch {
      // Left out of what a logger lists, like message and stack.
    }
    const value = propertyOf(link, key)
    Object.defineProperty(copy, key, { value, enumerable, writable: true, configurable: true })
  }
  if (typeof propertyOf(copy, 'message') !== 'string') {
    Object.defineProperty(copy, 'message', { value: messageOf(link), writable: true })
  }
  const cause = propertyOf(link, 'cause')
  let copied: unknown = cause
  if (isObjectLike(cause)) {
    const seen = chain.indexOf(cause)
    if (seen !== -1 && seen <= depth) {
      copied = `(the cause chain loops back here to link ${seen}: ${messageOf(cause)})`
    } else if (depth + 1 >= chain.length) {
      copied = `(the cause chain goes on past ${MAX_CAUSES} links, not shown)`
    } else {
      copied = copyOf(cause, chain, depth + 1)
    }
  }
  if (copied !== undefined) {
    Object.defineProperty(copy, 'cause', { value: copied, writable: true, configurable: true })
  }
  return copy
}
