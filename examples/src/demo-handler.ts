/**
 * The handler `shardwise demo` runs: decodes each record (JSON, gzip, or a KPL aggregate of JSON
 * messages), "saves" each message, and fails some messages once, as a flaky database would.
 * Deployed with ReportBatchItemFailures and BisectBatchOnFunctionError.
 *
 * Until `@shardwise/kinesis-decode` de-aggregates KPL and unzips, and a JSON parser joins the
 * chain, the record handler does both itself (`unpack`); then it shrinks to `save(record.data)`.
 */
import { createHash } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, type KinesisRecord, partialFailures } from '@shardwise/partial-failures'

interface Message {
  key: string
  n: number
  format: string
}

const utf8 = new TextDecoder()

/** Per partition key, the message numbers in the order they were saved (repeats included). */
export const saved = new Map<string, number[]>()
const failedOnce = new Set<string>()
let transientFailures = 0
let poison = 0

async function save(message: Message): Promise<void> {
  const id = `${message.key}/${message.n}`
  // One message in 40 fails the first time it is saved, and succeeds when retried.
  if (!failedOnce.has(id) && createHash('md5').update(id).digest()[0] === 7) {
    failedOnce.add(id)
    transientFailures++
    throw new Error(`transient: the database timed out saving ${id}`)
  }
  const list = saved.get(message.key)
  if (list === undefined) saved.set(message.key, [message.n])
  else list.push(message.n)
}

async function handleRecord(record: KinesisRecord<Uint8Array>): Promise<void> {
  let messages: Message[]
  try {
    messages = unpack(record.data).map((bytes) => JSON.parse(utf8.decode(bytes)) as Message)
  } catch (error) {
    poison++
    throw error
  }
  for (const message of messages) await save(message)
}

export const handler = middy(eachRecord(handleRecord))
  .use(kinesisDecode())
  .use(partialFailures({ logger: false }))

/** What the demo prints after the run. */
export function report(): string {
  let messages = 0
  let repeats = 0
  let outOfOrder = 0
  for (const list of saved.values()) {
    messages += list.length
    const seen = new Set<number>()
    let highest = -1
    for (const n of list) {
      if (seen.has(n)) repeats++
      // A retry goes back to the checkpoint; a message saved before all its key's earlier ones is out of order.
      else if (n < highest) outOfOrder++
      seen.add(n)
      highest = Math.max(highest, n)
    }
  }
  return [
    `  messages saved: ${messages} (${repeats} of them again, after a retry: at-least-once delivery)`,
    `  partition keys: ${saved.size}, messages saved out of order: ${outOfOrder}`,
    `  transient failures: ${transientFailures}, failed decodes of poison records: ${poison}`,
  ].join('\n')
}

const GZIP = [0x1f, 0x8b]
const KPL = [0xf3, 0x89, 0x9a, 0xc2]

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => bytes[i] === b)
}

/** The payloads a record carries: itself, its gunzipped bytes, or a KPL aggregate's records. */
function unpack(data: Uint8Array): Uint8Array[] {
  if (startsWith(data, GZIP)) return [gunzipSync(data)]
  if (startsWith(data, KPL)) return kplRecords(data.subarray(4, data.length - 16))
  return [data]
}

/** The `data` fields of `AggregatedRecord.records` (field 3, each a `Record` with data field 3). */
function kplRecords(message: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const [field, value] of fields(message)) {
    if (field !== 3) continue
    for (const [inner, bytes] of fields(value)) if (inner === 3) out.push(bytes)
  }
  return out
}

/** Length-delimited fields of a protobuf message; varint fields are skipped. */
function* fields(bytes: Uint8Array): Generator<[number, Uint8Array]> {
  let at = 0
  const varint = () => {
    let value = 0
    let shift = 0
    for (;;) {
      const b = bytes[at++]
      if (b === undefined) throw new Error('truncated protobuf')
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return value
      shift += 7
    }
  }
  while (at < bytes.length) {
    const key = varint()
    if ((key & 7) === 0) varint()
    else if ((key & 7) === 2) {
      const length = varint()
      yield [key >>> 3, bytes.subarray(at, at + length)]
      at += length
    } else throw new Error(`unexpected protobuf wire type ${key & 7}`)
  }
}
