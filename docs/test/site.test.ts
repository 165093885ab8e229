import { join } from 'node:path'
import { expect, test } from 'vitest'
import { workspacePackages } from '../scripts/packages.mjs'
import { crawl } from './crawl.ts'

const dist = join(import.meta.dirname, '..', 'dist')

test('every page of the built site opens without a console error, a broken link or anchor, or a missing image', async () => {
  const { pages, problems } = await crawl(dist)
  expect(problems).toEqual([])
  // A published package has its API reference; one with a README, a page of its own.
  for (const { dir, published, readme } of workspacePackages) {
    const api = [`/api/@shardwise/${dir}`, `/api/@shardwise/${dir}/`].some((p) => pages.includes(p))
    expect(api, `API reference of ${dir}`).toBe(published)
    expect(pages.includes(`/packages/${dir}`), `page of ${dir}`).toBe(readme)
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
