import type { KinesisStreamRecord } from '@shardwise/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { matchesFilterCriteria, parseFilterCriteria } from './filter.js'

/** AWS's sample record (DESIGN.md section 1) carrying `payload`: bytes, text, or JSON of a value. */
function record(payload: unknown, partitionKey = '1'): KinesisStreamRecord {
  const bytes =
    payload instanceof Uint8Array
      ? payload
      : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload))
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey,
      sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
      data: Buffer.from(bytes).toString('base64'),
      approximateArrivalTimestamp: 1545084650.987,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: 'shardId-000000000006:49590338271490256608559692538361571095921575989136588898',
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'us-east-2',
    eventSourceARN: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
  }
}

/** The criteria `--filter-criteria` takes, with each pattern written as an object. */
function criteria(...patterns: unknown[]) {
  return { Filters: patterns.map((p) => ({ Pattern: JSON.stringify(p) })) }
}

const matches = (pattern: unknown, payload: unknown, partitionKey?: string) =>
  matchesFilterCriteria(criteria(pattern), record(payload, partitionKey))

describe('matchesFilterCriteria', () => {
  it('matches the recorded AWS case: each mapping gets the record of its own event_type', () => {
    // kinesis-esm-recorded-on-aws.json, test_kinesis_event_filtering_json_pattern: the function
    // of the pattern on function_1 received exactly the function_1 record.
    const one = { data: { event_type: ['function_1'] } }
    const two = { data: { event_type: ['function_2'] } }
    const first = { event_type: 'function_1', message: 'foo' }
    const second = { event_type: 'function_2', message: 'bar' }
    expect([matches(one, first), matches(one, second)]).toEqual([true, false])
    expect([matches(two, first), matches(two, second)]).toEqual([false, true])
  })

  it('filters on the AWS docs examples: a metadata property and a data property together', () => {
    const pattern = { partitionKey: ['1'], data: { Location: ['Los Angeles'] } }
    expect(matches(pattern, { Location: 'Los Angeles' }, '1')).toBe(true)
    expect(matches(pattern, { Location: 'Los Angeles' }, '2')).toBe(false)
    expect(matches(pattern, { Location: 'Seattle' }, '1')).toBe(false)
    const order = { data: { order: { type: ['buy'] } } }
    expect(matches(order, { record: 12345, order: { type: 'buy', stock: 'ANYCO' } })).toBe(true)
    expect(matches(order, { record: 12345, order: { type: 'sell' } })).toBe(false)
  })

  it('reads every metadata field of the record, not only partitionKey', () => {
    const payload = { a: 1 }
    expect(matches({ eventSource: ['aws:kinesis'] }, payload)).toBe(true)
    expect(matches({ awsRegion: [{ prefix: 'us-' }] }, payload)).toBe(true)
    expect(matches({ kinesisSchemaVersion: ['2.0'] }, payload)).toBe(false)
    expect(matches({ sequenceNumber: [{ prefix: '4959' }] }, payload)).toBe(true)
    expect(
      matches({ approximateArrivalTimestamp: [{ numeric: ['>', 1545084650] }] }, payload),
    ).toBe(true)
    expect(matches({ eventID: [{ prefix: 'shardId-000000000007:' }] }, payload)).toBe(false)
  })

  it('applies each operator as EventBridge does', () => {
    const cases: Array<[string, unknown, unknown, boolean]> = [
      ['equals', ['Alice'], 'Alice', true],
      ['equals, another value', ['Alice'], 'Bob', false],
      ['or between values', ['Credit', 'Debit'], 'Debit', true],
      ['null', [null], null, true],
      ['null against a value', [null], 'x', false],
      ['empty', [''], '', true],
      ['boolean', [true], true, true],
      ['number as written', [100], 100, true],
      ['number written another way', [300], 300.5, false],
      ['a number is not its string', ['100'], 100, false],
      ['prefix', [{ prefix: 'us-' }], 'us-east-1', true],
      ['prefix, no', [{ prefix: 'us-' }], 'eu-west-1', false],
      ['prefix ignoring case', [{ prefix: { 'equals-ignore-case': 'US-' } }], 'us-east-1', true],
      ['suffix', [{ suffix: '.png' }], 'photo.png', true],
      ['suffix, no', [{ suffix: '.png' }], 'photo.jpg', false],
      ['suffix ignoring case', [{ suffix: { 'equals-ignore-case': '.PNG' } }], 'a.png', true],
      ['equals-ignore-case', [{ 'equals-ignore-case': 'alice' }], 'ALICE', true],
      ['equals-ignore-case, no', [{ 'equals-ignore-case': 'alice' }], 'alicia', false],
      ['anything-but', [{ 'anything-but': 'Raining' }], 'Sunny', true],
      ['anything-but, excluded', [{ 'anything-but': 'Raining' }], 'Raining', false],
      ['anything-but a list', [{ 'anything-but': ['a', 'b'] }], 'b', false],
      ['anything-but numbers', [{ 'anything-but': [100, 200] }], 300, true],
      ['anything-but numbers, excluded', [{ 'anything-but': [100, 200] }], 200, false],
      ['anything-but prefix', [{ 'anything-but': { prefix: 'us-' } }], 'eu-west-1', true],
      [
        'anything-but prefix, excluded',
        [{ 'anything-but': { prefix: 'us-' } }],
        'us-east-1',
        false,
      ],
      ['anything-but suffix', [{ 'anything-but': { suffix: '.png' } }], 'a.png', false],
      [
        'anything-but ignore case',
        [{ 'anything-but': { 'equals-ignore-case': ['X'] } }],
        'x',
        false,
      ],
      ['anything-but wildcard', [{ 'anything-but': { wildcard: '*/lib/*' } }], '/usr/lib/x', false],
      ['numeric =', [{ numeric: ['=', 100] }], 100, true],
      ['numeric range', [{ numeric: ['>', 10, '<=', 20] }], 20, true],
      ['numeric range, below', [{ numeric: ['>', 10, '<=', 20] }], 10, false],
      ['numeric range, above', [{ numeric: ['>', 10, '<=', 20] }], 20.5, false],
      ['numeric against a string', [{ numeric: ['>', 0] }], '5', false],
      ['numeric = compares values', [{ numeric: ['=', 300] }], 300.0, true],
      ['exists', [{ exists: true }], 'anything', true],
      ['exists, null is a value', [{ exists: true }], null, true],
      ['exists false, present', [{ exists: false }], 'x', false],
      ['wildcard', [{ wildcard: 'dir/*.png' }], 'dir/a/b.png', true],
      ['wildcard, no', [{ wildcard: 'dir/*.png' }], 'other/b.png', false],
      ['wildcard, escaped star', [{ wildcard: 'a\\*b' }], 'a*b', true],
      ['wildcard, escaped star literal', [{ wildcard: 'a\\*b' }], 'axxb', false],
      ['an array field matches when one element does', ['b'], ['a', 'b'], true],
    ]
    for (const [name, rule, value, expected] of cases) {
      expect([name, matches({ data: { field: rule } }, { field: value })]).toEqual([name, expected])
    }
  })

  it('keeps the text of numbers: 300, 300.0 and 3.0e2 are not equal', () => {
    const pattern = { data: { price: [300] } }
    expect(matches(pattern, '{"price": 300}')).toBe(true)
    expect(matches(pattern, '{"price": 300.0}')).toBe(false)
    expect(matches(pattern, '{"price": 3.0e2}')).toBe(false)
  })

  it('exists false matches a field that is missing; other rules never do', () => {
    expect(matches({ data: { gone: [{ exists: false }] } }, { other: 1 })).toBe(true)
    expect(matches({ data: { gone: [{ 'anything-but': 'x' }] } }, { other: 1 })).toBe(false)
    expect(matches({ data: { gone: [{ exists: true }] } }, { other: 1 })).toBe(false)
  })

  it('needs every field of a pattern (and), and one filter of several (or)', () => {
    const both = { data: { a: ['1'], b: ['2'] } }
    expect(matches(both, { a: '1', b: '2' })).toBe(true)
    expect(matches(both, { a: '1', b: '3' })).toBe(false)
    const two = criteria({ data: { a: ['1'] } }, { data: { b: ['2'] } })
    expect(matchesFilterCriteria(two, record({ a: '0', b: '2' }))).toBe(true)
    expect(matchesFilterCriteria(two, record({ a: '0', b: '0' }))).toBe(false)
    const either = { $or: [{ data: { a: ['1'] } }, { partitionKey: ['k'] }] }
    expect(matches(either, { a: '0' }, 'k')).toBe(true)
    expect(matches(either, { a: '0' }, 'j')).toBe(false)
  })

  it('never matches a pattern on data to a payload that is not JSON; metadata still filters it', () => {
    expect(matches({ data: { a: [{ exists: false }] } }, 'plain text')).toBe(false)
    expect(matches({ data: { a: [{ exists: false }] } }, Buffer.from([0x1f, 0x8b, 0x08]))).toBe(
      false,
    )
    expect(matches({ partitionKey: ['1'] }, 'plain text', '1')).toBe(true)
    expect(matches({ partitionKey: ['1'] }, 'plain text', '2')).toBe(false)
    // A filter on data fails for it, another on metadata alone still lets it through.
    const mixed = criteria({ data: { a: ['1'] } }, { partitionKey: ['1'] })
    expect(matchesFilterCriteria(mixed, record('plain text', '1'))).toBe(true)
  })

  it('lets every record through without filters', () => {
    expect(matchesFilterCriteria({}, record('x'))).toBe(true)
    expect(matchesFilterCriteria('{"Filters": []}', record('x'))).toBe(true)
  })
})

describe('parseFilterCriteria', () => {
  const refused = (input: unknown) => {
    try {
      parseFilterCriteria(input as string)
    } catch (error) {
      expect((error as Error).name).toBe('ConfigurationError')
      return (error as Error).message
    }
    throw new Error(`accepted ${JSON.stringify(input)}`)
  }

  it('takes the JSON that aws lambda create-event-source-mapping --filter-criteria takes', () => {
    const text = '{"Filters": [{"Pattern": "{ \\"data\\" : { \\"a\\": [ 1, 2 ] } }"}]}'
    const parsed = parseFilterCriteria(text)
    expect(parsed.filters).toHaveLength(1)
    expect(matchesFilterCriteria(parsed, record({ a: 2 }))).toBe(true)
    expect(matchesFilterCriteria(parsed, record({ a: 3 }))).toBe(false)
  })

  it("holds to Lambda's limits: 5 filters by default (10 with a quota), 4096 characters a pattern", () => {
    const six = criteria(...Array.from({ length: 6 }, (_, i) => ({ partitionKey: [String(i)] })))
    expect(refused(six)).toBe(
      'FilterCriteria: Filters: 6 filters, over the quota of 5 per event source mapping (5 by default, up to 10 with a quota increase)',
    )
    expect(parseFilterCriteria(six, { maxFilters: 10 }).filters).toHaveLength(6)
    const long = { Filters: [{ Pattern: JSON.stringify({ partitionKey: ['x'.repeat(4100)] }) }] }
    expect(refused(long)).toMatch(/Filters\[0\]\.Pattern: 4\d{3} characters, over Lambda's 4096/)
    const fits = { Filters: [{ Pattern: JSON.stringify({ partitionKey: ['x'.repeat(4000)] }) }] }
    expect(parseFilterCriteria(fits).filters).toHaveLength(1)
  })

  it('rejects an invalid pattern with the filter, the field and the reason', () => {
    const cases: Array<[unknown, string]> = [
      ['not json', 'FilterCriteria: the criteria: not JSON'],
      [{ Filters: [{ Pattern: '{"a": [' }] }, 'Filters[0].Pattern: not JSON'],
      [{ Filters: [{}] }, 'Filters[0]: must be {"Pattern"'],
      [{ Filter: [] }, 'unknown key Filter'],
      [criteria({ data: { a: 'x' } }), 'Filters[0].Pattern data.a: must be an array'],
      [
        criteria({ data: ['plain'] }),
        'Filters[0].Pattern data: a pattern on data must be a JSON object',
      ],
      [criteria({ data: { a: [] } }), 'data.a: an empty array matches nothing'],
      [criteria({}), 'an empty object matches nothing'],
      [criteria({ a: [{ prefix: 1 }] }), 'prefix takes a string'],
      [
        criteria({ a: [{ prefix: 'a', suffix: 'b' }] }),
        'a matcher has one operator, got prefix, suffix',
      ],
      [criteria({ a: [{ cidr: '10.0.0.0/24' }] }), 'unknown operator cidr'],
      [criteria({ a: [{ numeric: ['>', 'ten'] }] }), 'is no number'],
      [
        criteria({ a: [{ numeric: ['<', 10, '>', 0] }] }),
        'a range is a lower bound then an upper bound',
      ],
      [
        criteria({ a: [{ numeric: ['>', 10, '<', 5] }] }),
        'the lower bound must be below the upper bound',
      ],
      [criteria({ a: [{ numeric: ['>', 6e9] }] }), 'outside -5e9 to 5e9'],
      [criteria({ a: [{ numeric: ['~', 1] }] }), 'unexpected operator "~"'],
      [criteria({ a: [{ exists: 'yes' }] }), 'exists takes true or false'],
      [criteria({ a: [{ wildcard: 'a**b' }] }), 'consecutive wildcard characters'],
      [criteria({ a: [{ 'anything-but': [] }] }), 'an empty array excludes nothing'],
      [criteria({ a: [{ 'anything-but': { exists: true } }] }), 'anything-but takes a value'],
      [criteria({ a: [['nested']] }), 'a value in the array cannot be an array'],
      [criteria({ $or: [{ a: ['1'] }] }), '$or takes an array of two patterns or more'],
    ]
    for (const [input, reason] of cases) expect(refused(input)).toContain(reason)
  })
})

describe('filtering, as properties', () => {
  const scalar = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.integer({ min: -1000, max: 1000 }),
    fc.boolean(),
    fc.constant(null),
  )
  const payload = fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), scalar, {
    minKeys: 1,
    maxKeys: 4,
  })

  it('a payload matches a pattern on one of its own values, and never anything-but that value', () => {
    fc.assert(
      fc.property(payload, fc.nat(), (data, pick) => {
        const keys = Object.keys(data)
        const key = keys[pick % keys.length] as string
        const value = data[key]
        expect(matches({ data: { [key]: [value] } }, data)).toBe(true)
        expect(matches({ data: { [key]: [{ exists: true }] } }, data)).toBe(true)
        expect(matches({ data: { [key]: [{ exists: false }] } }, data)).toBe(false)
        if (typeof value === 'string' || typeof value === 'number') {
          expect(matches({ data: { [key]: [{ 'anything-but': [value] }] } }, data)).toBe(false)
        }
        if (typeof value === 'number') {
          const range = { numeric: ['>=', value, '<=', value + 1] }
          expect(matches({ data: { [key]: [range] } }, data)).toBe(true)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses any pattern only with a ConfigurationError, and never throws while matching', () => {
    const rule = fc.oneof(
      scalar,
      fc.dictionary(
        fc.constantFrom(
          'prefix',
          'suffix',
          'anything-but',
          'numeric',
          'exists',
          'wildcard',
          'equals-ignore-case',
          'x',
        ),
        fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string(), scalar)),
        { maxKeys: 2 },
      ),
    )
    const pattern = fc.dictionary(
      fc.constantFrom('data', 'partitionKey', 'eventSource', '$or', 'a'),
      fc.oneof(
        fc.array(rule, { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 3 }), fc.array(rule, { maxLength: 3 })),
        scalar,
      ),
      { maxKeys: 3 },
    )
    fc.assert(
      fc.property(pattern, fc.oneof(payload, fc.string()), (p, data) => {
        let parsed: ReturnType<typeof parseFilterCriteria>
        try {
          parsed = parseFilterCriteria(criteria(p))
        } catch (error) {
          expect((error as Error).name).toBe('ConfigurationError')
          expect((error as Error).message).toMatch(/^FilterCriteria: /)
          return
        }
        expect(typeof matchesFilterCriteria(parsed, record(data))).toBe('boolean')
      }),
      { numRuns: 3000 },
    )
  })
})
