/**
 * Observe's cost in one process: `npx -y pnpm@12.4.2 exec node test/bench/observe-ab.mjs [rounds]`
 * (after `npx -y pnpm@12.4.2 build`). The core chain with observe off, with recordLogContext, with
 * batchMetrics and with both take turns in rounds of 200 invocations of a 100-record JSON event,
 * in alternating order; each round's CPU time of the process is compared with the off chain's of
 * the same round, and the medians of those ratios are printed. The EMF line goes through the
 * Metrics' own console to this process's stdout: run it with stdout on /dev/null, as the
 * package README's figures were (`> /dev/null`), or on a pipe to see what a reader costs.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import { Metrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { batchMetrics, recordLogContext } from '@shardwise/observe'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { workloads } from './dist/workloads.js'

// The bench's own json-100 event: 100 records of ~150-byte JSON orders.
const json100 = workloads.find((workload) => workload.id === 'json-100')
const events = Array.from({ length: 64 }, () => json100.event())
const context = { functionName: 'bench', getRemainingTimeInMillis: () => 60000, awsRequestId: 'x' }

let handled = 0
const handler = async (record) => {
  if (JSON.parse(Buffer.from(record.data).toString('utf8')).id) handled++
}
function chain({ metrics = false, logContext = false }) {
  const withMetrics = new Metrics({ namespace: 'Shardwise', serviceName: 'bench' })
  const logger = new Logger({ serviceName: 'bench' })
  const built = middy(eachRecord(handler))
  if (metrics) built.use(batchMetrics({ metrics: withMetrics }))
  built.use(kinesisDecode())
  if (logContext) built.use(recordLogContext({ logger }))
  return built.use(partialFailures({ logger: false }))
}
const chains = {
  off: chain({}),
  logContext: chain({ logContext: true }),
  metrics: chain({ metrics: true }),
  both: chain({ metrics: true, logContext: true }),
}

const PER_ROUND = 200
async function cpuMs(run) {
  const before = process.cpuUsage()
  for (let i = 0; i < PER_ROUND; i++) await run(events[i % events.length], context)
  const spent = process.cpuUsage(before)
  return (spent.user + spent.system) / 1000
}

for (const run of Object.values(chains)) await cpuMs(run)
const rounds = Number(process.argv[2] ?? 100)
const names = Object.keys(chains)
const ratios = Object.fromEntries(names.map((name) => [name, []]))
for (let round = 0; round < rounds; round++) {
  const spent = {}
  for (const name of round % 2 === 0 ? names : [...names].reverse()) {
    spent[name] = await cpuMs(chains[name])
  }
  for (const name of names) ratios[name].push(spent[name] / spent.off)
}
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]
for (const name of names.slice(1)) {
  process.stderr.write(`${name}: ${((median(ratios[name]) - 1) * 100).toFixed(1)} % over off\n`)
}
if (handled === 0) throw new Error('the handler saw no records')
