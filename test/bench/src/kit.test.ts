import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { handlerFiles } from './handlers.js'
import { buildKit } from './kit.js'
import { readPrebuilt, writeManifest } from './prebuilt.js'

const dir = mkdtempSync(join(tmpdir(), 'shardwise-kit-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('builds a harness that runs from a folder with no node_modules above it', async () => {
  const kit = join(dir, 'bench')
  await buildKit(kit, { bundles: false })
  // Every path module, at the path where handlers.ts looks for it beside the runner.
  const handlers = readdirSync(join(kit, 'handlers')).sort()
  expect(handlers).toEqual(
    handlerFiles()
      .map((file) => `${file.id}.js`)
      .sort(),
  )
  // The kit's smoke check loads every path against its reference and starts measure.js's
  // children, as run.js does, from the temporary folder: nothing can come from node_modules.
  const out = execFileSync(process.execPath, [join(kit, 'device-smoke.js')], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  })
  expect(out).toContain(`ok   ${handlers.length} paths load`)
  expect(out).toContain('smoke check passed')
  // The runner loads with all its modules (a module's check that it is the main module, as
  // size-check.ts has, must not fire inside run.js) and runs an empty selection to its end.
  const run = execFileSync(
    process.execPath,
    [join(kit, 'run.js'), '--only', 'no-such-workload', '--skip', 'cold', '--no-write'],
    { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } },
  )
  expect(run).toMatch(/Whole run: \d+ s\./)
}, 60_000)

it('reads back the bundles it was given, and names a handler it has no bundle of', () => {
  const bundle = {
    outfile: join(dir, 'x.mjs'),
    bytes: 1200,
    gzipBytes: 600,
    byModule: new Map([['(entry)', 1200]]),
    imports: ['node:zlib'],
  }
  writeManifest(dir, [{ id: 'json.hand', file: 'x.mjs', bundle }], {
    file: 'core.mjs',
    bundle: { ...bundle, outfile: join(dir, 'core.mjs'), contents: 'the chain', missing: [] },
  })
  const prebuilt = readPrebuilt(dir)
  expect(prebuilt.handler('json.hand')).toEqual(bundle)
  expect(prebuilt.coreChain()).toMatchObject({
    outfile: join(dir, 'core.mjs'),
    contents: 'the chain',
  })
  expect(() => prebuilt.handler('json.shardwise')).toThrow(
    /no bundle of json\.shardwise.*prepare\.sh again/,
  )
})
