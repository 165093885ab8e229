/**
 * Loading the function and invoking it the way the Lambda runtime does: with a context whose
 * `getRemainingTimeInMillis` counts down to the configured timeout, and a timeout that fails the
 * invocation ("Task timed out after N seconds") without waiting for the handler.
 */
import { randomUUID } from 'node:crypto'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigurationError, type Context, messageOf } from '@shardwise/core'
import { type Answer, lambdaReads } from '@shardwise/testing'
import type { MappingEvent } from './event.js'

/** A Lambda handler for Kinesis events: a promise-returning function, like a middy handler. */
export type KinesisHandler = (event: MappingEvent, context: Context) => unknown

/**
 * Imports `<module>[:<export>]` (default export name `handler`); a relative path is taken from
 * the current directory, like Lambda's `file.handler` is taken from the task root.
 */
export async function loadHandler(spec: string): Promise<KinesisHandler> {
  const colon = spec.lastIndexOf(':')
  // A Windows drive letter (C:\...) is not an export name.
  const hasExport = colon > 1
  const modulePath = hasExport ? spec.slice(0, colon) : spec
  const exportName = hasExport ? spec.slice(colon + 1) : 'handler'
  const url = /^[a-z]+:\/\//i.test(modulePath)
    ? modulePath
    : pathToFileURL(resolve(modulePath)).href
  let mod: Record<string, unknown>
  try {
    mod = (await import(url)) as Record<string, unknown>
  } catch (error) {
    // The reason goes in the message: the CLI prints a ConfigurationError as a usage mistake,
    // in one line, and a module that throws at load says nothing without it.
    throw new ConfigurationError(
      `cannot import the handler module ${modulePath}: ${messageOf(error)}`,
      { cause: error },
    )
  }
  const handler = mod[exportName]
  if (typeof handler !== 'function') {
    const exported = Object.keys(mod).join(', ') || 'nothing'
    throw new ConfigurationError(
      `${modulePath} has no function export named ${exportName} (it exports ${exported})`,
    )
  }
  return handler as KinesisHandler
}

export interface FunctionIdentity {
  functionName: string
  /** The function's ARN; default: the local placeholder, in account 000000000000. */
  arn?: string | undefined
  /** The account of `invokeIdentityArn`; default 000000000000. */
  account?: string | undefined
  region: string
  timeoutMs: number
  memoryLimitInMB: number
}

export function functionArn(identity: FunctionIdentity): string {
  return (
    identity.arn ??
    `arn:aws:lambda:${identity.region}:000000000000:function:${identity.functionName}`
  )
}

export function lambdaContext(identity: FunctionIdentity, deadlineMs: number): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: identity.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn(identity),
    memoryLimitInMB: String(identity.memoryLimitInMB),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${identity.functionName}`,
    logStreamName: `local/${randomUUID()}`,
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}

/** Invokes once; never rejects. The answer says what the handler returned or threw. */
export async function invoke(
  handler: KinesisHandler,
  event: MappingEvent,
  identity: FunctionIdentity,
): Promise<{ answer: Answer; requestId: string }> {
  const context = lambdaContext(identity, Date.now() + identity.timeoutMs)
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Answer>((done) => {
    timer = setTimeout(() => {
      const seconds = (identity.timeoutMs / 1000).toFixed(2)
      done({ thrown: new Error(`Task timed out after ${seconds} seconds`) })
    }, identity.timeoutMs)
  })
  const run = (async (): Promise<Answer> => {
    let returned: unknown
    try {
      returned = await handler(event, context)
    } catch (thrown) {
      return { thrown }
    }
    return lambdaReads(returned)
  })()
  try {
    return { answer: await Promise.race([run, timeout]), requestId: context.awsRequestId }
  } finally {
    clearTimeout(timer)
  }
}
