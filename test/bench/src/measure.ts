/**
 * One comparison in its own process: `node measure.js <json task>`. It reads the
 * event the parent wrote, checks what the path outputs, then times it, and sends the result to
 * the parent; or measures the memory of a row's bundle (`memory.ts`).
 */
import { readFileSync } from 'node:fs'
import { getHeapSpaceStatistics } from 'node:v8'
import { type HandlerRef, loadHandler } from './handlers.js'
import { type MemoryTask, measureMemory } from './memory.js'
import { checkpointOf, collector, digestOf, lambdaContext } from './output.js'
import type { BenchHandler } from './types.js'

export interface SpeedTask {
  mode: 'speed'
  handler: HandlerRef
  eventFile: string
}

/** Parent to a speed child: run `runs` times and answer with the samples; `runs: 0` ends it. */
export interface SpeedRequest {
  runs: number
}

/** A speed child's first message: what the path outputs, and how long the check run took. */
export interface SpeedReady {
  digest: string
  firstRunMs: number
}

/** A speed child's answer to a request: milliseconds per run. */
export interface SpeedSamples {
  samples: number[]
}

/** The size of event from which runs are de-phased: V8 starts the young generation at 1 MiB. */
const DEPHASE_FROM_EVENT_BYTES = 1024 * 1024

// biome-ignore lint/correctness/noUnusedVariables: only written, so that the compiler keeps the allocations
let lastGarbage: unknown

/**
 * Leaves a random amount of short-lived garbage, up to the young generation's size, before a
 * timed run. Every run allocates the same amount, so without this the scavenges lock into one
 * phase per process: in some processes they fall in the untimed parse of the next event, in
 * others inside every other timed run, where they copy the event and whatever the path keeps
 * alive. The same path then measured 760 ns per record in one process and 1,570 in another.
 * With a random phase, each run of a path is hit with the probability its own allocations
 * give, as between Lambda invocations whose events differ.
 */
function dephaseYoungGeneration(): void {
  const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
  let bytes = Math.random() * (young?.space_size ?? 16 * 1024 * 1024)
  // An array of 126 holes takes about 1 KiB of the young generation.
  for (; bytes > 0; bytes -= 1024) lastGarbage = new Array(126)
}

/**
 * Checks the output, then waits for requests: the parent asks every path of a workload in
 * turn for a few runs, so that a burst of load on the machine hits them all alike.
 */
async function speed(task: SpeedTask): Promise<void> {
  const text = readFileSync(task.eventFile, 'utf8')
  const module = await loadHandler(task.handler)
  const context = lambdaContext()

  const { sink: collect, values } = collector()
  const firstStart = performance.now()
  const response = await module.make(collect)(JSON.parse(text), context)
  const firstRunMs = performance.now() - firstStart
  const digest = digestOf({ values, checkpoint: checkpointOf(response) })
  const expected = values.length
  values.length = 0

  // Only a run that allocates a good share of the young generation can lock into a phase; a
  // small event's runs drift through the young generation's cycle by themselves, and the
  // garbage, which also evicts the CPU caches, would only add noise to them.
  const dephase = text.length >= DEPHASE_FROM_EVENT_BYTES
  let count = 0
  const handler: BenchHandler = module.make(() => {
    count++
  })
  const run = async () => {
    // Lambda hands each invocation a freshly parsed event; parsing it is not the path's work.
    // No forced GC: the collections a path's garbage causes fall in its own runs, as in Lambda.
    const event = JSON.parse(text)
    if (dephase) dephaseYoungGeneration()
    count = 0
    const start = performance.now()
    await handler(event, context)
    const elapsed = performance.now() - start
    if (count !== expected) {
      throw new Error(`${task.handler.id}: ${count} records handled, expected ${expected}`)
    }
    return elapsed
  }

  process.on('message', (request: SpeedRequest) => {
    if (request.runs === 0) {
      process.disconnect()
      return
    }
    void (async () => {
      const samples: number[] = []
      for (let i = 0; i < request.runs; i++) samples.push(await run())
      process.send?.({ samples } satisfies SpeedSamples)
    })().catch((error: unknown) => {
      console.error(error)
      process.exit(1)
    })
  })
  process.send?.({ digest, firstRunMs } satisfies SpeedReady)
}

const task = JSON.parse(process.argv[2] as string) as SpeedTask | MemoryTask
if (task.mode === 'speed') await speed(task)
else process.send?.(await measureMemory(task))
