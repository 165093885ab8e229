import { describe, expect, it } from 'vitest'
import { sequenceNumber as seq } from './events.js'
import { type BatchRecord, ignoredFailures, judge, type Verdict } from './verdict.js'

const records = (count: number): BatchRecord[] =>
  Array.from({ length: count }, (_, i) => ({ sequenceNumber: seq(i) }))
const batch = records(5)
const report = { reportBatchItemFailures: true, tumblingWindow: false }
const plain = { reportBatchItemFailures: false, tumblingWindow: false }
const failures = (...ids: unknown[]) => ({
  returned: { batchItemFailures: ids.map((id) => ({ itemIdentifier: id })) },
})

describe('judge: what Lambda makes of the answer (services-kinesis-batchfailurereporting)', () => {
  it('checkpoints at the lowest reported sequence number, whatever the order of the list', () => {
    expect(judge(failures(seq(3), seq(1), seq(4)), batch, report)).toEqual({
      kind: 'partial',
      checkpoint: 1,
    })
  })

  it('compares sequence numbers as decimal strings, not as JavaScript numbers', () => {
    const shorter = { sequenceNumber: '9' }
    const longer = { sequenceNumber: '10' }
    expect(judge(failures('10', '9'), [shorter, longer], report)).toMatchObject({ checkpoint: 0 })
  })

  it.each([
    ['an empty list', { batchItemFailures: [] }],
    ['a null list', { batchItemFailures: null }],
    ['an empty response', {}],
    ['a null response', null],
    ['no response at all', undefined],
  ])('takes %s as a complete success', (_, returned) => {
    expect(judge({ returned }, batch, report)).toEqual({ kind: 'success' })
  })

  it.each([
    ['an empty string identifier', [{ itemIdentifier: '' }]],
    ['a null identifier', [{ itemIdentifier: null }]],
    ['an identifier under a wrong key name', [{ itemIdentifer: seq(2) }]],
    ['a null item', [null]],
    ['a numeric identifier', [{ itemIdentifier: 49590338 }]],
  ])('fails the whole batch on %s', (_, list) => {
    const verdict = judge({ returned: { batchItemFailures: list } }, batch, report)
    // The function answered: AWS's on-failure document says functionError null.
    expect(verdict).toMatchObject({ kind: 'failure', functionError: null })
  })

  it('fails the whole batch on one bad identifier among good ones', () => {
    expect(judge(failures(seq(2), ''), batch, report).kind).toBe('failure')
  })

  it('fails the whole batch on an identifier that is not in it, rather than skip records', () => {
    const verdict = judge(failures(seq(99)), batch, report) as Extract<Verdict, { kind: 'failure' }>
    expect(verdict.kind).toBe('failure')
    expect(verdict.reason).toContain(seq(99))
  })

  it.each([
    ['the highest', [seq(1), seq(99)]],
    ['not a sequence number at all', [seq(1), 'z'.repeat(80)]],
  ])('fails the whole batch on an identifier not in it that is %s of those reported', (_, ids) => {
    const verdict = judge(failures(...ids), batch, report) as Extract<Verdict, { kind: 'failure' }>
    expect(verdict).toMatchObject({ kind: 'failure', functionError: null })
    expect(verdict.reason).toContain(
      `batchItemFailures[1] names ${ids[1]}, which is not in the batch`,
    )
  })

  it('checkpoints at a reported record however often it is reported', () => {
    expect(judge(failures(seq(2), seq(2), seq(3), seq(2)), batch, report)).toEqual({
      kind: 'partial',
      checkpoint: 2,
    })
  })

  it.each([
    // Recorded on AWS: empty_string_success, empty_list_success.
    ['an empty string', ''],
    ['an empty list', []],
  ])('takes %s for an answer as a complete success', (_, returned) => {
    expect(judge({ returned }, batch, report)).toEqual({ kind: 'success' })
  })

  it.each([
    ['a string', 'ok', 'the string "ok"'],
    ['a number', 42, 'the number 42'],
    ['true', true, 'the boolean true'],
    ['a list of items', [{ itemIdentifier: seq(1) }], 'an array of 1 item(s)'],
  ])(
    'fails the whole batch on an answer that is %s, neither empty nor an object',
    (_, returned, said) => {
      const verdict = judge({ returned }, batch, report) as Extract<Verdict, { kind: 'failure' }>
      expect(verdict).toMatchObject({ kind: 'failure', functionError: null })
      expect(verdict.reason).toContain(
        `the answer is ${said}, not an object with batchItemFailures`,
      )
      // Without ReportBatchItemFailures, it is a success that reports nothing dropped.
      expect(judge({ returned }, batch, plain)).toEqual({ kind: 'success' })
      expect(ignoredFailures({ returned }, batch, plain)).toBeUndefined()
    },
  )

  it('fails the whole batch when the function throws', () => {
    expect(judge({ thrown: new Error('boom') }, batch, report)).toEqual({
      kind: 'failure',
      reason: 'boom',
      functionError: 'Unhandled',
    })
  })

  it('ignores batchItemFailures without ReportBatchItemFailures', () => {
    expect(judge(failures(seq(1)), batch, plain)).toEqual({ kind: 'success' })
    expect(judge({ thrown: 'no' }, batch, plain).kind).toBe('failure')
  })

  it('fails a tumbling-window invocation whose answer has no state (services-kinesis-windows)', () => {
    const windowed = { reportBatchItemFailures: true, tumblingWindow: true }
    expect(judge({ returned: { batchItemFailures: [] } }, batch, windowed).kind).toBe('failure')
    expect(judge({ returned: null }, batch, windowed).kind).toBe('failure')
    expect(
      judge({ returned: { state: { n: 1 }, batchItemFailures: [] } }, batch, windowed),
    ).toEqual({ kind: 'success', state: { n: 1 }, stateBytes: 7 })
  })
})
