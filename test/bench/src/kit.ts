/**
 * `node dist/kit.js <dir>` (run by test/bench/device/prepare.sh): what the bench needs on a
 * machine where only a `node` binary runs, without node_modules, esbuild or a network.
 *
 * - `<dir>/files.txt`: the paths, from the repository's root, of every file and link that
 *   `node test/bench/dist/run.js` loads: this package's dist, and the packages it imports and
 *   everything they import, each as pnpm installed it (the store's folder of each package with
 *   the links to its dependencies, the links of this package's and of Shardwise's packages'
 *   node_modules, Shardwise's packages' dist). prepare.sh packs them, and run.sh unpacks them
 *   into the machine's copy of the repository: the bench runs there on the very files it runs
 *   on here, loaded the same way.
 * - `<dir>/bundles/`: every handler's bundle (the memory rows and the cold starts load them)
 *   and the core chain's bundle, built by `bundle.ts`
 *   and `core-chain.ts` as a run builds them, with their manifest (`prebuilt.ts`), for
 *   `--bundles`: the machine has no esbuild binary.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundle, handlerEntry } from './bundle.js'
import { bundleCoreChain } from './core-chain.js'
import { handlerFiles } from './handlers.js'
import { writeManifest } from './prebuilt.js'

const benchRoot = fileURLToPath(new URL('../', import.meta.url))

/** This package's development dependencies that no run loads. */
const NOT_LOADED = /^(vitest|@types\/.*|@esbuild\/.*)$/

interface Manifest {
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
}

function manifestOf(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest
}

/** What a package needs when it runs: its dependencies and the peers it does not mark optional. */
function runtimeDependencies(manifest: Manifest): string[] {
  const optionalPeer = (name: string) => manifest.peerDependenciesMeta?.[name]?.optional === true
  return [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}).filter((name) => !optionalPeer(name)),
  ].filter((name) => !NOT_LOADED.test(name))
}

/**
 * The paths (from `root`) that hold everything `node test/bench/dist/run.js` loads, as pnpm laid
 * them out: followed from this package's dependencies through every package's own.
 */
export function closure(root: string): string[] {
  const paths = new Set<string>(['test/bench/dist', 'node_modules/.pnpm/node_modules'])
  const seen = new Set<string>()
  const rel = (path: string) => relative(root, path).split(sep).join('/')
  const visit = (nodeModules: string, name: string) => {
    const link = join(nodeModules, name)
    if (!existsSync(link)) return // an optional dependency not installed on this platform
    paths.add(rel(link))
    const real = realpathSync(link)
    if (seen.has(real)) return
    seen.add(real)
    // A package of pnpm's store lies in .pnpm/<id>/node_modules/<name>, beside the links to its
    // dependencies; a workspace package has its own node_modules and its built dist.
    const store = /^(.*[/\\]node_modules[/\\]\.pnpm[/\\][^/\\]+[/\\]node_modules)[/\\]/.exec(real)
    let own: string
    if (store?.[1] !== undefined) {
      own = store[1]
      paths.add(rel(own))
    } else {
      own = join(real, 'node_modules')
      paths.add(rel(join(real, 'dist')))
    }
    for (const dependency of runtimeDependencies(manifestOf(real))) visit(own, dependency)
  }
  const bench = manifestOf(benchRoot)
  for (const name of Object.keys(bench.devDependencies ?? {})) {
    if (!NOT_LOADED.test(name)) visit(join(benchRoot, 'node_modules'), name)
  }
  return [...paths].sort()
}

/** `bundles: false` leaves out the prebuilt bundles. */
export async function buildKit(
  dir: string,
  root: string,
  { bundles: prebuild = true } = {},
): Promise<{ paths: number; bundles: number }> {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const paths = closure(root)
  writeFileSync(join(dir, 'files.txt'), `${paths.join('\n')}\n`)
  if (!prebuild) return { paths: paths.length, bundles: 0 }
  const bundles = join(dir, 'bundles')
  mkdirSync(bundles)
  const handlers = []
  // Every handler: the memory rows load each one's bundle, those without cold starts included.
  for (const file of handlerFiles()) {
    const name = `${file.id}.mjs`
    const built = await bundle(handlerEntry(fileURLToPath(file.href)), join(bundles, name))
    handlers.push({ id: file.id, file: name, bundle: built })
  }
  const core = await bundleCoreChain(join(bundles, 'core-chain.mjs'))
  writeManifest(bundles, handlers, { file: 'core-chain.mjs', bundle: core })
  return { paths: paths.length, bundles: handlers.length + 1 }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, root] = process.argv.slice(2)
  if (dir === undefined || root === undefined) {
    throw new Error('usage: node dist/kit.js <kit dir> <repository root>')
  }
  const { paths, bundles } = await buildKit(dir, root)
  console.log(`${dir}: ${paths} paths to pack (files.txt), ${bundles} prebuilt bundles`)
}
