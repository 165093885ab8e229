/**
 * Builds the site: pages made from their single source (each package's README, BENCHMARKS.md,
 * the bad-input catalogue of partial-failures' README), the API reference (TypeDoc, from each
 * package's exports), then VitePress. `--generate-only` stops before VitePress (for `vitepress dev`).
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, posix, relative } from 'node:path'
import { packages, repoRoot, workspacePackages } from './packages.mjs'

const docsRoot = join(import.meta.dirname, '..')
const site = join(docsRoot, 'site')
const started = performance.now()

const repository = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).repository
const repoUrl = (typeof repository === 'string' ? repository : repository?.url)
  ?.replace(/^git\+/, '')
  .replace(/\.git$/, '')

/**
 * Where a relative link of a repository file goes on the site: a package's README to its page,
 * BENCHMARKS.md to its page, any other file of the repository to GitHub (or nowhere, as plain
 * text, while the repository has no URL).
 */
function siteLink(target, fromFile) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) return target
  const [path, hash = ''] = target.split('#')
  const repoPath = posix.normalize(
    posix.join(posix.dirname(relative(repoRoot, fromFile).split('\\').join('/')), path),
  )
  const anchor = hash ? `#${hash}` : ''
  const pkg = /^packages\/([^/]+)\/?(README\.md)?$/.exec(repoPath)
  if (pkg && packages.some((p) => p.dir === pkg[1])) return `/packages/${pkg[1]}${anchor}`
  if (repoPath === 'BENCHMARKS.md') return `/benchmarks${anchor}`
  if (repoPath === 'README.md') return `/getting-started${anchor}`
  return repoUrl ? `${repoUrl}/blob/main/${repoPath}${anchor}` : undefined
}

/** The markdown of a repository file with its relative links made site links; code is left as it is. */
function fromRepo(file) {
  const source = readFileSync(file, 'utf8')
  let inFence = false
  return source
    .split('\n')
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) inFence = !inFence
      if (inFence) return line
      return line.replace(/(!?)\[([^\]]*)\]\(([^)\s]+)\)/g, (whole, bang, text, target) => {
        const link = siteLink(target, file)
        if (link === undefined) return bang ? whole : text
        return `${bang}[${text}](${link})`
      })
    })
    .join('\n')
}

function write(page, markdown) {
  const file = join(site, page)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, markdown)
}

function generatePages() {
  rmSync(join(site, 'packages'), { recursive: true, force: true })
  for (const { dir } of packages) {
    write(`packages/${dir}.md`, fromRepo(join(repoRoot, 'packages', dir, 'README.md')))
  }
  write('benchmarks.md', fromRepo(join(repoRoot, 'BENCHMARKS.md')))
  const partialFailures = fromRepo(join(repoRoot, 'packages/partial-failures/README.md'))
  const catalogue = /^## Bad input, catalogued\n[\s\S]*?(?=^## |(?![\s\S]))/m.exec(partialFailures)
  if (!catalogue)
    throw new Error('packages/partial-failures/README.md has no "## Bad input, catalogued" section')
  write(
    'bad-input.md',
    `# Bad input, catalogued\n\nFrom [partial-failures](/packages/partial-failures#bad-input-catalogued).\n\n${catalogue[0].replace(/^## .*\n/, '')}`,
  )
}

function apiReference() {
  rmSync(join(site, 'api'), { recursive: true, force: true })
  const typedoc = join(docsRoot, 'typedoc', 'node_modules', 'typedoc', 'bin', 'typedoc')
  const entryPoints = workspacePackages
    .filter((p) => p.published)
    .flatMap((p) => ['--entryPoints', `../../packages/${p.dir}/src/index.ts`])
  const run = spawnSync(
    process.execPath,
    [typedoc, '--options', join(docsRoot, 'typedoc', 'typedoc.json'), ...entryPoints],
    {
      cwd: join(docsRoot, 'typedoc'),
      stdio: 'inherit',
    },
  )
  if (run.status !== 0) throw new Error(`typedoc exited with status ${run.status}`)
}

generatePages()
apiReference()
if (!process.argv.includes('--generate-only')) {
  const { build } = await import('vitepress')
  await build(docsRoot)
}
console.log(`docs: built in ${((performance.now() - started) / 1000).toFixed(1)} s`)
