import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { extractSamples, runSamples, typeCheck } from './samples.ts'

const docs = join(import.meta.dirname, '..')
const tsc = join(docs, '..', 'node_modules', '.bin', 'tsc')

test('every ts sample of the site type-checks against the workspace packages, and the runnable ones run', () => {
  const out = join(docs, '.samples', 'site')
  // The pages written for the site; those made from the READMEs and TypeDoc are left out (see README).
  const samples = extractSamples(join(docs, 'site'), out).filter(
    ({ page }) => !/^(api|packages)\/|^(benchmarks|bad-input)\.md$/.test(page),
  )
  expect(samples.length).toBeGreaterThanOrEqual(10)
  expect(samples.filter((s) => s.run).length).toBeGreaterThan(0)
  expect(typeCheck(samples, out, tsc)).toEqual([])
  expect(runSamples(samples)).toEqual([])
})

const fixture = join(docs, '.samples', 'fixture-src')
afterAll(() => rmSync(fixture, { recursive: true, force: true }))

test('a sample that does not type-check, and a runnable one that fails, are named by page and line', () => {
  mkdirSync(fixture, { recursive: true })
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
  const out = join(docs, '.samples', 'fixture')
  const samples = extractSamples(fixture, out)
  expect(samples.map(({ page, line, run }) => ({ page, line, run }))).toEqual([
    { page: 'page.md', line: 4, run: false },
    { page: 'page.md', line: 9, run: true },
  ])
  expect(typeCheck(samples, out, tsc)).toEqual([
    expect.stringMatching(
      /^page\.md:5: error TS2322: Type 'string' is not assignable to type 'boolean/,
    ),
  ])
  expect(runSamples(samples)).toEqual([
    expect.stringMatching(/^page\.md:9: exited with 1: .*sample failed/s),
  ])
})
