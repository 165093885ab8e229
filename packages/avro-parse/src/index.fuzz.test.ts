/**
 * Properties over random values and bytes: avroParse decodes exactly what avsc encodes, fails
 * every truncated or padded datum alone, and never lets random bytes out of the middleware as
 * anything but a failed record or a value the schema accepts, nor spends long on them.
 */
import { getBatch, ParseError, type RecordBatch } from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import avro from 'avsc'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { shardEvent } from './events.testkit.js'
import { type AvroParser, avroParse } from './index.js'

// CPU-bound property tests: a minute or two at a load average of 40 on 2 cores, where every
// package's tests run at once beside other work; the number of runs stays as it is.
const BUSY_MACHINE_MS = 600_000

const decode = kinesisDecode()
const long = avro.Type.forSchema('long')

/** kinesisDecode and the parser, called directly; an inline schema never needs a promise. */
function decoded<T>(parser: AvroParser<T>, payloads: Uint8Array[]) {
  const event = shardEvent(payloads)
  decode.before?.({ event } as never)
  expect(parser.before?.({ event } as never)).toBeUndefined()
  const batch = getBatch<T>(event) as RecordBatch<T>
  return { errors: batch.errors, outcomes: batch.records.map((record) => record.data) }
}

const Order = avro.Type.forSchema({
  type: 'record',
  name: 'Order',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'quantity', type: 'int' },
    { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID'] } },
    { name: 'coupon', type: ['null', 'string', 'long'] },
    { name: 'weight', type: 'float' },
    { name: 'lines', type: { type: 'array', items: { type: 'map', values: ['null', 'int'] } } },
  ],
})

describe('avroParse properties', () => {
  const Reading = avro.Type.forSchema({
    type: 'record',
    name: 'Reading',
    fields: [
      { name: 'sensor', type: 'string' },
      { name: 'values', type: { type: 'array', items: 'double' } },
      { name: 'tags', type: { type: 'map', values: 'string' } },
      { name: 'note', type: ['null', 'string'], default: null },
      { name: 'raw', type: 'bytes' },
    ],
  })
  const reading = fc.record({
    sensor: fc.string(),
    values: fc.array(fc.double({ noNaN: true })),
    tags: fc.dictionary(fc.string(), fc.string()),
    note: fc.option(fc.string(), { nil: null }),
    raw: fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes)),
  })

  it('decodes what avsc encodes, and fails every cut or padded datum alone', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    const parse = avroParse({ schema: Reading.schema() })
    fc.assert(
      fc.property(
        fc.array(fc.tuple(reading, fc.constantFrom('whole', 'cut', 'padded')), {
          minLength: 1,
          maxLength: 20,
        }),
        (cases) => {
          const payloads = cases.map(([value, shape]) => {
            const bytes = Reading.toBuffer(value)
            if (shape === 'cut') return bytes.subarray(0, bytes.length - 1)
            if (shape === 'padded') return Buffer.concat([bytes, Buffer.of(0)])
            return bytes
          })
          const { outcomes, errors } = decoded(parse, payloads)
          cases.forEach(([value, shape], i) => {
            const proto = Object.keys(value.tags).includes('__proto__')
            if (shape === 'whole' && !proto) expect({ ...(outcomes[i] as object) }).toEqual(value)
            else expect(errors.get(i)).toBeInstanceOf(ParseError)
          })
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('never throws out of the middleware on random bytes', { timeout: BUSY_MACHINE_MS }, () => {
    const parse = avroParse({ schema: Order.schema() })
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 20 }),
        (payloads) => {
          const { errors, outcomes } = decoded(parse, payloads)
          payloads.forEach((_, i) => {
            if (!errors.has(i)) expect(Order.isValid(outcomes[i])).toBe(true)
          })
        },
      ),
      { numRuns: 5000 },
    )
  })

  it('reads any block count a datum can hold, and refuses the rest at once', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    const Nulls = avro.Type.forSchema({ type: 'array', items: 'null' })
    const parse = avroParse({ schema: Nulls.schema() })
    fc.assert(
      fc.property(fc.oneof(fc.nat(1_100_000), fc.integer({ min: 0, max: 2 ** 40 })), (count) => {
        // One block of `count` nulls, then the end of the blocks (a count of 0 is the end itself).
        const datum =
          count === 0 ? Buffer.of(0) : Buffer.concat([long.toBuffer(count), Buffer.of(0)])
        const { errors, outcomes } = decoded(parse, [datum])
        if (count <= 1_000_000 + datum.length) expect(outcomes[0]).toHaveLength(count)
        else expect(errors.get(0)?.message).toMatch(/a block claims \d+ items, more than a datum/)
      }),
      { numRuns: 300 },
    )
  })

  it('skips any block count a datum can hold in a field the readerSchema drops, and refuses the rest at once', {
    timeout: BUSY_MACHINE_MS,
  }, () => {
    const writer = {
      type: 'record',
      name: 'Tagged',
      fields: [{ name: 'tags', type: { type: 'array', items: 'null' } }],
    }
    const parse = avroParse({
      schema: writer,
      readerSchema: { type: 'record', name: 'Tagged', fields: [] },
    })
    // avsc alone skips 2 ** 27 nulls in a tenth of a second: a regression fails, and hangs nothing.
    const counts = fc.oneof(fc.nat(1_100_000), fc.integer({ min: 0, max: 2 ** 27 }))
    fc.assert(
      fc.property(counts, fc.boolean(), (count, sized) => {
        // One block of `count` nulls (with a negative count, then its size: 0 bytes), then the end.
        const block = sized ? [long.toBuffer(-count), Buffer.of(0)] : [long.toBuffer(count)]
        const datum = count === 0 ? Buffer.of(0) : Buffer.concat([...block, Buffer.of(0)])
        const { errors, outcomes } = decoded(parse, [datum])
        if (count <= 1_000_000 + datum.length) {
          expect(errors.get(0)).toBeUndefined()
          expect({ ...(outcomes[0] as object) }).toEqual({})
        } else {
          expect(errors.get(0)?.message).toMatch(/a block claims \d+ items, more than a datum/)
        }
      }),
      { numRuns: 300 },
    )
  })
})
