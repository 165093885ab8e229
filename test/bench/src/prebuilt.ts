/**
 * Bundles built ahead of a run (`kit.ts`, run by test/bench/device/prepare.sh), for a machine
 * with neither esbuild nor node_modules: `pnpm bench --bundles <dir>` takes the cold-start
 * bundles and the core chain's bundle from `<dir>` instead of running esbuild. They are built by
 * `bundle.ts` and `core-chain.ts` from the same sources with the same options as a run builds them.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Bundle } from './bundle.js'
import type { CoreChainBundle } from './core-chain.js'

export const MANIFEST = 'manifest.json'

interface Entry {
  /** The bundle's file name in the folder. */
  file: string
  bytes: number
  gzipBytes: number
  byModule: Array<[string, number]>
  imports: string[]
}

export interface Manifest {
  /** By handler id (`<format>.<path>`). */
  handlers: Record<string, Entry>
  coreChain: Entry & { contents: string; missing: string[] }
}

function entryOf(bundle: Bundle, file: string): Entry {
  const { bytes, gzipBytes, byModule, imports } = bundle
  return { file, bytes, gzipBytes, byModule: [...byModule], imports }
}

function bundleOf(dir: string, entry: Entry): Bundle {
  const { bytes, gzipBytes, byModule, imports } = entry
  return { outfile: join(dir, entry.file), bytes, gzipBytes, byModule: new Map(byModule), imports }
}

/** Writes the manifest of bundles already written into `dir` under the given file names. */
export function writeManifest(
  dir: string,
  handlers: Array<{ id: string; file: string; bundle: Bundle }>,
  coreChain: { file: string; bundle: CoreChainBundle },
): Manifest {
  const manifest: Manifest = {
    handlers: Object.fromEntries(handlers.map((h) => [h.id, entryOf(h.bundle, h.file)])),
    coreChain: {
      ...entryOf(coreChain.bundle, coreChain.file),
      contents: coreChain.bundle.contents,
      missing: coreChain.bundle.missing,
    },
  }
  writeFileSync(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`)
  return manifest
}

export interface Prebuilt {
  handler(id: string): Bundle
  coreChain(): CoreChainBundle
}

export function readPrebuilt(dir: string): Prebuilt {
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch (error) {
    throw new Error(
      `--bundles ${dir}: cannot read ${MANIFEST} (made by test/bench/device/prepare.sh): ${error}`,
    )
  }
  return {
    handler(id) {
      const entry = manifest.handlers[id]
      if (entry === undefined) {
        throw new Error(
          `--bundles ${dir}: no bundle of ${id}; the folder was built from other handlers: run test/bench/device/prepare.sh again`,
        )
      }
      return bundleOf(dir, entry)
    },
    coreChain() {
      const { contents, missing } = manifest.coreChain
      return { ...bundleOf(dir, manifest.coreChain), contents, missing }
    },
  }
}
