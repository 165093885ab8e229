/**
 * `node dist/kit.js <dir>` (run by test/bench/device/prepare.sh): everything the bench needs on a
 * machine where only a `node` binary runs, without node_modules, esbuild or a network.
 *
 * - `<dir>/`: this package's compiled modules bundled with everything they import, one output
 *   file per module at the same relative path as in dist, so that `handlers/` is found next to
 *   `run.js`.
 *   Code shared by several of them goes into `chunk-*.js` files beside them (esbuild's
 *   splitting), so that a process loads only what its own module imports, each package once.
 *   No tree shaking: a process loads every module it imports whole, as from node_modules.
 * - `<dir>/bundles/`: the cold-start bundles and the core chain's bundle, built by `bundle.ts` and
 *   `core-chain.ts` as a run builds them, with their manifest (`prebuilt.ts`), for `--bundles`.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, type Plugin } from 'esbuild'
import { bundle, handlerEntry } from './bundle.js'
import { bundleCoreChain } from './core-chain.js'
import { handlerFiles, loadHandler } from './handlers.js'
import { writeManifest } from './prebuilt.js'

/** The modules that the harness starts as processes: `run.ts` forks and execs the others. */
export const SCRIPTS = ['run.js', 'measure.js', 'cold-start.js', 'device-smoke.js']

const dist = fileURLToPath(new URL('./', import.meta.url))

/**
 * The entry points: every compiled module but this one, the scripts and every path module
 * (`handlers.ts` imports them by file) among them. Each keeps its own file, so that
 * `import.meta.url` in a module is a file of the kit's folder at the same depth as in dist, and a
 * module's check that it is the main module (`size-check.ts`) holds only when it is.
 */
export function kitEntries(): string[] {
  // From src when the tests run this module: esbuild reads TypeScript as well.
  const files = readdirSync(dist, { recursive: true, encoding: 'utf8' })
  return files
    .filter((file) => /\.[jt]s$/.test(file) && !/\.(test|d)\.ts$|^kit\.[jt]s$/.test(file))
    .map((file) => join(dist, file))
    .sort()
}

/** The harness imports esbuild only to build bundles, which the kit brings prebuilt. */
const noEsbuild: Plugin = {
  name: 'no-esbuild',
  setup(build) {
    build.onResolve({ filter: /^esbuild$/ }, () => ({ path: 'esbuild', namespace: 'no-esbuild' }))
    build.onLoad({ filter: /.*/, namespace: 'no-esbuild' }, () => ({
      contents: `export function build() {
  throw new Error('esbuild is not in the bench kit: give the bench --bundles <dir>/bundles')
}`,
      loader: 'js',
    }))
  },
}

/** `bundles: false` leaves out the prebuilt bundles (`bundles/`). */
export async function buildKit(
  dir: string,
  { bundles: prebuild = true } = {},
): Promise<{ files: number; bundles: number }> {
  rmSync(dir, { recursive: true, force: true })
  const result = await build({
    entryPoints: kitEntries(),
    outbase: dist,
    outdir: dir,
    bundle: true,
    splitting: true,
    treeShaking: false,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    chunkNames: '[name]-[hash]',
    // CommonJS dependencies bundled as ESM need `require` for Node's built-ins.
    banner: {
      js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
    },
    plugins: [noEsbuild],
    metafile: true,
    logLevel: 'warning',
  })
  // Everything must be inside: an import that is neither Node's nor one of the kit's files
  // would be looked for in a node_modules that the machine does not have.
  const outside = new Set<string>()
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imported of output.imports) {
      if (imported.external && !isBuiltin(imported.path)) outside.add(imported.path)
    }
  }
  if (outside.size > 0) {
    throw new Error(`the kit would import from node_modules: ${[...outside].join(', ')}`)
  }

  const files = Object.keys(result.metafile.outputs).length
  if (!prebuild) return { files, bundles: 0 }
  const bundles = join(dir, 'bundles')
  mkdirSync(bundles)
  const handlers = []
  for (const file of handlerFiles()) {
    if ((await loadHandler(file)).noColdStart !== undefined) continue
    const name = `${file.id}.mjs`
    const built = await bundle(handlerEntry(fileURLToPath(file.href)), join(bundles, name))
    handlers.push({ id: file.id, file: name, bundle: built })
  }
  const core = await bundleCoreChain(join(bundles, 'core-chain.mjs'))
  writeManifest(bundles, handlers, { file: 'core-chain.mjs', bundle: core })
  return { files, bundles: handlers.length + 1 }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2]
  if (dir === undefined) throw new Error('usage: node dist/kit.js <dir>')
  const { files, bundles } = await buildKit(dir)
  console.log(`${dir}: ${files} files of the harness, ${bundles} prebuilt bundles`)
}
