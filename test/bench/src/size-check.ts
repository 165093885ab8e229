/**
 * `node dist/size-check.js [--limit-kb <n>]`: bundles the core chain (`core-chain.ts`, minified
 * ESM as a deployment bundles it) and fails when it is over the limit, printing its size, how far
 * it is from issue 17's target, and each module's share either way. `pnpm test` runs the same
 * check (`size-check.test.ts`), so a change that takes the chain over the limit fails CI.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleCoreChain } from './core-chain.js'

/** Issue 17's target, in kilobytes as the bench's tables count them: 1 KB = 1,000 bytes. */
export const CORE_CHAIN_TARGET_KB = 30

/**
 * What CI enforces: a ratchet, lowered as the chain shrinks so that it cannot grow back. The
 * target was set when the chain was 29.2 KB; the fixes of issue 13 and the features of issue 18
 * took it to 39.9 KB, under a limit of 40. Issue 17's cuts (shared helpers in core, option rules
 * a bundler can leave out, record statuses written as numbers, shorter messages) took it to
 * 36,906 bytes; with the memory work that decodes large records at their turn, 37,833 bytes,
 * and the limit to the next whole KB above. Raised once, by 0.2 KB, in its third session, to
 * 38,183 bytes: an answer may no longer name a record without a sequence number (`''`), and a
 * schema validates large records at their turn (400 records of 10 KiB with zod: 123 MB of peak
 * memory over the event, 35 after), which no cut of that size could pay for without dropping
 * what a message says. Its fourth session took it to 37,956 bytes (one name for the budget's
 * position, fixes that took code out, `Infinity` for `Number.POSITIVE_INFINITY`) and the limit
 * down to 38. Once the chain is within the target, the limit is the target.
 */
export const CORE_CHAIN_LIMIT_KB = 38

export interface SizeCheck {
  ok: boolean
  bytes: number
  limitBytes: number
  /** The size, the limit, and each module's minified bytes and share of the bundle. */
  report: string
}

export async function checkCoreChainSize(limitKb = CORE_CHAIN_LIMIT_KB): Promise<SizeCheck> {
  const dir = mkdtempSync(join(tmpdir(), 'shardwise-size-'))
  try {
    const chain = await bundleCoreChain(join(dir, 'core-chain.mjs'))
    const limitBytes = Math.round(limitKb * 1000)
    const ok = chain.bytes <= limitBytes
    const width = Math.max(...[...chain.byModule.keys()].map((name) => name.length))
    const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`
    const targetBytes = CORE_CHAIN_TARGET_KB * 1000
    const lines = [
      `core chain bundle (${chain.contents}; minified ESM, @middy/core external): ${bytes(chain.bytes)}, gzip ${bytes(chain.gzipBytes)}`,
      `limit ${bytes(limitBytes)}: ${ok ? 'within' : `OVER by ${bytes(chain.bytes - limitBytes)}`}; issue 17's target ${bytes(targetBytes)}: ${chain.bytes <= targetBytes ? 'met' : `over by ${bytes(chain.bytes - targetBytes)}`}`,
      ...[...chain.byModule]
        .filter(([, bytes]) => bytes > 0)
        .map(
          ([name, bytes]) =>
            `  ${name.padEnd(width)}  ${String(bytes).padStart(6)} bytes  ${((100 * bytes) / chain.bytes).toFixed(1).padStart(5)} %`,
        ),
      ...(chain.missing.length > 0
        ? [`  not installed, so not counted: ${chain.missing.join(', ')}`]
        : []),
    ]
    return { ok, bytes: chain.bytes, limitBytes, report: lines.join('\n') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The command: prints the report and answers the exit status, 1 when over the limit. */
export async function main(args: string[], print = (line: string) => console.log(line)) {
  const at = args.indexOf('--limit-kb')
  const limitKb = at === -1 ? CORE_CHAIN_LIMIT_KB : Number(args[at + 1])
  if (!(limitKb > 0)) {
    print(`--limit-kb needs a positive number of kilobytes, got ${args[at + 1]}`)
    return 2
  }
  const check = await checkCoreChainSize(limitKb)
  print(check.report)
  return check.ok ? 0 : 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2))
}
