/**
 * Properties over random payloads: jsonParse hands over exactly what JSON.parse reads from valid
 * UTF-8, fails exactly the rest (and the prototype-polluting values) alone, and with a schema
 * fails exactly the values the schema rejects.
 */
import {
  getBatch,
  ParseError,
  PENDING,
  type RecordBatch,
  SUCCEEDED,
  ValidationError,
} from '@shardwise/core'
import { DEFER_FROM, kinesisDecode } from '@shardwise/kinesis-decode'
import { kinesisEvent } from '@shardwise/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { type JsonParser, jsonParse } from './index.js'

// CPU-bound property tests: a minute or two at a load average of 40 on 2 cores, where every
// package's tests run at once beside other work; the number of runs stays as it is.
const BUSY_MACHINE_MS = 600_000

// Random bytes may start with the gzip or zstd magic; this is about jsonParse, so they stay bytes.
const decode = kinesisDecode({ decompress: false, deaggregate: false })

/** kinesisDecode and the parser, called directly: the batch as the record handler would get it. */
function parsed<T>(parser: JsonParser<T>, payloads: Uint8Array[]): RecordBatch<T> {
  const event = kinesisEvent(payloads.map((data) => ({ data })))
  decode.before?.({ event } as never)
  const pending = parser.before?.({ event } as never)
  expect(pending).toBeUndefined()
  return getBatch<T>(event) as RecordBatch<T>
}

/** The oracle: a `__proto__` key, or a `constructor` key holding a `prototype` key, anywhere. */
function pollutes(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (Object.hasOwn(value, '__proto__')) return true
  const ctor = (value as { constructor?: unknown }).constructor
  if (Object.hasOwn(value, 'constructor') && typeof ctor === 'object' && ctor !== null) {
    if (Object.hasOwn(ctor, 'prototype')) return true
  }
  return Object.values(value).some(pollutes)
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function jsonOf(bytes: Uint8Array): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(strictUtf8.decode(bytes)) }
  } catch {
    return undefined
  }
}

/**
 * Record `i` holds what JSON.parse reads from `bytes`, or failed with a ParseError where
 * JSON.parse refuses them or their value could pollute; true when it holds a value.
 */
function expectParsedAsJsonParseReads(batch: RecordBatch, i: number, bytes: Uint8Array): boolean {
  const expected = jsonOf(bytes)
  if (expected === undefined || pollutes(expected.value)) {
    expect(batch.errors.get(i)).toBeInstanceOf(ParseError)
    return false
  }
  expect(batch.errors.has(i)).toBe(false)
  expect(batch.records[i]?.data).toEqual(expected.value)
  return true
}

describe('jsonParse properties', () => {
  it('hands over exactly what JSON.parse reads, and fails exactly what it refuses', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    const payload = fc.oneof(
      fc.json().map((text) => Buffer.from(text)),
      fc.uint8Array({ maxLength: 40 }),
      fc.string({ unit: 'binary' }).map((text) => Buffer.from(text)),
    )
    const parse = jsonParse()
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 30 }), (payloads) => {
        const batch = parsed(parse, payloads)
        payloads.forEach((bytes, i) => {
          expectParsedAsJsonParseReads(batch, i, bytes)
        })
      }),
      { numRuns: 2000 },
    )
  })

  it('hands over at their turn exactly what JSON.parse reads from records decoded at their turn, and keeps no value once they succeeded', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    // Trailing white space leaves a value as it is and makes its record large.
    const large = (DEFER_FROM / 4) * 3
    const payload = fc.oneof(
      fc.json().map((text) => Buffer.from(text)),
      fc.json().map((text) => Buffer.from(text.padEnd(large + (text.length % 7), ' '))),
      fc.uint8Array({ minLength: large, maxLength: large + 3 }),
      fc.json().map((text) => Buffer.from(`${' '.repeat(large)}${text}}`)),
    )
    const parse = jsonParse()
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 8 }), (payloads) => {
        const batch = parsed(parse, payloads)
        // The loop's part, in shard order: each record's turn, then its success.
        payloads.forEach((bytes, i) => {
          expect(batch.deferred?.has(i) ?? false).toBe(bytes.length >= large)
          expect(batch.turnSteps?.at(i)).toBeUndefined()
          if (expectParsedAsJsonParseReads(batch, i, bytes)) {
            expect(batch.status[i]).toBe(PENDING)
            batch.status[i] = SUCCEEDED
          }
        })
        batch.turnSteps?.stop()
        batch.records.forEach((record, i) => {
          if (batch.deferred?.has(i) && batch.status[i] === SUCCEEDED) {
            expect(Buffer.from(record.data as Uint8Array).equals(payloads[i] as Uint8Array)).toBe(
              true,
            )
          }
        })
      }),
      { numRuns: 300 },
    )
  })

  it('fails exactly the records the schema rejects, and hands over its output for the rest', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    const Reading = z.object({
      sensor: z.string().min(1),
      value: z.number().finite(),
      unit: z.enum(['C', 'F']).default('C'),
    })
    const candidate = fc.record(
      {
        sensor: fc.oneof(fc.string(), fc.integer()),
        value: fc.oneof(fc.double(), fc.string()),
        unit: fc.constantFrom('C', 'F', 'K'),
      },
      { requiredKeys: ['sensor', 'value'] },
    )
    const parse = jsonParse({ schema: Reading })
    fc.assert(
      fc.property(fc.array(candidate, { minLength: 1, maxLength: 30 }), (values) => {
        const payloads = values.map((value) => Buffer.from(JSON.stringify(value)))
        const batch = parsed(parse, payloads)
        payloads.forEach((bytes, i) => {
          const expected = Reading.safeParse(jsonOf(bytes)?.value)
          if (expected.success) expect(batch.records[i]?.data).toEqual(expected.data)
          else expect(batch.errors.get(i)).toBeInstanceOf(ValidationError)
        })
      }),
      { numRuns: 2000 },
    )
  })
})
