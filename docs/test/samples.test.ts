import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { workspacePackages } from '../scripts/packages.mjs'
import { exportIndex, extractSamples, runSamples, typeCheck } from './samples.ts'

const docs = join(import.meta.dirname, '..')
const tsc = join(docs, '..', 'node_modules', '.bin', 'tsc')
const index = exportIndex(
  workspacePackages.map(({ name, dir }) => ({
    name,
    typesFile: join(docs, '..', 'packages', dir, 'dist', 'index.d.ts'),
  })),
)

/** The package a page made from a README or from TypeDoc documents: its samples may be fragments. */
function fragmentOf(page: string): string | undefined {
  const dir = /^(?:packages|api\/@shardwise)\/([^/.]+)/.exec(page)?.[1]
  return dir && `@shardwise/${dir}`
}

test('every ts sample of the site type-checks against the workspace packages, and the runnable ones run', () => {
  const out = join(docs, '.samples', 'site')
  const samples = extractSamples(join(docs, 'site'), out, fragmentOf)
  // The guides' own samples, and the READMEs' and the API reference's.
  expect(samples.filter((s) => !s.fragmentOf).length).toBeGreaterThanOrEqual(10)
  expect(samples.filter((s) => s.page.startsWith('packages/')).length).toBeGreaterThanOrEqual(10)
  expect(samples.filter((s) => s.run).length).toBeGreaterThanOrEqual(5)
  expect(typeCheck(samples, out, tsc, index)).toEqual([])
  expect(runSamples(samples)).toEqual([])
})

const fixture = join(docs, '.samples', 'fixture-src')
afterAll(() => rmSync(fixture, { recursive: true, force: true }))

test('a sample that does not type-check, and a runnable one that fails, are named by page and line', () => {
  mkdirSync(join(fixture, 'packages'), { recursive: true })
  writeFileSync(
    join(fixture, 'page.md'),
    [
      '# A page',
      '',
      '```ts',
      "import { kinesisDecode } from '@shardwise/kinesis-decode'",
      'kinesisDecode({ deaggregate: "yes" })',
      '```',
      '',
      '```ts run',
      "throw new Error('sample failed')",
      '```',
    ].join('\n'),
  )
  // A README's fragment: its imports and its helpers are completed, its own mistakes are not.
  writeFileSync(
    join(fixture, 'packages', 'partial-failures.md'),
    [
      '```ts',
      'export const handler = middy(eachRecord(async (record) => save(record.data)))',
      '  .use(kinesisDecode({ decompress: "brotli" }))',
      '  .use(partialFailures())',
      '```',
    ].join('\n'),
  )
  const out = join(docs, '.samples', 'fixture')
  const samples = extractSamples(fixture, out, fragmentOf)
  expect(samples.map(({ page, line, run }) => ({ page, line, run }))).toEqual([
    { page: 'packages/partial-failures.md', line: 2, run: false },
    { page: 'page.md', line: 4, run: false },
    { page: 'page.md', line: 9, run: true },
  ])
  expect(typeCheck(samples, out, tsc, index)).toEqual([
    expect.stringMatching(/^packages\/partial-failures\.md:3: error TS2322: Type '"brotli"'/),
    expect.stringMatching(
      /^page\.md:5: error TS2322: Type 'string' is not assignable to type 'boolean/,
    ),
  ])
  expect(runSamples(samples)).toEqual([
    expect.stringMatching(/^page\.md:9: exited with 1: .*sample failed/s),
  ])
})
