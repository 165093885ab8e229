import type { KinesisStreamEvent } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { type HandlerFile, handlerFiles, loadHandler, REFERENCE } from './handlers.js'
import { checkpointOf, collector, lambdaContext, type Output } from './output.js'
import { workloads } from './workloads.js'

function fileOf(id: string): HandlerFile {
  const file = handlerFiles().find((f) => f.id === id)
  if (file === undefined) throw new Error(`no handler ${id}`)
  return file
}

async function outputOf(id: string, event: KinesisStreamEvent): Promise<Output> {
  const { sink, values } = collector()
  const response = await (await loadHandler(fileOf(id))).make(sink)(event, lambdaContext())
  // JSON round trip: avsc hands on instances of its record classes, the others plain objects.
  return { values: JSON.parse(JSON.stringify(values)), checkpoint: checkpointOf(response) }
}

/** The last record replaced by bytes that are no valid payload of any format. */
function withBadLastRecord(event: KinesisStreamEvent): KinesisStreamEvent {
  const copy = structuredClone(event)
  const last = copy.Records.at(-1)
  if (last) last.kinesis.data = Buffer.from('not a payload {').toString('base64')
  return copy
}

const formats = [...new Set(workloads.map((w) => w.format))]

describe.each(formats)('%s: every path gives the reference output', (format) => {
  const files = handlerFiles(format)
  const small = workloads.find((w) => w.format === format)?.small as () => KinesisStreamEvent

  it('has a hand-written reference and something to compare with it', () => {
    expect(files[0]?.path).toBe(REFERENCE)
    expect(files.length).toBeGreaterThan(1)
  })

  it.each(files.map((f) => f.id))('%s on a small batch', async (id) => {
    const expected = await outputOf(`${format}.${REFERENCE}`, small())
    expect(expected.values.length).toBeGreaterThan(0)
    expect(expected.checkpoint).toBeNull()
    expect(await outputOf(id, small())).toEqual(expected)
  })

  it.each(files.map((f) => f.id))('%s with a bad last record', async (id) => {
    const event = withBadLastRecord(small())
    const good = await outputOf(`${format}.${REFERENCE}`, small())
    const ofLast = await outputOf(`${format}.${REFERENCE}`, { Records: small().Records.slice(-1) })
    const output = await outputOf(id, event)
    if ((await loadHandler(fileOf(id))).lenient === undefined) {
      expect(output.checkpoint).toBe(event.Records.at(-1)?.kinesis.sequenceNumber)
      // Every record before the bad one was handled, as the reference handles it.
      expect(output.values).toEqual(good.values.slice(0, good.values.length - ofLast.values.length))
    } else {
      // The peer hands the bad payload on instead of failing the record: say so, and check it.
      expect(output.checkpoint).toBeNull()
      expect(output.values.length).toBe(good.values.length)
    }
  })
})
