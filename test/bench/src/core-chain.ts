/**
 * The core chain's bundle: `kinesisDecode`, `jsonParse`, `eachRecord` and `partialFailures`,
 * bundled as a deployment would (`bundle.ts`), `@middy/core` external, no schema library. The
 * bench's table and the size check (`size-check.ts`) both measure this one bundle.
 */
import { type Bundle, bundle } from './bundle.js'

/** The core chain's modules; a package not installed yet is left out and named in the report. */
export const coreChain: Array<[pkg: string, names: string[]]> = [
  ['@shardwise/kinesis-decode', ['kinesisDecode']],
  ['@shardwise/json-parse', ['jsonParse']],
  ['@shardwise/partial-failures', ['eachRecord', 'partialFailures']],
]

export interface CoreChainBundle extends Bundle {
  /** What was bundled, e.g. "`kinesisDecode` from `@shardwise/kinesis-decode`; ...". */
  contents: string
  /** Packages of the chain that do not resolve from here, so are not counted. */
  missing: string[]
}

function resolvable(pkg: string): boolean {
  try {
    import.meta.resolve(pkg)
    return true
  } catch {
    return false
  }
}

export async function bundleCoreChain(outfile: string): Promise<CoreChainBundle> {
  const present = coreChain.filter(([pkg]) => resolvable(pkg))
  const missing = coreChain.filter(([pkg]) => !resolvable(pkg)).map(([pkg]) => pkg)
  const built = await bundle(
    present.map(([pkg, names]) => `export { ${names.join(', ')} } from '${pkg}'`).join('\n'),
    outfile,
    { external: ['@middy/core'], esmOnly: true },
  )
  const contents = present
    .map(([pkg, names]) => `\`${names.join('`, `')}\` from \`${pkg}\``)
    .join('; ')
  return { ...built, contents, missing }
}
