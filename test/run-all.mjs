/**
 * `pnpm test`: lint, build, type-check, check the packed tarballs (`lint:package`) and test every
 * package through turbo, each package's output in one block, then one line per package and the
 * total. Every task runs whatever another package's tests do, so a failing package is named once,
 * under "failed", and the others report what they ran. Exits non-zero when any task failed.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

const TASKS = ['lint', 'build', 'typecheck', 'lint:package', 'test']
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g')

const turbo = spawn(
  'turbo',
  [
    'run',
    ...TASKS,
    '--continue=dependencies-successful',
    '--log-order=grouped',
    '--log-prefix=task',
    ...process.argv.slice(2),
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', TURBO_NO_UPDATE_NOTIFIER: '1' },
  },
)

/** Per package: the tests vitest counted, passed and failed. */
const counts = new Map()
/** Tasks turbo reports as failed, e.g. `@shardwise/core#typecheck`. */
const failedTasks = []

for await (const line of createInterface({ input: turbo.stdout })) {
  process.stdout.write(`${line}\n`)
  const plain = line.replace(ANSI, '')
  // vitest's summary, prefixed by turbo: "@shardwise/core:test:       Tests  38 passed (38)"
  const summary = /^(\S+):test:\s+Tests\s+(.*)\(\d+\)\s*$/.exec(plain)
  if (summary) {
    const [, name, parts] = summary
    const count = counts.get(name) ?? { passed: 0, failed: 0 }
    for (const [, n, kind] of parts.matchAll(/(\d+) (passed|failed)/g)) count[kind] += Number(n)
    counts.set(name, count)
    continue
  }
  // turbo's closing list: "Failed:    //#lint, @shardwise/core#test"
  const failed = /^\s*Failed:\s+(.*)$/.exec(plain)
  if (failed) failedTasks.push(...failed[1].split(/[\s,]+/).filter((task) => task.includes('#')))
}
const status = await new Promise((resolve) => turbo.on('close', (code) => resolve(code ?? 1)))

const names = [...counts.keys()].sort()
const width = Math.max(7, ...names.map((name) => name.length))
const total = { passed: 0, failed: 0 }
console.log(`\n${'package'.padEnd(width)}  passed  failed`)
for (const name of names) {
  const { passed, failed } = counts.get(name)
  total.passed += passed
  total.failed += failed
  console.log(`${name.padEnd(width)}  ${String(passed).padStart(6)}  ${String(failed).padStart(6)}`)
}
if (failedTasks.length > 0) console.log(`\nfailed: ${failedTasks.join(', ')}`)
else if (status !== 0) console.log(`\nfailed: turbo exited with status ${status}`)
console.log(`tests: ${total.passed} passed, ${total.failed} failed`)
process.exitCode = status === 0 && failedTasks.length === 0 ? 0 : 1
