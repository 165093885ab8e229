/**
 * What a handler meets besides the event: a Lambda context with a chosen remaining time, a
 * logger that keeps its lines, and a fake clock run until an invocation settles.
 */
import type { Context } from 'aws-lambda'

/**
 * A Lambda context whose `getRemainingTimeInMillis()` counts down from `remainingMs` on
 * `Date.now()` (so a fake clock moves it too).
 */
export function lambdaContext(remainingMs = 60_000, functionName = 'test'): Context {
  const deadline = Date.now() + remainingMs
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-2:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}

/** A logger that keeps what it is told, for asserting on logs. */
export function recordingLogger() {
  const lines: Array<{
    level: 'error' | 'warn' | 'info' | 'debug'
    message: string
    details: unknown[]
  }> = []
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, ...details: unknown[]) => {
      lines.push({ level, message, details })
    }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

/** What `settleOnFakeClock` needs of a fake clock: vitest's `vi`, or anything alike. */
export interface FakeClock {
  getTimerCount(): number
  advanceTimersByTimeAsync(ms: number): Promise<unknown>
  advanceTimersToNextTimerAsync(): Promise<unknown>
}

/**
 * Runs a fake clock's timers, one at a time, until `invocation` settles (or no timer is left),
 * then returns it: for tests where time is the subject, so that a busy machine changes nothing.
 */
export async function settleOnFakeClock<T>(clock: FakeClock, invocation: Promise<T>): Promise<T> {
  let settled = false
  const done = () => {
    settled = true
  }
  invocation.then(done, done)
  await clock.advanceTimersByTimeAsync(0)
  while (!settled && clock.getTimerCount() > 0) await clock.advanceTimersToNextTimerAsync()
  return invocation
}
