/**
 * `node dist/device-smoke.js [--bundles <dir>]`: a check of a few seconds that the bench can run
 * where it is (test/bench/device/run.sh runs it before the bench): every path loads and gives the
 * output of its format's reference on a small batch, a speed child and a memory child of
 * `measure.js` answer, and `cold-start.js` imports and invokes one prebuilt bundle per format in a
 * fresh process. Prints one line per check; exits 1 at the first that fails, saying what failed.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ColdStart } from './cold-start.js'
import { handlerFiles, loadHandler, REFERENCE } from './handlers.js'
import type { SpeedReady, SpeedSamples, SpeedTask } from './measure.js'
import { forkMeasure } from './measure-child.js'
import type { MemoryResult, MemoryTask } from './memory.js'
import { checkpointOf, collector, digestOf, lambdaContext } from './output.js'
import { readPrebuilt } from './prebuilt.js'
import { workloads } from './workloads.js'

const args = process.argv.slice(2)
const at = args.indexOf('--bundles')
const bundlesDir = at === -1 ? undefined : args[at + 1]
const coldStartJs = fileURLToPath(new URL('cold-start.js', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'shardwise-smoke-'))
const started = performance.now()

function ok(line: string) {
  console.log(`ok   ${line} (${((performance.now() - started) / 1000).toFixed(1)} s)`)
}

/** Answers of a `measure.js` child, in order: it sends one message per request. */
function measureChild(task: SpeedTask | MemoryTask) {
  const child = forkMeasure(task)
  const messages: unknown[] = []
  let waiting: ((message: unknown) => void) | undefined
  let exit: string | undefined
  child.on('message', (message) => {
    if (waiting) {
      const resolve = waiting
      waiting = undefined
      resolve(message)
    } else messages.push(message)
  })
  child.on('exit', (code, signal) => {
    exit = `measure.js (${task.mode}) exited with ${code ?? signal} before it answered`
    waiting?.(new Error(exit))
  })
  const next = async <T>(): Promise<T> => {
    const message =
      messages.shift() ?? (exit ? new Error(exit) : await new Promise((r) => (waiting = r)))
    if (message instanceof Error) throw message
    return message as T
  }
  return { child, next }
}

async function main() {
  // Every path against its reference, in this process.
  let paths = 0
  for (const format of new Set(workloads.map((w) => w.format))) {
    const small = workloads.find((w) => w.format === format)?.small
    if (small === undefined) continue
    const digests = new Map<string, string>()
    for (const file of handlerFiles(format)) {
      const { sink, values } = collector()
      const response = await (await loadHandler(file)).make(sink)(small(), lambdaContext())
      digests.set(
        file.id,
        digestOf({
          values: JSON.parse(JSON.stringify(values)),
          checkpoint: checkpointOf(response),
        }),
      )
    }
    const reference = digests.get(`${format}.${REFERENCE}`)
    for (const [id, digest] of digests) {
      if (digest !== reference) throw new Error(`${id}: output ${digest}, reference ${reference}`)
    }
    paths += digests.size
  }
  ok(`${paths} paths load and give their reference's output on a small batch`)

  // The children of the speed and memory sections, on a small event.
  const json = workloads.find((w) => w.id === 'json-100')
  if (json === undefined) throw new Error('no json-100 workload')
  const eventFile = join(tmp, 'json-small.json')
  writeFileSync(eventFile, JSON.stringify(json.small()))
  const hand = handlerFiles('json').find((file) => file.path === REFERENCE)
  if (hand === undefined) throw new Error('no json reference path')
  const handler = { id: hand.id, href: hand.href }
  const speed = measureChild({ mode: 'speed', handler, eventFile })
  const ready = await speed.next<SpeedReady>()
  speed.child.send({ runs: 3 })
  const { samples } = await speed.next<SpeedSamples>()
  speed.child.send({ runs: 0 })
  if (samples.length !== 3 || !samples.every((ms) => ms >= 0)) {
    throw new Error(`measure.js (speed) answered ${JSON.stringify(samples)} to 3 runs`)
  }
  ok(`speed child: ${ready.digest}, 3 runs of ${samples.map((ms) => ms.toFixed(3)).join(', ')} ms`)
  // The memory rows load each handler's bundle: without --bundles (no esbuild on the machine),
  // the child runs the baseline, which loads nothing.
  const prebuilt = bundlesDir === undefined ? undefined : readPrebuilt(bundlesDir)
  const memory = measureChild({
    mode: 'memory',
    handler: prebuilt && { id: hand.id, bundle: prebuilt.handler(hand.id).outfile },
    eventFile,
    invocations: 2,
  })
  const { peakKB } = await memory.next<MemoryResult>()
  if (!(peakKB > 0)) throw new Error(`measure.js (memory) answered a peak of ${peakKB} kB`)
  const hwm = /^VmHWM:/m.test(readFileSync('/proc/self/status', 'utf8'))
  ok(
    `memory child${prebuilt ? `, ${hand.id}'s bundle` : ', no --bundles: the baseline'}: peak ${(peakKB / 1024).toFixed(0)} MB (${hwm ? 'VmHWM of /proc/self/status' : 'no VmHWM here: getrusage maxRSS'})`,
  )

  // One cold start per format from the prebuilt bundles.
  if (bundlesDir === undefined || prebuilt === undefined) {
    ok('cold starts not checked: no --bundles')
    return
  }
  const core = prebuilt.coreChain()
  if (!existsSync(core.outfile)) throw new Error(`${core.outfile}: missing`)
  let starts = 0
  for (const format of new Set(workloads.map((w) => w.format))) {
    const small = workloads.find((w) => w.format === format)?.small
    const file = handlerFiles(format).find((f) => f.path === REFERENCE)
    if (small === undefined || file === undefined) continue
    let bundle: string
    try {
      bundle = prebuilt.handler(file.id).outfile
    } catch {
      continue // a format without cold starts (run.ts's coldEvents) has no bundles
    }
    const smallFile = join(tmp, `${format}.json`)
    writeFileSync(smallFile, JSON.stringify(small()))
    const out = execFileSync(process.execPath, [coldStartJs, bundle, smallFile], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    const cold = JSON.parse(out) as ColdStart
    if (!(cold.total > 0)) throw new Error(`cold-start.js ${bundle}: ${out}`)
    starts++
  }
  ok(`${starts} cold starts from ${bundlesDir}`)
}

const timer = setTimeout(() => {
  console.error('FAILED smoke check: no answer within 60 s')
  process.exit(1)
}, 60_000)
timer.unref()
try {
  await main()
  console.log('smoke check passed')
} catch (error) {
  console.error(`FAILED smoke check: ${error instanceof Error ? error.message : error}`)
  process.exitCode = 1
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
