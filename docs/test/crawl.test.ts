import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { crawl } from './crawl.ts'

const root = mkdtempSync(join(tmpdir(), 'shardwise-docs-crawl-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function page(path: string, body: string) {
  const file = join(root, path)
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(
    file,
    `<!doctype html><html><head><title>t</title><link rel="icon" href="data:,"></head><body>${body}</body></html>`,
  )
}

test('the crawl reports broken links, missing anchors, missing images and console errors, and passes a sound site', async () => {
  page(
    'index.html',
    '<a href="/guide#install">ok</a> <a href="/guide/">dir</a> <h2 id="top">Top</h2>',
  )
  page('guide/index.html', '<h2 id="install">Install</h2> <a href="/#top">back</a>')
  expect(await crawl(root)).toEqual({ pages: ['/', '/guide/'], problems: [] })

  page('broken.html', '<a href="/nowhere">gone</a> <a href="/guide#uninstall">no such anchor</a>')
  page('image.html', '<img src="/missing.png" alt="missing">')
  page('script.html', '<script>console.error("boom")</script>')
  const { problems } = await crawl(root)
  expect(problems).toEqual(
    expect.arrayContaining([
      '/broken: broken link to /nowhere',
      '/broken: link to a missing anchor: /guide#uninstall',
      expect.stringMatching(
        /^\/image: image did not load: http:\/\/127\.0\.0\.1:\d+\/missing\.png$/,
      ),
      expect.stringMatching(/^\/script: console error: boom/),
    ]),
  )
})
