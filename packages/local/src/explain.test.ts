import { hostileThrownValues } from '@shardwise/test-internals'
import { describe, expect, it } from 'vitest'
import { describeAnswer } from './explain.js'

describe('describeAnswer', () => {
  it.each(hostileThrownValues)('says what a handler threw, even %s', (_name, make) => {
    expect(describeAnswer({ thrown: make() })).toMatch(/^threw \S+: ./)
  })

  it('names an Error by its name', () => {
    expect(describeAnswer({ thrown: new RangeError('too far') })).toBe('threw RangeError: too far')
    expect(describeAnswer({ returned: { batchItemFailures: [] } })).toBe('{"batchItemFailures":[]}')
  })
})
