/**
 * The code samples of the site: every ```ts block of its markdown, written out as one module each
 * and type-checked together against the workspace packages by the repo's tsc; a block whose info
 * string says `run` (```ts run) is also run by Node, and must exit with status 0.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export interface Sample {
  /** The markdown file, relative to the site's source. */
  page: string
  /** The line of the block's first line of code in `page`. */
  line: number
  code: string
  run: boolean
  file: string
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b(.*)$/

export function extractSamples(siteDir: string, outDir: string): Sample[] {
  const samples: Sample[] = []
  const pages = readdirSync(siteDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .sort()
  for (const page of pages) {
    const lines = readFileSync(join(siteDir, page), 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const open = FENCE.exec(lines[i] ?? '')
      if (!open) continue
      const [, indent = '', fence = '```', , info = ''] = open
      const start = i + 1
      let end = start
      while (end < lines.length && !(lines[end] ?? '').trim().startsWith(fence)) end++
      const code = lines
        .slice(start, end)
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
        .join('\n')
      const name = `${page.replace(/\.md$/, '').replace(/[^a-zA-Z0-9]+/g, '-')}-L${start + 1}.ts`
      samples.push({
        page,
        line: start + 1,
        code,
        run: /(^|\s)run(\s|$)/.test(info),
        file: join(outDir, name),
      })
      i = end
    }
  }
  return samples
}

const TSCONFIG = {
  extends: join(import.meta.dirname, '..', '..', 'tsconfig.base.json'),
  compilerOptions: {
    noEmit: true,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    types: ['node'],
  },
  include: ['*.ts'],
}

/** Type-checks the samples; answers each error as `page:line: message`. */
export function typeCheck(samples: Sample[], outDir: string, tsc: string): string[] {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
  // `export {}` keeps each sample a module of its own, whatever it imports.
  for (const sample of samples) writeFileSync(sample.file, `${sample.code}\nexport {}\n`)
  const result = spawnSync(tsc, ['-p', outDir, '--pretty', 'false'], { encoding: 'utf8' })
  const byFile = new Map(samples.map((sample) => [sample.file, sample]))
  const errors: string[] = []
  for (const line of `${result.stdout}${result.stderr}`.split('\n')) {
    if (!line.trim()) continue
    const at = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line)
    const sample = at && byFile.get(resolve(at[1] ?? ''))
    if (at && sample) errors.push(`${sample.page}:${sample.line + Number(at[2]) - 1}: ${at[4]}`)
    else if (/error/i.test(line)) errors.push(line)
  }
  if (result.status !== 0 && errors.length === 0)
    errors.push(`tsc exited with status ${result.status}: ${result.stdout}${result.stderr}`)
  return errors
}

/** Runs the samples marked `run` with Node; answers each failure as `page:line: what it printed`. */
export function runSamples(samples: Sample[]): string[] {
  const failures: string[] = []
  for (const sample of samples.filter((s) => s.run)) {
    const result = spawnSync(process.execPath, [sample.file], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    if (result.status !== 0)
      failures.push(
        `${sample.page}:${sample.line}: exited with ${result.status ?? result.signal}: ${result.stderr}`,
      )
  }
  return failures
}
