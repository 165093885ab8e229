/**
 * `pnpm bench [--quick] [--only json-10k,kpl] [--skip speed,memory,cold] [--cold-samples 40]
 *   [--write | --no-write] [--first json-100,memory,cold] [--budget <s>] [--report <file>]
 *   [--raw <file>] [--bundles <dir>] [--machine <text>]`
 *
 * Every comparison runs in a fresh child process on the same event file. Speed: a first run
 * checks the output against the hand-written loop of its format, then warm-up runs, then timed
 * runs (median and quartiles). Memory: peak RSS over a few invocations in a fresh process. Cold
 * start: each handler bundled with esbuild, then imported and invoked once per fresh process.
 *
 * For a machine where only Node runs (test/bench/device): `--first` runs those steps (workload
 * ids for their speed, `memory`, `cold`) before the others, `--budget` starts no step and no
 * round of cold starts after that many seconds, `--report` and `--raw` write the generated part
 * and the raw samples after every step, `--bundles` takes the bundles from `prebuilt.ts`'s
 * folder, and `--machine` says in the report where it ran. The report keeps its order.
 */
import { execFileSync } from 'node:child_process'
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { KinesisStreamEvent } from 'aws-lambda'
import { type Bundle, bundle, handlerEntry } from './bundle.js'
import type { ColdStart } from './cold-start.js'
import { bundleCoreChain } from './core-chain.js'
import {
  avroPayloads,
  eventOf,
  gzipPayloads,
  jsonPayloads,
  kplPayloads,
  zstdPayloads,
} from './events.js'
import { type HandlerFile, handlerFiles, loadHandler, REFERENCE } from './handlers.js'
import type { SpeedReady, SpeedRequest, SpeedSamples, SpeedTask } from './measure.js'
import { forkMeasure } from './measure-child.js'
import { type MemoryResult, type MemoryTask, memoryTask } from './memory.js'
import { type Spread, spreadOf } from './output.js'
import { readPrebuilt } from './prebuilt.js'
import { CORE_CHAIN_LIMIT_KB, CORE_CHAIN_TARGET_KB } from './size-check.js'
import { type Interval, pairedDifference } from './stats.js'
import { type Workload, workloads } from './workloads.js'

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(`--${name}`)
const listOf = (name: string) => {
  const at = args.indexOf(`--${name}`)
  return at === -1 ? [] : (args[at + 1] ?? '').split(',').filter(Boolean)
}
const quick = flag('quick')
const only = listOf('only')
const skip = new Set(listOf('skip'))
const write = flag('write') || (!quick && only.length === 0 && skip.size === 0 && !flag('no-write'))

const settings = quick
  ? { seconds: 1.5, minRuns: 3, runsScale: 0.25, warmup: 3, coldSamples: 12, memoryInvocations: 2 }
  : { seconds: 6, minRuns: 5, runsScale: 1, warmup: 10, coldSamples: 40, memoryInvocations: 3 }
const coldSamplesFlag = Number(listOf('cold-samples')[0])
if (coldSamplesFlag > 0) settings.coldSamples = Math.round(coldSamplesFlag)
/** The value of `--<name> <value>`, taken whole (a path or a text may hold commas). */
const optionOf = (name: string) => {
  const at = args.indexOf(`--${name}`)
  return at === -1 ? undefined : args[at + 1]
}
const first = listOf('first')
const budgetSeconds = Number(optionOf('budget'))
const reportFile = optionOf('report')
const rawFile = optionOf('raw')
const prebuilt = optionOf('bundles')
const machine = optionOf('machine')

const dist = new URL('./', import.meta.url)
const coldStartJs = fileURLToPath(new URL('cold-start.js', dist))
const repoRoot = fileURLToPath(new URL('../../../', dist))
const tmp = mkdtempSync(join(tmpdir(), 'shardwise-bench-'))
const started = Date.now()
/** Past this time no step starts: `--budget`. */
const deadline = budgetSeconds > 0 ? started + budgetSeconds * 1000 : Number.POSITIVE_INFINITY

/** `--raw`: one JSON line per step, as soon as it is done. */
function raw(record: Record<string, unknown>): void {
  if (rawFile !== undefined) appendFileSync(rawFile, `${JSON.stringify(record)}\n`)
}

const selected = (id: string) => only.length === 0 || only.some((o) => id.includes(o))

const bundlesDir = join(tmp, 'bundles')
mkdirSync(bundlesDir)
const ready = prebuilt === undefined ? undefined : readPrebuilt(prebuilt)
const bundles = new Map<string, Promise<Bundle>>()
/**
 * A handler as a Lambda deployment runs it: its esbuild bundle, built once per run (or taken from
 * `--bundles`) for both the memory rows and the cold starts.
 */
function bundleOf(file: HandlerFile): Promise<Bundle> {
  let built = bundles.get(file.id)
  if (built === undefined) {
    const from = ready
    built = from
      ? Promise.resolve().then(() => from.handler(file.id))
      : bundle(handlerEntry(fileURLToPath(file.href)), join(bundlesDir, `${file.id}.mjs`))
    bundles.set(file.id, built)
  }
  return built
}

function writeEvent(name: string, event: KinesisStreamEvent): string {
  const file = join(tmp, `${name}.json`)
  writeFileSync(file, JSON.stringify(event))
  return file
}

function child<T>(task: MemoryTask): Promise<T> {
  return new Promise((resolve, reject) => {
    const process_ = forkMeasure(task)
    let result: T | undefined
    process_.on('message', (message) => {
      result = message as T
    })
    process_.on('error', reject)
    process_.on('exit', (code) => {
      if (code === 0 && result !== undefined) resolve(result)
      else reject(new Error(`${task.handler?.id ?? 'baseline'}: child exited with ${code}`))
    })
  })
}

/** A speed child: answers its first message (`SpeedReady`), then one `SpeedSamples` per request. */
class SpeedChild {
  readonly ready: Promise<SpeedReady>
  private readonly process_
  private waiting: { resolve: (value: never) => void; reject: (error: Error) => void } | undefined
  private failure: Error | undefined

  constructor(task: SpeedTask) {
    this.process_ = forkMeasure(task)
    this.process_.on('message', (message) => {
      const waiting = this.waiting
      this.waiting = undefined
      waiting?.resolve(message as never)
    })
    this.process_.on('exit', (code) => {
      this.failure = new Error(`${task.handler.id}: child exited with ${code}`)
      this.waiting?.reject(this.failure)
      this.waiting = undefined
    })
    this.ready = this.next<SpeedReady>()
  }

  private next<T>(): Promise<T> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise<T>((resolve, reject) => {
      this.waiting = { resolve: resolve as (value: never) => void, reject }
    })
  }

  async runs(runs: number): Promise<number[]> {
    const answer = this.next<SpeedSamples>()
    this.process_.send({ runs } satisfies SpeedRequest)
    return (await answer).samples
  }

  close() {
    if (this.process_.connected) this.process_.send({ runs: 0 } satisfies SpeedRequest)
  }
}

const ns = (ms: number, records: number) => (ms * 1e6) / records
const int = (n: number) => Math.round(n).toLocaleString('en-US')
const fixed = (n: number, digits = 2) => n.toFixed(digits)
const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`
const mb = (kilobytes: number, digits = 0) => `${(kilobytes / 1024).toFixed(digits)} MB`

/** A Markdown table with padded columns, as the repository's formatter (biome) writes them. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, c) =>
    Math.max(3, cell.length, ...rows.map((row) => (row[c] ?? '').length)),
  )
  const line = (cells: string[]) =>
    `| ${widths.map((width, c) => (cells[c] ?? '').padEnd(width)).join(' | ')} |`
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const labels = new Map<string, string>()
async function labelOf(file: HandlerFile): Promise<string> {
  let label = labels.get(file.id)
  if (label === undefined) {
    label = (await loadHandler(file)).label
    labels.set(file.id, label)
  }
  return label
}

// ---------------------------------------------------------------------------------------------
// Speed

interface SpeedRow {
  file: HandlerFile
  digest: string | undefined
  samples: number[]
  error: string | undefined
  spread: Spread | undefined
}

/**
 * Every path of the workload gets its own process; after the output check and warm-up, the
 * paths take turns, a few runs each (about 0.2 s), until each has its runs or its time.
 */
async function speedOf(workload: Workload, eventFile: string): Promise<string> {
  const files = handlerFiles(workload.format)
  const maxRuns = Math.max(settings.minRuns, Math.round(workload.runs * settings.runsScale))
  const warmup = Math.max(2, Math.round(settings.warmup * (workload.records <= 100 ? 20 : 1)))
  const states = files.map((file) => ({
    file,
    child: new SpeedChild({
      mode: 'speed',
      handler: { id: file.id, href: file.href },
      eventFile,
    }),
    digest: undefined as string | undefined,
    estimate: 0,
    spent: 0,
    samples: [] as number[],
    error: undefined as string | undefined,
  }))
  const fail = (state: (typeof states)[number], error: unknown) => {
    state.error = String(error)
    state.child.close()
  }
  for (const state of states) {
    try {
      const ready = await state.child.ready
      state.digest = ready.digest
      state.estimate = ready.firstRunMs
      // Warm-up: the given number of runs, or a quarter of the time budget if that is less.
      const runs = Math.max(
        2,
        Math.min(warmup, Math.floor((settings.seconds * 250) / ready.firstRunMs)),
      )
      const samples = await state.child.runs(runs)
      state.estimate = spreadOf(samples).median
    } catch (error) {
      fail(state, error)
    }
  }
  const wants = (state: (typeof states)[number]) =>
    state.error === undefined &&
    state.samples.length < maxRuns &&
    (state.samples.length < settings.minRuns || state.spent < settings.seconds * 1000)
  while (states.some(wants)) {
    for (const state of states.filter(wants)) {
      const runs = Math.max(
        1,
        Math.min(maxRuns - state.samples.length, Math.floor(200 / Math.max(state.estimate, 0.001))),
      )
      try {
        const samples = await state.child.runs(runs)
        state.samples.push(...samples)
        for (const sample of samples) state.spent += sample
      } catch (error) {
        fail(state, error)
      }
    }
  }
  const rows: SpeedRow[] = []
  for (const state of states) {
    state.child.close()
    const spread = state.samples.length > 0 ? spreadOf(state.samples) : undefined
    rows.push({ ...state, spread })
    process.stderr.write(
      `  ${workload.id} ${state.file.id}: ${spread ? `${int(ns(spread.median, workload.records))} ns/record` : state.error}\n`,
    )
  }
  raw({
    step: 'speed',
    workload: workload.id,
    records: workload.records,
    rows: await Promise.all(
      rows.map(async (row) => ({
        id: row.file.id,
        label: await labelOf(row.file),
        digest: row.digest,
        error: row.error,
        ms: row.samples,
      })),
    ),
  })
  const reference = rows.find((row) => row.file.path === REFERENCE)
  const out: string[][] = []
  for (const row of rows) {
    const label = await labelOf(row.file)
    const { digest, spread } = row
    if (digest === undefined || spread === undefined) {
      out.push([label, `failed: ${row.error}`, '', '', '', ''])
      continue
    }
    if (reference?.digest !== undefined && digest !== reference.digest) {
      out.push([
        label,
        `output differs from the reference (${digest} instead of ${reference.digest}): not compared`,
        '',
        '',
        '',
        '',
      ])
      continue
    }
    const ratio = reference?.spread ? fixed(spread.median / reference.spread.median) : ''
    out.push([
      label,
      int(ns(spread.median, workload.records)),
      `${int(ns(spread.p25, workload.records))}–${int(ns(spread.p75, workload.records))}`,
      int(ns(spread.mean, workload.records)),
      ratio,
      String(row.samples.length),
    ])
  }
  return `### ${workload.id}: ${workload.title}\n\n${table(
    ['path', 'ns/record (median)', 'p25–p75', 'mean', 'vs reference (medians)', 'runs'],
    out,
  )}\n\nSame output (${reference?.digest ?? 'no reference'}) from every row that has numbers.`
}

// ---------------------------------------------------------------------------------------------
// Memory

async function memoryOf(workload: Workload, eventFile: string): Promise<string[][]> {
  const rows: string[][] = []
  const task = (file: HandlerFile | undefined) =>
    memoryTask(file, eventFile, settings.memoryInvocations, bundleOf)
  const baseline = await child<MemoryResult>(await task(undefined))
  rows.push([workload.id, 'event only (handler does nothing)', mb(baseline.peakKB), '0 MB', ''])
  const results: Array<{ id: string | null } & MemoryResult> = [{ id: null, ...baseline }]
  for (const file of handlerFiles(workload.format)) {
    const result = await child<MemoryResult>(await task(file))
    results.push({ id: file.id, ...result })
    rows.push([
      workload.id,
      await labelOf(file),
      mb(result.peakKB),
      mb(result.peakKB - baseline.peakKB, 1),
      mb(result.loadKB, 1),
    ])
  }
  raw({ step: 'memory', workload: workload.id, results })
  return rows
}

// ---------------------------------------------------------------------------------------------
// Cold start and size

const coldEvents: Record<string, () => KinesisStreamEvent> = {
  json: () => eventOf(jsonPayloads(100)),
  zod: () => eventOf(jsonPayloads(100)),
  valibot: () => eventOf(jsonPayloads(100)),
  kpl: () => eventOf(kplPayloads(1, 100)),
  gzip: () => eventOf(gzipPayloads(100, 10)),
  zstd: () => eventOf(zstdPayloads(100, 10)),
  avro: () => eventOf(avroPayloads(100, 'raw')),
  'avro-confluent': () => eventOf(avroPayloads(100, 'confluent')),
}

/** The row every cold start is compared with: middy 7 around the hand loop, no middleware. */
const MIDDY_ALONE = 'json.hand-middy'

/** A fixed shuffle per round (xorshift), so that no row always follows the same other row. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items]
  let x = seed * 2654435761 + 1
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    const j = (x >>> 0) % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

const ms = (interval: Interval) =>
  Number.isNaN(interval.low)
    ? `${fixed(interval.estimate)} (too few samples)`
    : `${fixed(interval.estimate)} (${fixed(interval.low)} to ${fixed(interval.high)})`

async function sizesAndColdStarts(): Promise<string> {
  const formats = new Set(workloads.filter((w) => selected(w.id)).map((w) => w.format))
  const files = handlerFiles().filter((file) => formats.has(file.format) || file.id === MIDDY_ALONE)
  const built: Array<{ file: HandlerFile; bundle: Bundle; eventFile: string; event: string }> = []
  const skipped: string[] = []
  const events = new Map<string, { file: string; text: string }>()
  for (const file of files) {
    const make = coldEvents[file.format]
    if (make === undefined) continue
    const why = (await loadHandler(file)).noColdStart
    if (why !== undefined) {
      skipped.push(`${file.id}: ${why}`)
      continue
    }
    let event = events.get(file.format)
    if (event === undefined) {
      const text = JSON.stringify(make())
      event = { file: writeEvent(`cold-${file.format}`, JSON.parse(text)), text }
      events.set(file.format, event)
    }
    const b = await bundleOf(file)
    built.push({ file, bundle: b, eventFile: event.file, event: event.text })
  }

  // Rounds: every handler once per round, in a new order each round, so that drift and bursts
  // of load on the machine spread over every handler alike, and sample i of two rows can be
  // paired.
  const samples = new Map<string, ColdStart[]>()
  let rounds = 0
  for (let s = 0; s < settings.coldSamples && (s === 0 || Date.now() < deadline); s++) {
    rounds++
    for (const { file, bundle: b, eventFile } of shuffled(built, s + 1)) {
      const out = execFileSync(process.execPath, [coldStartJs, b.outfile, eventFile], {
        encoding: 'utf8',
      })
      const list = samples.get(file.id) ?? []
      list.push(JSON.parse(out) as ColdStart)
      samples.set(file.id, list)
    }
  }
  raw({
    step: 'cold',
    rounds,
    rows: built.map(({ file, bundle: b }) => ({
      id: file.id,
      bytes: b.bytes,
      gzipBytes: b.gzipBytes,
      samples: samples.get(file.id) ?? [],
    })),
  })
  const baseline = built.find((b) => b.file.id === MIDDY_ALONE)
  const baselineSamples = samples.get(MIDDY_ALONE) ?? []
  const rows: string[][] = []
  for (const { file, bundle: b, event } of built) {
    const list = samples.get(file.id) ?? []
    const total = spreadOf(list.map((c) => c.total))
    const init = spreadOf(list.map((c) => c.init))
    const invoke = spreadOf(list.map((c) => c.invoke))
    const sinceStart = spreadOf(list.map((c) => c.sinceProcessStart))
    // Only rows given the same event as middy alone are compared with it.
    const compared = baseline !== undefined && baseline.event === event && file.id !== MIDDY_ALONE
    const over = compared
      ? pairedDifference(
          list.map((c) => c.total),
          baselineSamples.map((c) => c.total),
        )
      : undefined
    const overCpu = compared
      ? pairedDifference(
          list.map((c) => c.cpu),
          baselineSamples.map((c) => c.cpu),
        )
      : undefined
    rows.push([
      file.format,
      await labelOf(file),
      kb(b.bytes),
      kb(b.gzipBytes),
      `${fixed(total.median)} (${fixed(total.p25)}–${fixed(total.p75)})`,
      fixed(total.mean),
      fixed(init.median),
      fixed(invoke.median),
      over ? ms(over.median) : '',
      over ? ms(over.mean) : '',
      overCpu ? ms(overCpu.median) : '',
      fixed(sinceStart.median, 1),
    ])
  }

  const core = ready?.coreChain() ?? (await bundleCoreChain(join(bundlesDir, 'core-chain.mjs')))
  const coreRows = [...core.byModule].map(([name, bytes]) => [name, kb(bytes)])
  coreRows.push([
    "**whole bundle** (with esbuild's glue)",
    `**${kb(core.bytes)}** (gzip ${kb(core.gzipBytes)})`,
  ])

  return [
    `Each handler bundled with esbuild (minified, ESM, platform node, target node22, \`@aws-sdk/*\` external). Cold start: a fresh \`node\` process per sample reads the 100-record event of its format, then times the dynamic import of the bundle and the first invocation with \`performance.now()\`, so Node's own start-up (the same for every row, and the noisiest part) is left out. ${rounds} processes per handler${rounds < settings.coldSamples ? ` (stopped at the --budget, of ${settings.coldSamples})` : ''}, in rounds of one process per handler, each round in a new order. Times in ms. "Over middy alone" pairs each sample with the sample of "${(baseline && (await labelOf(baseline.file))) ?? MIDDY_ALONE}" of the same round (rows with the same event only): the median of those differences with its distribution-free 95 % confidence interval (sign test), and their mean with Student's t 95 % interval; then the same median for the CPU time the process spent on the import and the invocation (every thread), which other processes on a loaded machine disturb less than the wall clock. The last column counts from the start of the process, Node's start-up included.`,
    table(
      [
        'format',
        'handler',
        'bundle',
        'gzip',
        'import + first invocation (p25–p75)',
        'mean',
        'import',
        'invoke',
        'over middy alone, median (95 % CI)',
        'over middy alone, mean (95 % CI)',
        'CPU time over middy alone, median (95 % CI)',
        'done after process start',
      ],
      rows,
    ),
    ...(skipped.length > 0 ? [`No cold-start row: ${skipped.join('; ')}.`] : []),
    `### Core chain bundle\n\n${core.contents}, \`@middy/core\` external, no schema library. Target: at most ${CORE_CHAIN_TARGET_KB} KB minified (issue 17); \`pnpm test\` fails a change that takes it over ${CORE_CHAIN_LIMIT_KB} KB (\`src/size-check.ts\`).${core.missing.length ? ` Not installed yet, so not counted: ${core.missing.map((m) => `\`${m}\``).join(', ')}.` : ''}`,
    table(['module', 'minified bytes in the bundle'], coreRows),
  ].join('\n\n')
}

// ---------------------------------------------------------------------------------------------

function cpuModel(): string {
  return `${cpus()[0]?.model.trim() ?? 'unknown CPU'} × ${cpus().length}`
}

const startLoad = loadavg()
const shownArgs = args.filter(
  (arg, i) =>
    !['--report', '--raw', '--bundles', '--machine'].some(
      (name) => arg === name || args[i - 1] === name,
    ),
)
const command = `pnpm bench${shownArgs.length ? ` ${shownArgs.join(' ')}` : ''}`
const header = `Made by \`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}, ${cpuModel()}${machine ? `; ${machine}` : ''}.`

const chosen = workloads.filter((w) => selected(w.id))
/** What each step made, by step id (a workload's id for its speed, `memory`, `cold`). */
const made = new Map<string, string>()
const notRun: string[] = []

/**
 * The steps, in the report's order; `--first` runs some of them before the others. Each is a
 * workload's speed, the memory of the workloads that have it, or the bundles and cold starts.
 */
const steps: Array<{ id: string; run: (eventFile: (id: string) => string) => Promise<string> }> = [
  ...(skip.has('speed') ? [] : chosen).map((workload) => ({
    id: workload.id,
    run: async (eventFile: (id: string) => string) => {
      process.stderr.write(`speed: ${workload.id}\n`)
      return speedOf(workload, eventFile(workload.id))
    },
  })),
  ...(skip.has('memory') ? [] : [{ id: 'memory', run: memorySection }]),
  ...(skip.has('cold') ? [] : [{ id: 'cold', run: coldSection }]),
]
const unknown = first.filter((id) => !steps.some((step) => step.id === id))
if (unknown.length > 0) {
  throw new Error(
    `--first ${unknown.join(',')}: no such step (${steps.map((s) => s.id).join(', ')})`,
  )
}

/** The order the steps run in: `--first`'s, then the others in the report's. */
const rank = (id: string) => (first.includes(id) ? first.indexOf(id) : first.length)
const order = steps
  .map((step, at) => ({ step, at }))
  .sort((a, b) => rank(a.step.id) - rank(b.step.id) || a.at - b.at)
  .map(({ step }) => step)

async function memorySection(eventFile: (id: string) => string): Promise<string> {
  const rows: string[][] = []
  for (const workload of chosen.filter((w) => w.memory)) {
    process.stderr.write(`memory: ${workload.id}\n`)
    rows.push(...(await memoryOf(workload, eventFile(workload.id))))
  }
  if (rows.length === 0) return ''
  return `## Memory\n\nPeak RSS (\`VmHWM\` in /proc/self/status) of a fresh process per row that loads the row's handler as a Lambda deployment runs it, from its esbuild bundle (the one the cold starts below import, every row alike, the hand-written loop included), then reads the event and runs ${settings.memoryInvocations} invocations, each on a freshly parsed event; "over event only" subtracts the peak of a process that loads nothing and whose handler does nothing. The rows were measured from the packages' files in node_modules until 2026-12-04, which counted what a deployment does not load: \`@middy/core\` 7's files load \`node:http\` (about 9 MB at these events), which its bundle leaves out. "Loading" is the resident memory that importing the bundle added.\n\n${table(['workload', 'path', 'peak RSS', 'over event only', 'loading'], rows)}`
}

async function coldSection(): Promise<string> {
  process.stderr.write('bundles and cold starts\n')
  return `## Bundle size and cold start\n\n${await sizesAndColdStarts()}`
}

/** The generated part: what is made so far, in the report's order. */
function report(done: boolean): string {
  const sections = [header]
  const speed = steps.filter((step) => made.has(step.id) && chosen.some((w) => w.id === step.id))
  if (!skip.has('speed') && (done || speed.length > 0)) {
    sections.push(
      `## Speed\n\nOne child process per row. Each first runs its path once and sends a digest of its output (the values its record handler receives and the checkpoint it answers): a row gets numbers only if that equals the reference's. Then warm-up runs, then the rows of a workload take turns, about 0.2 s of runs each, so that drift and bursts of load on the machine hit every row alike, until each row has its runs (the \`runs\` column) or has spent ${settings.seconds} s (at least ${settings.minRuns} runs). Each run gets a freshly parsed event, as Lambda gives each invocation (not timed). No GC is forced between runs: the collections that a path's allocations cause fall inside its own runs, as they do in Lambda, so the mean is shown beside the median. Before each run of an event of 1 MiB or more, a random amount of short-lived garbage (up to the young generation's size) puts the next scavenge at a random point, so that scavenges do not lock into one phase per process; a path that allocates more, or keeps more alive, is hit more often or harder.\n\n${speed.map((step) => made.get(step.id)).join('\n\n')}`,
    )
  }
  for (const id of ['memory', 'cold']) {
    const section = made.get(id)
    if (section) sections.push(section)
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  const waiting = order.filter((step) => !made.has(step.id) && !notRun.includes(step.id))
  if (notRun.length > 0) {
    sections.push(`Not run, as the --budget of ${budgetSeconds} s was spent: ${notRun.join(', ')}.`)
  }
  if (!done) {
    sections.push(
      `Unfinished: ${seconds} s so far; still to run: ${waiting.map((step) => step.id).join(', ')}.`,
    )
    return sections.join('\n\n')
  }
  const loadAtStart = startLoad.map((l) => l.toFixed(1)).join(', ')
  const loadAtEnd = loadavg()
    .map((l) => l.toFixed(1))
    .join(', ')
  sections.push(
    `Whole run: ${seconds} s. Load average (1, 5, 15 min) at the start: ${loadAtStart}; at the end: ${loadAtEnd}. On ${cpus().length} cores, a load above about 1 means other processes competed with the measured one.`,
  )
  return sections.join('\n\n')
}

try {
  const eventFiles = new Map<string, string>()
  for (const workload of chosen)
    eventFiles.set(workload.id, writeEvent(workload.id, workload.event()))
  const eventFile = (id: string) => eventFiles.get(id) as string

  for (const step of order) {
    if (Date.now() >= deadline) {
      notRun.push(step.id)
      continue
    }
    const stepStarted = Date.now()
    const section = await step.run(eventFile)
    made.set(step.id, section)
    process.stderr.write(
      `done: ${step.id} in ${Math.round((Date.now() - stepStarted) / 1000)} s, ${Math.round((Date.now() - started) / 1000)} s since the start\n`,
    )
    if (section) console.log(`\n${section}\n`)
    if (reportFile !== undefined) writeFileSync(reportFile, `${report(false)}\n`)
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}

const generated = report(true)
if (reportFile !== undefined) writeFileSync(reportFile, `${generated}\n`)

if (write) {
  const file = join(repoRoot, 'BENCHMARKS.md')
  const text = readFileSync(file, 'utf8')
  const begin = '<!-- bench:begin -->'
  const end = '<!-- bench:end -->'
  const from = text.indexOf(begin)
  const to = text.indexOf(end)
  if (from === -1 || to === -1) throw new Error(`${file} lacks the ${begin} and ${end} markers`)
  writeFileSync(file, `${text.slice(0, from + begin.length)}\n${generated}\n${text.slice(to)}`)
  // Written as the repository's formatter writes Markdown, so that \`pnpm test\` (biome) passes.
  execFileSync(join(repoRoot, 'node_modules/.bin/biome'), ['format', '--write', file], {
    cwd: repoRoot,
    stdio: 'ignore',
  })
  console.log(`\nwrote ${file}`)
}
console.log(`\nWhole run: ${Math.round((Date.now() - started) / 1000)} s.`)
