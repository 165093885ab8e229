import { describe, expect, it } from 'vitest'
import {
  CORE_CHAIN_LIMIT_KB,
  CORE_CHAIN_TARGET_KB,
  checkCoreChainSize,
  main,
} from './size-check.js'

describe('the core chain size check', () => {
  it(`keeps the core chain's bundle at most ${CORE_CHAIN_LIMIT_KB} KB minified`, async () => {
    const check = await checkCoreChainSize()
    expect(check.ok, check.report).toBe(true)
  })

  it('fails a bundle one byte over its limit, printing the size and each module', async () => {
    const { bytes } = await checkCoreChainSize()
    const printed: string[] = []
    const status = await main(['--limit-kb', String((bytes - 1) / 1000)], (line) =>
      printed.push(line),
    )
    expect(status).toBe(1)
    const report = printed.join('\n')
    expect(report).toContain(`${bytes.toLocaleString('en-US')} bytes`)
    expect(report).toContain('OVER by 1 bytes')
    for (const module of [
      '@shardwise/kinesis-decode index.js',
      '@shardwise/json-parse index.js',
      '@shardwise/partial-failures partial-failures.js',
      '@shardwise/core index.js',
    ]) {
      expect(report).toMatch(new RegExp(`${module}\\s+\\d+ bytes\\s+\\d+\\.\\d %`))
    }
  })

  it('enforces at most the target once the chain is within it', async () => {
    const { bytes } = await checkCoreChainSize()
    if (bytes <= CORE_CHAIN_TARGET_KB * 1000) expect(CORE_CHAIN_LIMIT_KB).toBe(CORE_CHAIN_TARGET_KB)
    expect(CORE_CHAIN_LIMIT_KB).toBeGreaterThanOrEqual(CORE_CHAIN_TARGET_KB)
  })

  it('passes a bundle exactly at its limit', async () => {
    const { bytes } = await checkCoreChainSize()
    expect(await main(['--limit-kb', String(bytes / 1000)], () => {})).toBe(0)
  })

  it('refuses a limit that is not a positive number', async () => {
    const printed: string[] = []
    expect(await main(['--limit-kb', 'ten'], (line) => printed.push(line))).toBe(2)
    expect(printed.join('\n')).toContain('--limit-kb needs a positive number')
  })
})
