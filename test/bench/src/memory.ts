/**
 * The memory section's measurement, done by `measure.ts` in a fresh process per row. Every row,
 * the hand-written loop included, loads its handler as a Lambda deployment runs it: the esbuild
 * bundle that the cold starts import (`bundle.ts`), not its modules from node_modules. Loading
 * a package's files is not what Lambda runs: `@middy/core` 7 from node_modules loads Node's
 * `node:http` (its `@middy/util` imports `STATUS_CODES`), about 9 MB of peak RSS at 6 MB events,
 * which its bundle leaves out as unused; the same went for every row that loads many files.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import type { Bundle } from './bundle.js'
import type { HandlerFile } from './handlers.js'
import { lambdaContext } from './output.js'
import type { BenchHandler } from './types.js'

export interface MemoryTask {
  mode: 'memory'
  /**
   * The row's handler: its id and its bundle, whose `handler` export is run (`bundle.ts`'s
   * `handlerEntry`). `undefined`: a handler that does nothing, for the cost of the event alone.
   */
  handler: { id: string; bundle: string } | undefined
  eventFile: string
  invocations: number
}

export interface MemoryResult {
  /** Kilobytes of resident memory that importing the bundle added (`VmRSS` after less before). */
  loadKB: number
  /** Kilobytes of peak RSS before the first invocation (bundle loaded, event text read). */
  beforeKB: number
  peakKB: number
}

/** The task of a row, or of the baseline (`file` undefined), which loads nothing. */
export async function memoryTask(
  file: HandlerFile | undefined,
  eventFile: string,
  invocations: number,
  bundleOf: (file: HandlerFile) => Promise<Bundle>,
): Promise<MemoryTask> {
  const handler = file && { id: file.id, bundle: (await bundleOf(file)).outfile }
  return { mode: 'memory', handler, eventFile, invocations }
}

function statusKB(field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const value = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
    if (value !== null) return Number(value[1])
  } catch {
    // Not Linux.
  }
  return undefined
}

/**
 * Peak RSS of this process in kilobytes. On Linux, `VmHWM` of /proc: `getrusage`'s maxRSS
 * (`process.resourceUsage().maxRSS`) keeps the parent's resident size from before the fork
 * and exec, so a child smaller than the parent would read the parent's size.
 */
export function peakKB(): number {
  return statusKB('VmHWM') ?? process.resourceUsage().maxRSS
}

/** The `handler` export of a bundle. */
export async function bundledHandler(bundle: string): Promise<BenchHandler> {
  const module = (await import(pathToFileURL(bundle).href)) as { handler?: unknown }
  if (typeof module.handler !== 'function') throw new Error(`${bundle} exports no handler`)
  return module.handler as BenchHandler
}

/**
 * As Lambda does it: the init phase loads the code, then each invocation gets a freshly parsed
 * event. The peak is the whole process's, from its start: what the bundle keeps, what the
 * invocations allocate and keep, and Node and the event, which the row of a handler that does
 * nothing subtracts.
 */
export async function measureMemory(task: MemoryTask): Promise<MemoryResult> {
  const rssBefore = statusKB('VmRSS')
  const handler: BenchHandler =
    task.handler === undefined ? async () => undefined : await bundledHandler(task.handler.bundle)
  const rssAfter = statusKB('VmRSS')
  const loadKB =
    rssBefore === undefined || rssAfter === undefined ? 0 : Math.max(0, rssAfter - rssBefore)
  const text = readFileSync(task.eventFile, 'utf8')
  const context = lambdaContext()
  const beforeKB = peakKB()
  for (let i = 0; i < task.invocations; i++) await handler(JSON.parse(text), context)
  return { loadKB, beforeKB, peakKB: peakKB() }
}
