/**
 * One cold start: `node cold-start.js <bundle> <event file>` imports a bundled handler, invokes
 * it once, and prints how long after the process started each step ended. Node's
 * `performance.now()` counts from the start of the process.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { lambdaContext } from './output.js'

export interface ColdStart {
  /** Milliseconds from process start to the end of the first invocation. */
  total: number
  /** Milliseconds to import the bundle (Lambda's init phase). */
  init: number
  /** Milliseconds of the first invocation. */
  invoke: number
}

const [bundle, eventFile] = process.argv.slice(2) as [string, string]
const start = performance.now()
const { handler } = (await import(pathToFileURL(bundle).href)) as {
  handler: (event: unknown, context: unknown) => Promise<unknown>
}
const loaded = performance.now()
const event = JSON.parse(readFileSync(eventFile, 'utf8'))
await handler(event, lambdaContext())
const done = performance.now()
const result: ColdStart = { total: done, init: loaded - start, invoke: done - loaded }
process.stdout.write(JSON.stringify(result))
