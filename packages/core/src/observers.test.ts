import { describe, expect, it } from 'vitest'
import type { KinesisRecord } from './index.js'
import {
  currentRecord,
  getRecordObservers,
  observedHandler,
  observeRecords,
  type RecordObserver,
  unobserveRecords,
} from './observers.js'

const record = (sequenceNumber: string) =>
  ({ sequenceNumber, partitionKey: `key-${sequenceNumber}` }) as KinesisRecord<unknown>

describe('record observers', () => {
  it('hands the handler back untouched when no one observes, so the loop pays nothing', () => {
    const handler = () => 'done'
    expect(observedHandler(handler, undefined, false)).toBe(handler)
    expect(observedHandler(handler, [], true)).toBe(handler)
  })

  it('keeps the observers on the event, each once', () => {
    const event = {}
    const observer: RecordObserver = {}
    observeRecords(event, observer)
    observeRecords(event, observer)
    expect(getRecordObservers(event)).toEqual([observer])
    expect(JSON.stringify(event)).toBe('{}')
    unobserveRecords(event, observer)
    unobserveRecords(event, observer)
    expect(getRecordObservers(event)).toEqual([])
    expect(getRecordObservers(null)).toBeUndefined()
  })

  it.each([false, true])(
    'calls start, around and end in order, with what the handler threw (overlapping %s)',
    async (overlapping) => {
      const calls: string[] = []
      const observer: RecordObserver = {
        start: (r) => calls.push(`start ${r.sequenceNumber} ${currentRecord()?.sequenceNumber}`),
        around: (r, run) => {
          calls.push(`around ${r.sequenceNumber}`)
          return run()
        },
        end: (r, failed, error) =>
          calls.push(`end ${r.sequenceNumber} ${failed} ${(error as Error | undefined)?.message}`),
      }
      const handler = observedHandler(
        async (r: KinesisRecord<unknown>, _context: unknown, _options: unknown) => {
          calls.push(`run ${currentRecord()?.sequenceNumber}`)
          if (r.sequenceNumber === '2') throw new Error('bad record')
          return 'ok'
        },
        [observer],
        overlapping,
      )
      await expect(handler(record('1'), {}, {})).resolves.toBe('ok')
      await expect(handler(record('2'), {}, {})).rejects.toThrow('bad record')
      expect(calls).toEqual([
        'start 1 1',
        'around 1',
        'run 1',
        'end 1 false undefined',
        'start 2 2',
        'around 2',
        'run 2',
        'end 2 true bad record',
      ])
      expect(currentRecord()).toBeUndefined()
    },
  )

  it('keeps the current record of records run one at a time, gone as soon as each settles', async () => {
    const seen: Array<string | undefined> = []
    const handler = observedHandler(
      async (_r: KinesisRecord<unknown>, fail: boolean, _options: unknown) => {
        seen.push(currentRecord()?.sequenceNumber)
        await new Promise((resolve) => setTimeout(resolve, 1))
        seen.push(currentRecord()?.sequenceNumber)
        if (fail) throw new Error('failed')
      },
      [{}],
      false,
    )
    await handler(record('1'), false, {})
    seen.push(currentRecord()?.sequenceNumber)
    await expect(handler(record('2'), true, {})).rejects.toThrow('failed')
    seen.push(currentRecord()?.sequenceNumber)
    const sync = observedHandler(
      (r: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        seen.push(currentRecord()?.sequenceNumber)
        throw new Error(`sync ${r.sequenceNumber}`)
      },
      [{}],
      false,
    )
    expect(() => sync(record('3'), {}, {})).toThrow('sync 3')
    seen.push(currentRecord()?.sequenceNumber)
    expect(seen).toEqual(['1', '1', undefined, '2', '2', undefined, '3', undefined])
  })

  it('gives each of overlapping records its own current record, across awaits', async () => {
    const seen: string[] = []
    const handler = observedHandler(
      async (r: KinesisRecord<unknown>, wait: number, _options: unknown) => {
        await new Promise((resolve) => setTimeout(resolve, wait))
        seen.push(`${r.sequenceNumber}:${currentRecord()?.sequenceNumber}`)
      },
      [{}],
      true,
    )
    await Promise.all([handler(record('a'), 20, {}), handler(record('b'), 1, {})])
    expect(seen).toEqual(['b:b', 'a:a'])
  })

  it('nests the arounds of several observers, the first outermost', async () => {
    const calls: string[] = []
    const around =
      (name: string): RecordObserver['around'] =>
      (_r, run) => {
        calls.push(`${name} in`)
        const result = run()
        calls.push(`${name} out`)
        return result
      }
    const handler = observedHandler(
      (_r: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        calls.push('run')
      },
      [{ around: around('outer') }, { around: around('inner') }],
      false,
    )
    await handler(record('1'), {}, {})
    expect(calls).toEqual(['outer in', 'inner in', 'run', 'inner out', 'outer out'])
  })
})
