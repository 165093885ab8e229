/**
 * `turbo run lint:package` (part of `pnpm test`): packs the package in the current folder as
 * `pnpm publish` would, then checks the tarball itself, not the folder: publint, attw with the
 * esm-only profile (both read the local tarball, no network), and what the tarball must and must
 * not hold. Exits non-zero, naming each problem, when anything is wrong.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const manifest = JSON.parse(await readFile('package.json', 'utf8'))
const where = await mkdtemp(join(tmpdir(), 'shardwise-pack-'))
const problems = []

try {
  const { stdout } = await run('pnpm', ['pack', '--json', '--pack-destination', where])
  const packed = JSON.parse(stdout)
  const files = new Set(packed.files.map((file) => file.path))

  for (const required of ['LICENSE', 'README.md', 'package.json', ...entryFiles(manifest)]) {
    if (!files.has(required)) problems.push(`the tarball lacks ${required}`)
  }
  for (const file of files) {
    if (/\.test\.|\.test-d\.|\.fuzz\.|\.perf\./.test(file))
      problems.push(`the tarball ships ${file}, a test`)
    if (file.endsWith('.d.ts.map')) {
      problems.push(`the tarball ships ${file}, a declaration map whose sources it does not hold`)
    }
    if (file.endsWith('.js.map')) problems.push(...(await unresolvedSources(file, files)))
  }

  const [publint, attw] = await Promise.all([
    tool('publint', ['run', packed.filename, '--level', 'suggestion', '--strict']),
    tool('attw', [packed.filename, '--profile', 'esm-only', '--format', 'ascii', '--no-emoji']),
  ])
  // publint prints "All good!" only when it found nothing, suggestions included.
  if (publint.failed || !publint.output.includes('All good!'))
    problems.push(`publint:\n${publint.output}`)
  if (attw.failed) problems.push(`attw --profile esm-only:\n${attw.output}`)

  if (problems.length === 0) {
    console.log(
      `${manifest.name}@${manifest.version}: ${files.size} files packed; publint and attw --profile esm-only pass`,
    )
  }
} finally {
  await rm(where, { recursive: true, force: true })
}

if (problems.length > 0) {
  for (const problem of problems) console.error(`${manifest.name}: ${problem}`)
  process.exitCode = 1
}

/** The files that `exports` and `bin` point at, as paths inside the tarball. */
function entryFiles(pkg) {
  const targets = []
  const collect = (value) => {
    if (typeof value === 'string') targets.push(value)
    else if (value && typeof value === 'object')
      for (const inner of Object.values(value)) collect(inner)
  }
  collect(pkg.exports)
  collect(pkg.bin)
  return targets.map((target) => target.replace(/^\.\//, ''))
}

/** A source map's sources that neither its `sourcesContent` nor the tarball holds. */
async function unresolvedSources(file, files) {
  const map = JSON.parse(await readFile(file, 'utf8'))
  const folder = file.split('/').slice(0, -1)
  const missing = []
  map.sources.forEach((source, i) => {
    if (typeof map.sourcesContent?.[i] === 'string') return
    const path = []
    for (const part of [...folder, ...source.split('/')]) {
      if (part === '..') path.pop()
      else if (part !== '.') path.push(part)
    }
    if (!files.has(path.join('/')))
      missing.push(`${file} maps to ${source}, which it neither inlines nor ships`)
  })
  return missing
}

async function tool(command, args) {
  try {
    const { stdout, stderr } = await run(command, args, { env: { ...process.env, NO_COLOR: '1' } })
    return { failed: false, output: `${stdout}${stderr}` }
  } catch (error) {
    return { failed: true, output: `${error.stdout ?? ''}${error.stderr ?? ''}${error.message}` }
  }
}
