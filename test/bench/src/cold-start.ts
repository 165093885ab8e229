/**
 * One cold start: `node cold-start.js <bundle> <event file>` reads the event, then times, inside
 * this fresh process, the dynamic import of the bundled handler (Lambda's init phase) and its
 * first invocation. Node's start-up comes before the first `performance.now()`, so its tens of
 * milliseconds, the same for every handler and the noisiest part of a process start, are left out.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { lambdaContext } from './output.js'

export interface ColdStart {
  /** Milliseconds of the import plus the first invocation. */
  total: number
  /** Milliseconds to import the bundle (Lambda's init phase). */
  init: number
  /** Milliseconds of the first invocation. */
  invoke: number
  /** Milliseconds of CPU time (user and system, every thread) the import and invocation took. */
  cpu: number
  /** Milliseconds from the start of the process to the end of the first invocation. */
  sinceProcessStart: number
}

const [bundle, eventFile] = process.argv.slice(2) as [string, string]
// Lambda parses the event before it invokes the handler, and after the init phase: not timed.
const event = JSON.parse(readFileSync(eventFile, 'utf8'))
const context = lambdaContext()
const href = pathToFileURL(bundle).href
const cpuBefore = process.cpuUsage()
const start = performance.now()
const { handler } = (await import(href)) as {
  handler: (event: unknown, context: unknown) => Promise<unknown>
}
const loaded = performance.now()
await handler(event, context)
const done = performance.now()
const cpu = process.cpuUsage(cpuBefore)
const result: ColdStart = {
  total: done - start,
  init: loaded - start,
  invoke: done - loaded,
  cpu: (cpu.user + cpu.system) / 1000,
  sinceProcessStart: done,
}
process.stdout.write(JSON.stringify(result))
