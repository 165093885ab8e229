import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { type Bundle, bundle, handlerEntry } from './bundle.js'
import { eventOf, jsonPayloads } from './events.js'
import { type HandlerFile, handlerFiles } from './handlers.js'
import { measureMemory, memoryTask } from './memory.js'

const benchRoot = fileURLToPath(new URL('../', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'shardwise-memory-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const middyAlone = handlerFiles('json').find((file) => file.id === 'json.hand-middy') as HandlerFile
const bundleOf = (file: HandlerFile): Promise<Bundle> =>
  bundle(handlerEntry(fileURLToPath(file.href)), join(dir, `${file.id}.mjs`))

/** Kilobytes of resident memory that a fresh Node process adds by importing `specifier`. */
function importKB(specifier: string): number {
  const script = `import { readFileSync } from 'node:fs'
const rss = () => Number(/^VmRSS:\\s+(\\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1])
const before = rss()
await import(process.argv[1])
console.log(rss() - before)`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script, specifier], {
    cwd: benchRoot,
    encoding: 'utf8',
  })
  return Number(out.trim())
}

it('measures every row from its bundle, and the event alone from a process that loads nothing', async () => {
  const eventFile = join(dir, 'event.json')
  writeFileSync(eventFile, JSON.stringify(eventOf(jsonPayloads(20))))
  const task = await memoryTask(middyAlone, eventFile, 2, bundleOf)
  expect(task.handler?.id).toBe('json.hand-middy')
  expect(task.handler?.bundle).toBe(join(dir, 'json.hand-middy.mjs'))
  expect(existsSync(task.handler?.bundle as string)).toBe(true)
  expect((await memoryTask(undefined, eventFile, 2, bundleOf)).handler).toBeUndefined()
  // The child's measurement, run here: it imports the bundle's handler and invokes it.
  const result = await measureMemory(task)
  expect(result.peakKB).toBeGreaterThanOrEqual(result.beforeKB)
  expect(result.loadKB).toBeGreaterThanOrEqual(0)
  await expect(
    measureMemory({ ...task, handler: { id: 'none', bundle: eventFile } }),
  ).rejects.toThrow()
})

it.runIf(existsSync('/proc/self/status'))(
  "loads middy 7 as a deployment does: its package's files take node:http, its bundle does not",
  async () => {
    // What the rows of every middy chain counted when they loaded node_modules: @middy/util
    // imports STATUS_CODES from node:http, which esbuild leaves out of a bundle as unused.
    const built = await bundleOf(middyAlone)
    expect(built.imports).not.toContain('node:http')
    const fromBundle = importKB(pathToFileURL(built.outfile).href)
    const fromPackage = importKB('@middy/core')
    expect(fromPackage - fromBundle).toBeGreaterThan(3 * 1024)
    // Relative: what any first import costs differs by Node version (Node 24 took 2.6 MB for
    // the bundle of 3.4 KB, Node 22 0.4 MB).
    expect(fromBundle).toBeLessThan(fromPackage / 3)
  },
)
