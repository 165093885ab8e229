/**
 * The code samples of the site: every ```ts block of its markdown, written out as one module each
 * and type-checked together against the workspace packages by the repo's tsc; a block whose info
 * string says `run` (```ts run) is also run by Node, and must exit with status 0.
 *
 * The samples of the pages made from the package READMEs and from TypeDoc are often fragments:
 * they leave out the imports of the page's own package and helpers such as `save`. Those are
 * completed on one line before the sample: each missing name that a workspace package (the
 * page's own first) or a well-known dependency exports is imported from it, and any other is
 * declared `any`, so that what the sample does with the packages is checked against their types.
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
  /** The package whose exports a fragment may leave out, when it is one (see above). */
  fragmentOf?: string
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b(.*)$/

export function extractSamples(
  siteDir: string,
  outDir: string,
  fragmentOf: (page: string) => string | undefined = () => undefined,
): Sample[] {
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
        fragmentOf: fragmentOf(page),
      })
      i = end
    }
  }
  return samples
}

/** Where a missing name can be imported from: a module's default export, a value or a type. */
export type ExportIndex = Map<string, { module: string; kind: 'default' | 'value' | 'type' }[]>

const WELL_KNOWN: [string, string, 'default' | 'value'][] = [
  ['middy', '@middy/core', 'default'],
  ['z', 'zod', 'value'],
  ['Logger', '@aws-lambda-powertools/logger', 'value'],
  ['Metrics', '@aws-lambda-powertools/metrics', 'value'],
  ['describe', 'vitest', 'value'],
  ['expect', 'vitest', 'value'],
  ['it', 'vitest', 'value'],
  ['test', 'vitest', 'value'],
  ['vi', 'vitest', 'value'],
]

/** The names each package's `dist/index.d.ts` exports, and a few well-known dependencies'. */
export function exportIndex(packages: { name: string; typesFile: string }[]): ExportIndex {
  const index: ExportIndex = new Map()
  const add = (name: string, module: string, kind: 'default' | 'value' | 'type') => {
    const list = index.get(name) ?? []
    if (!list.some((e) => e.module === module)) list.push({ module, kind })
    index.set(name, list)
  }
  for (const { name: module, typesFile } of packages) {
    // Without comments: the JSDoc examples of a .d.ts hold `export const handler = ...`.
    const text = readFileSync(typesFile, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '')
    for (const [, typeOnly, list = ''] of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
      for (const item of list.split(',')) {
        const isType = Boolean(typeOnly) || /^\s*type\s/.test(item)
        const name = item
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)
          .pop()
        if (name) add(name, module, isType ? 'type' : 'value')
      }
    }
    const declared =
      /export\s+(?:declare\s+)?(?:abstract\s+)?(function|const|let|class|enum|namespace|interface|type)\s+([A-Za-z_$][\w$]*)/g
    for (const [, keyword, name = ''] of text.matchAll(declared))
      add(name, module, keyword === 'interface' || keyword === 'type' ? 'type' : 'value')
  }
  for (const [name, module, kind] of WELL_KNOWN) add(name, module, kind)
  return index
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

interface Diagnostic {
  sample: Sample
  /** The line in the written file. */
  line: number
  code: string
  message: string
}

function runTsc(samples: Sample[], outDir: string, tsc: string, preludes: Map<Sample, string>) {
  // `export {}` keeps each sample a module of its own, whatever it imports.
  for (const sample of samples) {
    const prelude = preludes.get(sample)
    const code = sample.fragmentOf ? withoutOwnImports(sample.code) : sample.code
    writeFileSync(sample.file, `${prelude === undefined ? '' : `${prelude}\n`}${code}\nexport {}\n`)
  }
  const result = spawnSync(tsc, ['-p', outDir, '--pretty', 'false'], { encoding: 'utf8' })
  const byFile = new Map(samples.map((sample) => [sample.file, sample]))
  const diagnostics: Diagnostic[] = []
  const other: string[] = []
  for (const line of `${result.stdout}${result.stderr}`.split('\n')) {
    if (!line.trim()) continue
    const at = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line)
    const sample = at && byFile.get(resolve(at[1] ?? ''))
    if (at && sample)
      diagnostics.push({ sample, line: Number(at[2]), code: at[4] ?? '', message: at[5] ?? '' })
    else if (/error/i.test(line)) other.push(line)
  }
  if (result.status !== 0 && diagnostics.length === 0 && other.length === 0)
    other.push(`tsc exited with status ${result.status}: ${result.stdout}${result.stderr}`)
  return { diagnostics, other }
}

/**
 * The one line that completes a fragment: imports of the missing names (a value before a type,
 * the page's own package first), `any` for the rest.
 */
function prelude(sample: Sample, missing: Set<string>, index: ExportIndex): string {
  const rank = (e: { module: string; kind: string }) =>
    (e.kind === 'type' ? 2 : 0) + (e.module === sample.fragmentOf ? 0 : 1)
  const named = new Map<string, string[]>()
  const statements: string[] = []
  for (const name of [...missing].sort()) {
    const [source] = [...(index.get(name) ?? [])].sort((a, b) => rank(a) - rank(b))
    if (source?.kind === 'default') statements.push(`import ${name} from '${source.module}'`)
    else if (source) {
      const item = source.kind === 'type' ? `type ${name}` : name
      named.set(source.module, [...(named.get(source.module) ?? []), item])
    } else statements.push(`declare const ${name}: any; type ${name} = any`)
  }
  for (const [module, names] of named)
    statements.unshift(`import { ${names.join(', ')} } from '${module}'`)
  return statements.join('; ')
}

/** A fragment's import of a file of the reader's own (`./handler.js`), its names made `any`. */
function withoutOwnImports(code: string): string {
  return code.replace(
    /^import\s+(?:type\s+)?(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?\s*from\s+'\.{1,2}\/[^']*'\s*;?$/gm,
    (_, name: string | undefined, list: string | undefined) => {
      const names = [
        name,
        ...(list ?? '').split(',').map((n) =>
          n
            .trim()
            .split(/\s+as\s+/)
            .pop(),
        ),
      ]
      return names
        .filter((n): n is string => Boolean(n))
        .map((n) => `declare const ${n}: any`)
        .join('; ')
    },
  )
}

const MISSING_NAME =
  /^Cannot find name '([^']+)'|^Cannot find namespace '([^']+)'|^No value exists in scope for the shorthand property '([^']+)'/
const MISSING_CODES = ['TS2304', 'TS2552', 'TS2503', 'TS18004']

/** Type-checks the samples; answers each error as `page:line: error TSnnnn: message`. */
export function typeCheck(
  samples: Sample[],
  outDir: string,
  tsc: string,
  index: ExportIndex = new Map(),
): string[] {
  rmSync(outDir, { recursive: true, force: true })
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
  const preludes = new Map<Sample, string>()
  let checked = runTsc(samples, outDir, tsc, preludes)
  const missing = new Map<Sample, Set<string>>()
  for (const { sample, code, message } of checked.diagnostics) {
    const name = MISSING_NAME.exec(message)
    if (!sample.fragmentOf || !name || !MISSING_CODES.includes(code)) continue
    missing.set(sample, (missing.get(sample) ?? new Set()).add(name[1] ?? name[2] ?? name[3] ?? ''))
  }
  if (missing.size > 0) {
    for (const [sample, names] of missing) preludes.set(sample, prelude(sample, names, index))
    checked = runTsc(samples, outDir, tsc, preludes)
  }
  return [
    ...checked.diagnostics.map(({ sample, line, code, message }) => {
      const offset = preludes.has(sample) ? 1 : 0
      return `${sample.page}:${sample.line + line - 1 - offset}: error ${code}: ${message}`
    }),
    ...checked.other,
  ]
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
