import { describe, expect, it } from 'vitest'
import { type KinesisRecord, placesOf, type RecordBatch, RecordStatus } from './index.js'
import {
  currentCoordinates,
  getRecordObservers,
  observedRun,
  observeRecords,
  type RecordObserver,
  unobserveRecords,
} from './observers.js'

/** A batch of records whose sequence numbers are `sequenceNumbers`, on shard `shardId-1`. */
function batchOf(...sequenceNumbers: string[]): RecordBatch<unknown> {
  const records = sequenceNumbers.map(
    (sequenceNumber) =>
      ({
        sequenceNumber,
        partitionKey: `key-${sequenceNumber}`,
        shardId: 'shardId-1',
        subSequenceNumber: undefined,
      }) as KinesisRecord<unknown>,
  )
  return {
    records,
    places: placesOf(records),
    status: new Uint8Array(records.length).fill(RecordStatus.Pending),
    errors: new Map(),
  }
}

/** Runs records[index] as the record loop does: its turn announced around the handler's call. */
async function runAt<C, O>(
  run: ReturnType<typeof observedRun<unknown, C, O>>,
  batch: RecordBatch<unknown>,
  index: number,
  context: C,
  options: O,
): Promise<unknown> {
  run.turns?.start(index)
  try {
    return await run.handler(batch.records[index] as KinesisRecord<unknown>, context, options)
  } finally {
    run.turns?.end()
  }
}

const sequenceOfCurrent = () => currentCoordinates()?.sequenceNumber

describe('record observers', () => {
  it('hands the handler back untouched, and no turns, when no one observes, so the loop pays nothing', () => {
    const handler = () => 'done'
    const batch = batchOf('1')
    expect(observedRun(handler, batch, undefined, false)).toEqual({ handler, turns: undefined })
    expect(observedRun(handler, batch, [], true)).toEqual({ handler, turns: undefined })
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
        start: (r) => calls.push(`start ${r.sequenceNumber} ${sequenceOfCurrent()}`),
        around: (r, run) => {
          calls.push(`around ${r.sequenceNumber}`)
          return run()
        },
        end: (r, failed, error) =>
          calls.push(`end ${r.sequenceNumber} ${failed} ${(error as Error | undefined)?.message}`),
      }
      const batch = batchOf('1', '2')
      const run = observedRun(
        async (r: KinesisRecord<unknown>, _context: unknown, _options: unknown) => {
          calls.push(`run ${sequenceOfCurrent()}`)
          if (r.sequenceNumber === '2') throw new Error('bad record')
          return 'ok'
        },
        batch,
        [observer],
        overlapping,
      )
      await expect(runAt(run, batch, 0, {}, {})).resolves.toBe('ok')
      await expect(runAt(run, batch, 1, {}, {})).rejects.toThrow('bad record')
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
      expect(currentCoordinates()).toBeUndefined()
    },
  )

  it('keeps the current record of records run one at a time from its start to its end', async () => {
    const seen: Array<string | undefined> = []
    const batch = batchOf('1', '2')
    const run = observedRun(
      async (_r: KinesisRecord<unknown>, fail: boolean, _options: unknown) => {
        seen.push(sequenceOfCurrent())
        await new Promise((resolve) => setTimeout(resolve, 1))
        seen.push(sequenceOfCurrent())
        if (fail) throw new Error('failed')
      },
      batch,
      [{}],
      false,
    )
    await runAt(run, batch, 0, false, {})
    seen.push(sequenceOfCurrent())
    await expect(runAt(run, batch, 1, true, {})).rejects.toThrow('failed')
    seen.push(sequenceOfCurrent())
    expect(seen).toEqual(['1', '1', undefined, '2', '2', undefined])
  })

  it("gives a record's coordinates back after a batch run inside its handler, and none after the loop", async () => {
    const seen: Array<string | undefined> = []
    const outer = batchOf('1', '2')
    const inner = batchOf('9')
    const innerRun = observedRun(
      (_r: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        seen.push(sequenceOfCurrent())
      },
      inner,
      [{}],
      false,
    )
    const outerRun = observedRun(
      async (r: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        seen.push(sequenceOfCurrent())
        if (r.sequenceNumber !== '1') return
        // A chain of its own, run to its end by the record's handler.
        await runAt(innerRun, inner, 0, {}, {})
        innerRun.turns?.finish()
      },
      outer,
      [{}],
      false,
    )
    await runAt(outerRun, outer, 0, {}, {})
    await runAt(outerRun, outer, 1, {}, {})
    expect(seen).toEqual(['1', '9', '2'])
    // A record the timeout gave up on still runs after the loop, with no coordinates.
    outerRun.turns?.start(1)
    outerRun.turns?.finish()
    expect(currentCoordinates()).toBeUndefined()
    outerRun.turns?.start(0)
    expect(sequenceOfCurrent()).toBe('1')
    outerRun.turns?.finish()
  })

  it('reads the coordinates from the batch as decoded, not from the record the handler got', async () => {
    const batch = batchOf('1')
    const run = observedRun(
      (record: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        Object.assign(record, { sequenceNumber: '999', partitionKey: 'mine', shardId: 'x' })
        return currentCoordinates()
      },
      batch,
      [{}],
      false,
    )
    await expect(runAt(run, batch, 0, {}, {})).resolves.toEqual({
      shardId: 'shardId-1',
      sequenceNumber: '1',
      subSequenceNumber: undefined,
      partitionKey: 'key-1',
    })
  })

  it('gives each of overlapping records its own current record, across awaits', async () => {
    const seen: string[] = []
    const batch = batchOf('a', 'b')
    const run = observedRun(
      async (r: KinesisRecord<unknown>, wait: number, _options: unknown) => {
        await new Promise((resolve) => setTimeout(resolve, wait))
        seen.push(`${r.sequenceNumber}:${sequenceOfCurrent()}`)
      },
      batch,
      [{}],
      true,
    )
    await Promise.all([runAt(run, batch, 0, 20, {}), runAt(run, batch, 1, 1, {})])
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
    const batch = batchOf('1')
    const run = observedRun(
      (_r: KinesisRecord<unknown>, _c: unknown, _o: unknown) => {
        calls.push('run')
      },
      batch,
      [{ around: around('outer') }, { around: around('inner') }],
      false,
    )
    await runAt(run, batch, 0, {}, {})
    expect(calls).toEqual(['outer in', 'inner in', 'run', 'inner out', 'outer out'])
  })
})
