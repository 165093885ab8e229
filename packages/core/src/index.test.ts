import { hostileThrownValues } from '@shardwise/test-internals'
import { describe, expect, it } from 'vitest'
import {
  BATCH,
  batchResponse,
  compareSequenceNumbers,
  DecodeError,
  eventSourceOf,
  failRecord,
  getBatch,
  isNonRetryable,
  type KinesisRecord,
  messageOf,
  NonRetryableError,
  placesOf,
  type RecordBatch,
  RecordHandlerError,
  RecordStatus,
  shardIdOf,
  shownValue,
  ValidationError,
} from './index.js'

const at = {
  shardId: 'shardId-000000000006',
  sequenceNumber: '49590338271490256608559692538361571095921575989136588898',
  subSequenceNumber: 2,
  partitionKey: 'order-7',
}

function batchOf(sequenceNumbers: string[]): RecordBatch<Uint8Array> {
  const records = sequenceNumbers.map(
    (sequenceNumber): KinesisRecord => ({
      ...at,
      sequenceNumber,
      subSequenceNumber: undefined,
      data: new Uint8Array(),
      rawData: new Uint8Array(),
      explicitHashKey: undefined,
      approximateArrivalTimestamp: 1545084650.987,
      eventSourceARN: 'arn',
      lambdaRecord: {} as KinesisRecord['lambdaRecord'],
    }),
  )
  return {
    records,
    places: placesOf(records),
    status: new Uint8Array(records.length),
    errors: new Map(),
  }
}

describe('compareSequenceNumbers', () => {
  it('orders by length first, so 129-digit numbers never lose precision', () => {
    const big = `9${'0'.repeat(128)}`
    const bigger = `9${'0'.repeat(127)}1`
    expect(compareSequenceNumbers('9', '10')).toBe(-1)
    expect(compareSequenceNumbers(big, bigger)).toBe(-1)
    expect(compareSequenceNumbers(bigger, big)).toBe(1)
    expect(compareSequenceNumbers(big, big)).toBe(0)
    // As numbers these two are equal; as sequence numbers they are not.
    expect(Number(big) === Number(bigger)).toBe(true)
  })

  it('agrees with BigInt on random decimal strings', () => {
    for (let i = 0; i < 2000; i++) {
      const a = String(BigInt(Math.floor(Math.random() * 1e15)) * 10n ** BigInt(i % 40))
      const b = String(BigInt(Math.floor(Math.random() * 1e15)) * 10n ** BigInt((i * 7) % 40))
      const expected = BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0
      expect(compareSequenceNumbers(a, b)).toBe(expected)
    }
  })
})

describe('batchResponse', () => {
  it('answers an empty list when every record succeeded', () => {
    const batch = batchOf(['1', '2'])
    batch.status.fill(RecordStatus.Succeeded)
    expect(batchResponse(batch)).toEqual({ batchItemFailures: [] })
  })

  it('names the first record that did not finish, counting diverted records as finished', () => {
    const batch = batchOf(['1', '2', '3', '4'])
    batch.status.set([RecordStatus.Succeeded, RecordStatus.Diverted, RecordStatus.Pending])
    failRecord(batch, 3, new DecodeError(at, 'bad'))
    expect(batchResponse(batch)).toEqual({ batchItemFailures: [{ itemIdentifier: '3' }] })
  })

  it('keeps the first error of a record', () => {
    const batch = batchOf(['1'])
    const first = new DecodeError(at, 'first')
    failRecord(batch, 0, first)
    failRecord(batch, 0, new DecodeError(at, 'second'))
    expect(batch.errors.get(0)).toBe(first)
  })
})

describe('errors', () => {
  it('name the record and keep its coordinates and cause', () => {
    const cause = new SyntaxError('Unexpected token')
    const error = new DecodeError(at, 'data is not valid base64', { cause })
    expect(error.name).toBe('DecodeError')
    expect(error.message).toBe(
      'record 49590338271490256608559692538361571095921575989136588898 sub-record 2 of shardId-000000000006 (partition key "order-7"): data is not valid base64',
    )
    expect(error).toMatchObject({ ...at, retryable: false, cause })
  })

  it('mark a decode failure retryable only when told', () => {
    expect(new DecodeError(at, 'not yet', { retryable: true }).retryable).toBe(true)
    expect(new DecodeError(at, 'never', { retryable: false }).retryable).toBe(false)
    expect(new DecodeError(at, 'never', {}).retryable).toBe(false)
  })

  it('list every schema issue with its path', () => {
    const error = new ValidationError(at, [
      { message: 'Expected number', path: ['items', 0, 'qty'] },
      { message: 'Required', path: [] },
    ])
    expect(error.message).toMatch(
      /does not match the schema: items\.0\.qty: Expected number; \(root\): Required$/,
    )
  })

  it('list the first ten issues, each clipped, and keep them all', () => {
    const received = 'Expected number but received "'
    const issues = Array.from({ length: 20_000 }, (_, i) => ({
      message: `${received}${'x'.repeat(i === 0 ? 1_000_000 : 3)}"`,
      path: ['items', i, 'qty'],
    }))
    const error = new ValidationError(at, issues)
    expect(error.issues).toBe(issues)
    expect(error.message.length).toBeLessThan(1000)
    expect(error.message).toContain(
      `does not match the schema: items.0.qty: ${received}${'x'.repeat(200 - received.length)}… (1000031 characters); items.1.qty: Expected number but received "xxx"; items.2.qty`,
    )
    expect(error.message).toMatch(
      /; items\.9\.qty: Expected number but received "xxx"; and 19990 more issues$/,
    )
    expect(
      new ValidationError(at, [{ message: 'deep', path: Array(500).fill('a') }]).message,
    ).toMatch(/: a\.a\.a.*… \(999 characters\): deep$/)
    expect(new ValidationError(at, []).message).toMatch(
      /: does not match the schema: \(the schema gave no issue\)$/,
    )
  })

  it('mark a handler failure retryable unless the thrown value says otherwise', () => {
    expect(new RecordHandlerError(at, new Error('timeout')).retryable).toBe(true)
    expect(new RecordHandlerError(at, new NonRetryableError('never')).retryable).toBe(false)
    const marked = Object.assign(new Error('bad order'), { retryable: false })
    expect(new RecordHandlerError(at, marked).retryable).toBe(false)
    expect(new RecordHandlerError(at, 'a string').message).toMatch(/failed: a string$/)
    expect(new RecordHandlerError(at, { code: 7 }).message).toMatch(
      /non-Error value thrown: \{"code":7\}$/,
    )
  })
})

describe('what the library reads of values it did not create', () => {
  it.each(hostileThrownValues)('never throws on %s', (_name, make) => {
    const thrown = make()
    const error = new RecordHandlerError(at, thrown)
    expect(error.message).toMatch(
      /^record \d+ sub-record 2 of shardId-000000000006 \(partition key "order-7"\): the record handler failed: ./,
    )
    expect(error.cause).toBe(thrown)
    expect(typeof messageOf(thrown)).toBe('string')
    expect(typeof shownValue(thrown)).toBe('string')
    expect(typeof isNonRetryable(thrown)).toBe('boolean')
  })

  it('takes a value whose retryable cannot be read as retryable, and says what it could read', () => {
    const [, make] = hostileThrownValues[0] as readonly [string, () => unknown]
    expect(new RecordHandlerError(at, make()).retryable).toBe(true)
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    expect(messageOf(proxy)).toBe(
      'non-Error value thrown: an object that JSON.stringify and String cannot show (both threw)',
    )
    const hidden = hostileThrownValues[1]?.[1]() as Error
    expect(messageOf(hidden)).toBe('an Error whose message or name getter threw')
    expect(messageOf(Symbol('s'))).toBe('non-Error value thrown: Symbol(s)')
    expect(messageOf(undefined)).toBe('non-Error value thrown: undefined')
    expect(messageOf(10n)).toBe('non-Error value thrown: 10')
    expect(shownValue(Number.NaN)).toBe('NaN')
    expect(shownValue(Number.POSITIVE_INFINITY)).toBe('Infinity')
    expect(shownValue('x'.repeat(600))).toMatch(/^"x{499}… \(602 characters\)$/)
  })

  it('names a record whose coordinates a handler overwrote with anything', () => {
    const [, make] = hostileThrownValues[4] as readonly [string, () => unknown]
    const mangled = { ...at, partitionKey: make() as string, sequenceNumber: 7 as never }
    expect(new RecordHandlerError(mangled, 'x').message).toBe(
      'record 7 sub-record 2 of shardId-000000000006 (partition key an object that JSON.stringify and String cannot show (both threw)): the record handler failed: x',
    )
  })
})

describe('event helpers', () => {
  it('say which event source arrived', () => {
    expect(eventSourceOf({ Records: [{ eventSource: 'aws:sqs' }] })).toBe('aws:sqs')
    expect(eventSourceOf({ Records: [{ EventSource: 'aws:sns' }] })).toBe('aws:sns')
    expect(eventSourceOf({})).toBe('an event without Records')
    expect(eventSourceOf(null)).toBe('null')
    expect(eventSourceOf('{}')).toBe('a string')
  })

  it("take the shard id from eventID, sharing the previous record's string when it matches", () => {
    const previous = shardIdOf('shardId-000000000006:4959')
    expect(previous).toBe('shardId-000000000006')
    expect(shardIdOf('shardId-000000000006:4960', previous)).toBe(previous)
    expect(shardIdOf('shardId-000000000007:4961', previous)).toBe('shardId-000000000007')
    expect(shardIdOf('shardId-000000000006000:1', previous)).toBe('shardId-000000000006000')
    expect(shardIdOf('no-colon')).toBe('no-colon')
    expect(shardIdOf(undefined)).toBe('')
  })

  it('find the batch only where kinesisDecode put it', () => {
    const batch = batchOf(['1'])
    expect(getBatch({ [BATCH]: batch })).toBe(batch)
    expect(getBatch({})).toBeUndefined()
    expect(getBatch('x')).toBeUndefined()
  })
})
