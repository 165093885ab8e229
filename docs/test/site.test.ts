import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { crawl } from './crawl.ts'

const dist = join(import.meta.dirname, '..', 'dist')
const packagesDir = join(import.meta.dirname, '..', '..', 'packages')

test('every page of the built site opens without a console error, a broken link or anchor, or a missing image', async () => {
  const { pages, problems } = await crawl(dist)
  expect(problems).toEqual([])
  // Each package has its API reference, and a page of its own when it has a README.
  for (const dir of readdirSync(packagesDir)) {
    const api =
      pages.includes(`/api/@shardwise/${dir}`) || pages.includes(`/api/@shardwise/${dir}/`)
    expect(api, `/api/@shardwise/${dir}`).toBe(true)
    if (existsSync(join(packagesDir, dir, 'README.md'))) expect(pages).toContain(`/packages/${dir}`)
  }
  expect(pages).toEqual(
    expect.arrayContaining([
      '/',
      '/getting-started',
      '/concepts',
      '/bad-input',
      '/benchmarks',
      '/api/',
    ]),
  )
})
