/** Bundles a handler as a Lambda deployment would: esbuild, minified, ESM for Node, AWS SDK external. */

import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { build, type Metafile } from 'esbuild'

export interface Bundle {
  outfile: string
  bytes: number
  gzipBytes: number
  /** Minified bytes in the bundle per file of Shardwise's packages, per package for the others. */
  byModule: Map<string, number>
  /** What the bundle imports when it loads: the externals and Node's built-in modules. */
  imports: string[]
}

const benchRoot = new URL('../', import.meta.url).pathname

// Lambda's Node runtimes ship the AWS SDK v3, so deployments leave it out; CommonJS
// dependencies bundled as ESM need `require` for Node's built-ins.
const options = {
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: ['@aws-sdk/*'],
  banner: {
    js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
  },
  metafile: true,
  logLevel: 'silent',
} as const

/** `external`: more packages to leave out; `esmOnly`: no CommonJS inside, so no `require` banner. */
export async function bundle(
  entry: string,
  outfile: string,
  { external = [] as string[], esmOnly = false } = {},
): Promise<Bundle> {
  const result = await build({
    ...options,
    ...(esmOnly ? { banner: {} } : {}),
    external: [...options.external, ...external],
    stdin: { contents: entry, resolveDir: benchRoot, sourcefile: 'entry.js', loader: 'js' },
    outfile,
  })
  const code = readFileSync(outfile)
  return {
    outfile,
    bytes: code.length,
    gzipBytes: gzipSync(code).length,
    byModule: byModule(result.metafile),
    imports: [
      ...new Set(Object.values(result.metafile.outputs)[0]?.imports.map((i) => i.path) ?? []),
    ].sort(),
  }
}

/** A handler module's entry: its `make` with a sink that counts, exported as `handler`. */
export function handlerEntry(file: string): string {
  return `import { make } from ${JSON.stringify(file)}
let handled = 0
export const handler = make(() => { handled++ })
`
}

function packageOf(path: string): string {
  const nodeModules = path.lastIndexOf('node_modules/')
  if (nodeModules !== -1) {
    const parts = path.slice(nodeModules + 'node_modules/'.length).split('/')
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string)
  }
  // Shardwise's own packages by file, so a change shows where it is made.
  const workspace = /(?:^|\/)packages\/([^/]+)\/dist\/(.+)$/.exec(path)
  if (workspace !== null) return `@shardwise/${workspace[1]} ${workspace[2]}`
  return path === '<stdin>' || path.endsWith('entry.js') ? '(entry)' : path
}

function byModule(metafile: Metafile): Map<string, number> {
  // One entry, no source map: the bundle is the only output.
  const output = Object.values(metafile.outputs)[0]
  const sizes = new Map<string, number>()
  for (const [path, { bytesInOutput }] of Object.entries(output?.inputs ?? {})) {
    const name = packageOf(path)
    sizes.set(name, (sizes.get(name) ?? 0) + bytesInOutput)
  }
  return new Map([...sizes].sort((a, b) => b[1] - a[1]))
}
