import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { closure } from './kit.js'
import { readPrebuilt, writeManifest } from './prebuilt.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const src = fileURLToPath(new URL('./', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'shardwise-kit-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Every package that a module of the bench imports by name (not its tests, not types alone). */
function importedPackages(): string[] {
  const names = new Set<string>()
  for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue
    const text = readFileSync(join(src, file), 'utf8')
    for (const [, kind, name] of text.matchAll(
      /^(import|export)(?! type)[^'"]*?from '([^.'][^']*)'/gm,
    )) {
      if (kind !== undefined && name !== undefined && !name.startsWith('node:')) {
        names.add(name)
      }
    }
  }
  return [...names].sort()
}

it('holds every package the bench imports, loadable where there is nothing else', () => {
  // The paths as the machine gets them: the kit's, and the tracked package.json of each
  // Shardwise package. The bench's own dist is left out: this test runs before it is built.
  const paths = closure(root).filter((path) => path !== 'test/bench/dist')
  const manifests = paths
    .filter((path) => /^packages\/[^/]+\/dist$/.test(path))
    .map((path) => path.replace(/dist$/, 'package.json'))
  expect(manifests).toContain('packages/core/package.json')
  const list = join(dir, 'files.txt')
  writeFileSync(list, [...paths, ...manifests, 'test/bench/package.json'].join('\n'))
  const copy = join(dir, 'copy')
  execFileSync(
    'bash',
    ['-c', `mkdir -p "$2" && tar -cf - -T "$1" | tar -xf - -C "$2"`, '-', list, copy],
    {
      cwd: root,
    },
  )
  expect(existsSync(join(copy, 'node_modules/.pnpm/node_modules'))).toBe(true)
  // Each package loads there, from the bench's folder, as run.js and its children load them.
  const packages = importedPackages()
  expect(packages).toEqual(
    expect.arrayContaining(['@middy/core', '@shardwise/partial-failures', 'zod']),
  )
  const check = join(copy, 'test/bench/check.mjs')
  writeFileSync(
    check,
    `for (const name of ${JSON.stringify(packages)}) { await import(name); console.log('loaded', name) }\n`,
  )
  const out = execFileSync(process.execPath, [check], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  })
  for (const name of packages) expect(out).toContain(`loaded ${name}\n`)
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
