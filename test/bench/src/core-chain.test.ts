import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { bundleCoreChain } from './core-chain.js'

it("imports no module when the core chain loads: Node's built-ins are taken on first use", async () => {
  // An ES module import of a built-in builds its module facade in every cold start, whether the
  // chain ever decompresses, checks an MD5 or overlaps records (node:async_hooks took about
  // 0.1 ms in the bench's process); process.getBuiltinModule takes it when it is needed.
  const dir = mkdtempSync(join(tmpdir(), 'shardwise-core-chain-'))
  try {
    const chain = await bundleCoreChain(join(dir, 'core-chain.mjs'))
    expect(chain.imports).toEqual([])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
