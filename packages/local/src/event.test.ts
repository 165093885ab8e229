import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { buildEvent, toPendingRecord } from './event.js'
import { resolveSettings } from './settings.js'
import { records, source } from './test-helpers.js'

const sample = JSON.parse(
  readFileSync(new URL('../../../examples/events/kinesis-sample.json', import.meta.url), 'utf8'),
)

describe('buildEvent', () => {
  it('builds exactly the AWS sample event from the records GetRecords returns', () => {
    const read = [
      [
        '49590338271490256608559692538361571095921575989136588898',
        'Hello, this is a test.',
        1545084650987,
      ],
      [
        '49590338271490256608559692540925702759324208523137515618',
        'This is only a test.',
        1545084711166,
      ],
    ] as const
    const pending = read.map(([seq, text, ms]) =>
      toPendingRecord(
        {
          SequenceNumber: seq,
          Data: new TextEncoder().encode(text),
          ApproximateArrivalTimestamp: new Date(ms),
          PartitionKey: '1',
        },
        source,
        0,
      ),
    )
    expect(buildEvent(pending, undefined)).toEqual(sample)
    expect(pending[0]?.bytes).toBe(JSON.stringify(sample.Records[0]).length)
  })

  it('gives every invocation its own copy, so a handler cannot change a retry', () => {
    const pending = records(1)
    const first = buildEvent(pending, undefined)
    ;(first.Records[0] as { kinesis: { data: string } }).kinesis.data = 'changed'
    expect(buildEvent(pending, undefined).Records[0]?.kinesis.data).not.toBe('changed')
  })

  it('adds the tumbling-window properties beside Records', () => {
    const event = buildEvent(records(1), {
      window: { start: '2020-12-09T07:04:00.000Z', end: '2020-12-09T07:06:00.000Z' },
      state: { '1': 282 },
      shardId: source.shardId,
      eventSourceARN: source.streamArn,
      isFinalInvokeForWindow: false,
      isWindowTerminatedEarly: false,
    })
    expect(Object.keys(event)).toEqual([
      'Records',
      'window',
      'state',
      'shardId',
      'eventSourceARN',
      'isFinalInvokeForWindow',
      'isWindowTerminatedEarly',
    ])
  })
})

describe('resolveSettings: the bounds of CreateEventSourceMapping', () => {
  it('applies Lambda defaults', () => {
    expect(resolveSettings(undefined)).toEqual({
      batchSize: 100,
      maximumBatchingWindowInSeconds: 0,
      startingPosition: 'TRIM_HORIZON',
      startingPositionTimestamp: undefined,
      reportBatchItemFailures: false,
      bisectBatchOnFunctionError: false,
      maximumRetryAttempts: -1,
      maximumRecordAgeInSeconds: -1,
      parallelizationFactor: 1,
      tumblingWindowInSeconds: 0,
    })
  })

  it.each([
    [{ batchSize: 0 }],
    [{ batchSize: 10_001 }],
    [{ maximumBatchingWindowInSeconds: 301 }],
    [{ maximumRetryAttempts: -2 }],
    [{ maximumRecordAgeInSeconds: 59 }],
    [{ maximumRecordAgeInSeconds: 604_801 }],
    [{ parallelizationFactor: 11 }],
    [{ tumblingWindowInSeconds: 901 }],
    [{ startingPosition: 'AT_TIMESTAMP' }],
    [{ startingPositionTimestamp: 1 }],
    [{ batchsize: 10 }],
  ])('refuses %j with an error naming the package', (settings) => {
    expect(() => resolveSettings(settings as never)).toThrow(/@shardwise\/local/)
  })
})
