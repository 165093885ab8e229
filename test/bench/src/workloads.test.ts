import { describe, expect, it } from 'vitest'
import { eventOf, jsonPayloads } from './events.js'
import { SMALL_RECORDS_UNDER_6_MIB, workloads } from './workloads.js'

const SIX_MIB = 6 * 1024 * 1024

describe('workloads', () => {
  it('the largest small-record event holds as many ~150-byte records as stay under 6 MiB', () => {
    const size = (records: number) => JSON.stringify(eventOf(jsonPayloads(records))).length
    expect(size(SMALL_RECORDS_UNDER_6_MIB)).toBeLessThan(SIX_MIB)
    expect(size(SMALL_RECORDS_UNDER_6_MIB + 1)).toBeGreaterThanOrEqual(SIX_MIB)
  })

  it('every workload Lambda could send stays under 6 MiB; the stress case says it does not', () => {
    for (const workload of workloads.filter((w) => w.format === 'json')) {
      const size = JSON.stringify(workload.event()).length
      if (workload.title.includes('stress case')) expect(size).toBeGreaterThan(SIX_MIB)
      else expect(size, workload.id).toBeLessThan(SIX_MIB)
    }
  })
})
