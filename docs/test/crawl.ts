/**
 * Opens every page of a built site in headless Chromium and lists what is wrong with it: console
 * errors and uncaught exceptions, requests that failed or answered 400 and over, images that did
 * not load, and links to a page, a file or an anchor that the site does not have.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, relative, sep } from 'node:path'
import { chromium } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
}

/** The file a URL path names on a site built with clean URLs (`/a/b` is `a/b.html`). */
export function fileFor(root: string, pathname: string): string | undefined {
  let path: string
  try {
    path = decodeURIComponent(pathname)
  } catch {
    return undefined
  }
  const base = join(root, path)
  if (!base.startsWith(root)) return undefined
  for (const candidate of [base, `${base}.html`, join(base, 'index.html')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return undefined
}

/** Serves `root` on 127.0.0.1 on a free port; `close()` stops it. */
export async function serve(root: string): Promise<{ origin: string; server: Server }> {
  const server = createServer((request, response) => {
    const { pathname } = new URL(request.url ?? '/', 'http://localhost')
    const file = fileFor(root, pathname)
    if (!file) {
      response.writeHead(404, { 'content-type': TYPES['.html'] }).end('not found')
      return
    }
    response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    response.end(readFileSync(file))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  server.unref()
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, server }
}

function htmlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.html') && file !== '404.html')
    .map((file) => join(dir, file))
}

export interface Crawl {
  pages: string[]
  problems: string[]
}

export async function crawl(root: string): Promise<Crawl> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`)
  const { origin, server } = await serve(root)
  const userDataDir = mkdtempSync(join(tmpdir(), 'shardwise-docs-chromium-'))
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  })
  const problems: string[] = []
  const idsByFile = new Map<string, Set<string>>()
  const links: { from: string; href: string }[] = []
  const pages = htmlFiles(root).map((file) => {
    const path = `/${relative(root, file).split(sep).join('/')}`
    return path.replace(/(index)?\.html$/, '')
  })
  pages.sort()
  try {
    const page = await browser.newPage()
    let current = ''
    page.on('console', (message) => {
      if (message.type() !== 'error') return
      const { url } = message.location()
      problems.push(`${current}: console error: ${message.text()}${url ? ` (${url})` : ''}`)
    })
    page.on('pageerror', (error) => problems.push(`${current}: uncaught: ${error.message}`))
    page.on('requestfailed', (request) => {
      const reason = request.failure()?.errorText
      // Leaving a page aborts what it was still prefetching (VitePress prefetches linked pages).
      if (reason !== 'net::ERR_ABORTED')
        problems.push(`${current}: request failed: ${request.url()} (${reason})`)
    })
    page.on('response', (response) => {
      if (response.status() >= 400)
        problems.push(`${current}: ${response.status()} for ${response.url()}`)
    })
    for (const path of pages) {
      current = path
      await page.goto(origin + path, { waitUntil: 'load' })
      // A VitePress page is usable, and has logged what hydrating it logs, once Vue has mounted.
      await page.waitForFunction(() => {
        const app = document.querySelector('#app')
        return app === null || '__vue_app__' in app
      })
      const found = await page.evaluate(() => ({
        ids: [...document.querySelectorAll('[id], a[name]')].map(
          (element) => element.id || element.getAttribute('name') || '',
        ),
        links: [...document.querySelectorAll('a[href]')].map((a) => (a as HTMLAnchorElement).href),
        brokenImages: [...document.images]
          .filter((image) => !image.complete || image.naturalWidth === 0)
          .map((image) => image.currentSrc || image.src),
      }))
      const file = fileFor(root, path)
      if (file) idsByFile.set(file, new Set(found.ids))
      for (const href of found.links) links.push({ from: path, href })
      for (const src of found.brokenImages) problems.push(`${path}: image did not load: ${src}`)
    }
  } finally {
    await browser.close()
    server.close()
    rmSync(userDataDir, { recursive: true, force: true })
  }
  for (const { from, href } of links) {
    const url = new URL(href)
    if (url.origin !== origin) continue
    const target = fileFor(root, url.pathname)
    if (!target) {
      problems.push(`${from}: broken link to ${url.pathname}${url.hash}`)
      continue
    }
    const anchor = decodeURIComponent(url.hash.slice(1))
    if (anchor && target.endsWith('.html') && !idsByFile.get(target)?.has(anchor))
      problems.push(`${from}: link to a missing anchor: ${url.pathname}${url.hash}`)
  }
  return { pages, problems: [...new Set(problems)] }
}
