/**
 * Error classes keep their names in a minified bundle, as a deployment builds it: minifiers
 * rename classes, so a `name` taken from `constructor.name`, or none at all ('Error'), would
 * leave logs and `error.name` checks with nothing to go on. Every exported error class of every
 * package is bundled, minified, imported and built, and must answer the name it is exported as.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

const packagesDir = fileURLToPath(new URL('../../packages/', import.meta.url))

/** Every `export class X extends ...Error` in the packages' sources, by package. */
function declaredErrorClasses(): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const pkg of readdirSync(packagesDir)) {
    let files: string[]
    try {
      files = readdirSync(join(packagesDir, pkg, 'src'))
    } catch {
      continue
    }
    for (const file of files) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue
      const source = readFileSync(join(packagesDir, pkg, 'src', file), 'utf8')
      for (const [, name] of source.matchAll(/^export class (\w+) extends \w*Error\b/gm)) {
        found.set(pkg, [...(found.get(pkg) ?? []), name as string])
      }
    }
  }
  return found
}

const at = { shardId: 'shardId-1', sequenceNumber: '1', subSequenceNumber: 0, partitionKey: 'k' }

/** Arguments to build each class with; a new class needs a row here. */
const argumentsOf: Record<string, unknown[]> = {
  RecordError: [at, 'bad'],
  DecodeError: [at, 'bad'],
  ParseError: [at, 'bad'],
  ValidationError: [at, [{ message: 'bad', path: [] }]],
  RecordHandlerError: [at, new Error('bad')],
  NonRetryableError: ['bad'],
  ConfigurationError: ['bad'],
  SchemaRegistryError: [at, 'bad', { cause: new Error('bad'), retryable: true }],
  FinalAnswerError: ['bad'],
  PoisonSinkError: [{ ...at, message: 'bad' }, new Error('bad')],
  TimeoutError: ['bad'],
  WindowEndError: ['bad'],
  FullBatchFailureError: ['bad'],
  TemplateError: ['bad'],
  LambdaApiError: ['bad'],
  RequestTimeoutError: ['bad'],
  KinesisCallError: ['bad'],
  UsageError: ['bad'],
  DocumentError: ['bad'],
}

/**
 * The package's entry, minified into one file, its own dependencies left to be imported (from
 * its node_modules, where the file is written) and Shardwise's packages bundled with it.
 */
async function minifiedExports(pkg: string): Promise<Record<string, unknown>> {
  const root = join(packagesDir, pkg)
  const outdir = join(root, 'node_modules', '.cache', 'shardwise-error-names')
  mkdirSync(outdir, { recursive: true })
  const outfile = join(outdir, 'index.mjs')
  await build({
    stdin: {
      contents: `export * from ${JSON.stringify(join(root, 'dist', 'index.js'))}`,
      resolveDir: root,
      loader: 'js',
    },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    outfile,
    logLevel: 'silent',
    plugins: [
      {
        name: 'dependencies-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@shardwise/') ? undefined : { path: args.path, external: true },
          )
        },
      },
    ],
  })
  // A query, so that each run imports the file it just wrote.
  return import(`${pathToFileURL(outfile).href}?${Date.now()}`)
}

type ErrorClass = new (...args: unknown[]) => Error

const isErrorClass = (value: unknown): value is ErrorClass =>
  typeof value === 'function' && value.prototype instanceof Error

describe('error classes in a minified bundle', () => {
  const declared = declaredErrorClasses()

  it('finds the error classes of the packages', () => {
    expect([...declared.keys()].sort()).toEqual(
      expect.arrayContaining(['avro-parse', 'core', 'local', 'observe', 'partial-failures']),
    )
  })

  it.each([...declared])('%s: every exported error class keeps its name', async (pkg, classes) => {
    const exported = await minifiedExports(pkg)
    const errorClasses: Array<[string, ErrorClass]> = []
    for (const [name, value] of Object.entries(exported)) {
      if (isErrorClass(value)) errorClasses.push([name, value])
    }
    // A declared class the package exports is an error class in the bundle too.
    for (const name of classes) {
      if (!Object.hasOwn(exported, name)) continue
      expect(isErrorClass(exported[name]), name).toBe(true)
    }
    expect(errorClasses.length).toBeGreaterThan(0)
    for (const [name, ErrorClass] of errorClasses) {
      const args = argumentsOf[name]
      expect(args, `add ${name} to argumentsOf`).toBeDefined()
      const error = new ErrorClass(...(args as unknown[]))
      expect(error.name, name).toBe(name)
      expect(String(error.stack).startsWith(`${name}: `), name).toBe(true)
      // The bundle was minified: the class itself lost its name, or the test proves nothing.
      expect(ErrorClass.name, name).not.toBe(name)
    }
  })
})
