/**
 * `decodeEvent` as the README shows it, in a handler without middy: everything it needs comes
 * from this package, none of it from `@shardwise/core`, which is internal.
 */

import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda'
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  DecodeError,
  decodeEvent,
  type KinesisRecord,
  type RecordBatch,
  RecordStatus,
} from './index.js'
import { base64Record, kinesisEvent, lambdaRecord, peerAggregates, text } from './kpl.fixture.js'

describe('decodeEvent without middy', () => {
  it('returns a RecordBatch of Uint8Array records, typed with what this package exports', () => {
    expectTypeOf(decodeEvent).returns.toEqualTypeOf<RecordBatch<Uint8Array>>()
    expectTypeOf<RecordBatch<Uint8Array>['records']>().toEqualTypeOf<KinesisRecord<Uint8Array>[]>()
    expectTypeOf<KinesisRecord<Uint8Array>['data']>().toEqualTypeOf<Uint8Array>()
    expectTypeOf<KinesisRecord['subSequenceNumber']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<RecordBatch['status'][number]>().toEqualTypeOf<number>()
    expectTypeOf(RecordStatus.Failed).toEqualTypeOf<2>()
  })

  it('runs the README handler: poison to a dead-letter list, the carrier reported for a retry', async () => {
    const saved: string[] = []
    const deadLetters: { bytes: Uint8Array; error: unknown }[] = []
    const save = async (record: KinesisRecord<Uint8Array>): Promise<void> => {
      if (text(record.data) === 'crash') throw new Error('database down')
      saved.push(`${record.partitionKey}:${text(record.data)}`)
    }
    const deadLetter = async (bytes: Uint8Array, error: unknown): Promise<void> => {
      deadLetters.push({ bytes, error })
    }

    // The README's sample, as written there.
    async function handler(event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
      const { records, status, errors } = decodeEvent(event)
      for (const [i, record] of records.entries()) {
        if (status[i] === RecordStatus.Failed) {
          const error = errors.get(i)
          if (!error?.retryable) {
            await deadLetter(record.rawData, error)
            continue
          }
        } else {
          try {
            await save(record)
            continue
          } catch {}
        }
        // Lambda retries from this record on; a KPL user record names its carrier.
        return { batchItemFailures: [{ itemIdentifier: record.sequenceNumber }] }
      }
      return { batchItemFailures: [] }
    }

    const aggregate = lambdaRecord(
      peerAggregates([
        { partitionKey: 'a', data: Buffer.from('one') },
        { partitionKey: 'b', data: Buffer.from('crash') },
        { partitionKey: 'c', data: Buffer.from('three') },
      ])[0] as Buffer,
    )
    const response = await handler(
      kinesisEvent(
        lambdaRecord('plain'),
        base64Record('not base64!'),
        aggregate,
        lambdaRecord('x'),
      ),
    )
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: aggregate.kinesis.sequenceNumber }],
    })
    expect(saved).toEqual(['carrier-key:plain', 'a:one'])
    expect(deadLetters).toHaveLength(1)
    expect(deadLetters[0]?.error).toBeInstanceOf(DecodeError)
    expect(text(deadLetters[0]?.bytes as Uint8Array)).toBe('not base64!')
  })
})
