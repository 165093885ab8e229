/**
 * One comparison in its own process: `node --expose-gc measure.js <json task>`. It reads the
 * event the parent wrote, checks what the path outputs, then times it (or measures its memory),
 * and sends the result to the parent.
 */
import { readFileSync } from 'node:fs'
import { type HandlerRef, loadHandler } from './handlers.js'
import { checkpointOf, collector, digestOf, lambdaContext } from './output.js'
import type { BenchHandler } from './types.js'

export interface SpeedTask {
  mode: 'speed'
  handler: HandlerRef
  eventFile: string
  warmup: number
  runs: number
  /** Stop taking samples after this long (but take at least `minRuns`). */
  seconds: number
  minRuns: number
  /** Start each run after a full GC, so that one run's garbage is not collected in the next. */
  gcEachRun: boolean
}

export interface MemoryTask {
  mode: 'memory'
  /** `undefined`: a handler that does nothing, for the cost of the event alone. */
  handler: HandlerRef | undefined
  eventFile: string
  invocations: number
}

export interface SpeedResult {
  digest: string
  /** Milliseconds per invocation. */
  samples: number[]
  warmup: number
}

export interface MemoryResult {
  /** Kilobytes of peak RSS before the first invocation (event text read, handler loaded). */
  beforeKB: number
  peakKB: number
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined)

async function speed(task: SpeedTask): Promise<SpeedResult> {
  const text = readFileSync(task.eventFile, 'utf8')
  const module = await loadHandler(task.handler)
  const context = lambdaContext()

  const { sink: collect, values } = collector()
  const response = await module.make(collect)(JSON.parse(text), context)
  const digest = digestOf({ values, checkpoint: checkpointOf(response) })

  let count = 0
  const handler: BenchHandler = module.make(() => {
    count++
  })
  const run = async () => {
    // Lambda hands each invocation a freshly parsed event; parsing it is not the path's work.
    const event = JSON.parse(text)
    if (task.gcEachRun) gc()
    count = 0
    const start = performance.now()
    await handler(event, context)
    const elapsed = performance.now() - start
    if (count !== values.length) {
      throw new Error(`${task.handler.id}: ${count} records handled, expected ${values.length}`)
    }
    return elapsed
  }

  const deadline = performance.now() + task.seconds * 1000
  let warmup = 0
  while (
    warmup < task.warmup &&
    (warmup < 2 || performance.now() < deadline - task.seconds * 500)
  ) {
    await run()
    warmup++
  }
  const samples: number[] = []
  while (
    samples.length < task.runs &&
    (samples.length < task.minRuns || performance.now() < deadline)
  ) {
    samples.push(await run())
  }
  return { digest, samples, warmup }
}

async function memory(task: MemoryTask): Promise<MemoryResult> {
  const text = readFileSync(task.eventFile, 'utf8')
  const handler: BenchHandler =
    task.handler === undefined
      ? async () => undefined
      : (await loadHandler(task.handler)).make(() => {})
  const context = lambdaContext()
  const beforeKB = process.resourceUsage().maxRSS
  for (let i = 0; i < task.invocations; i++) await handler(JSON.parse(text), context)
  return { beforeKB, peakKB: process.resourceUsage().maxRSS }
}

const task = JSON.parse(process.argv[2] as string) as SpeedTask | MemoryTask
const result = task.mode === 'speed' ? await speed(task) : await memory(task)
process.send?.(result)
