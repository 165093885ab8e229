/**
 * The handler `shardwise demo` runs, deployed with ReportBatchItemFailures and
 * BisectBatchOnFunctionError. The whole Shardwise chain: `kinesisDecode` expands KPL aggregates
 * and gunzips, `jsonParse` checks each message against a zod schema, `eachRecord` runs the
 * partition keys side by side (each key in order), and `partialFailures` sends the poison
 * records (not JSON, not a message) to a dead-letter sink so they never block their shard.
 * The "database" fails some messages once, as a flaky one would: Lambda retries those.
 */
import { createHash } from 'node:crypto'
import middy from '@middy/core'
import { type InferData, jsonParse } from '@shardwise/json-parse'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import { z } from 'zod'

const parse = jsonParse({
  schema: z.object({
    key: z.string(),
    n: z.number().int().nonnegative(),
    format: z.enum(['json', 'kpl', 'gzip']),
  }),
})
type Message = InferData<typeof parse>

/** Per partition key, the message numbers in the order they were saved (repeats included). */
export const saved = new Map<string, number[]>()
/** What the dead-letter sink received: one line per poison record. */
export const deadLetters: string[] = []
const failedOnce = new Set<string>()
let transientFailures = 0

async function save(message: Message): Promise<void> {
  const id = `${message.key}/${message.n}`
  // One message in 40 or so fails the first time it is saved, and succeeds when retried.
  if (!failedOnce.has(id) && createHash('md5').update(id).digest()[0] === 7) {
    failedOnce.add(id)
    transientFailures++
    throw new Error(`transient: the database timed out saving ${id}`)
  }
  const list = saved.get(message.key)
  if (list === undefined) saved.set(message.key, [message.n])
  else list.push(message.n)
}

export const handler = middy(
  eachRecord(parse, (record) => save(record.data), { ordering: 'partitionKey', concurrency: 8 }),
)
  .use(kinesisDecode())
  .use(parse)
  .use(
    partialFailures({
      logger: false,
      onPoison: async (record, error) => {
        deadLetters.push(`${record.shardId} ${record.sequenceNumber}: ${error.name}`)
      },
    }),
  )

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
    `  transient failures: ${transientFailures}, each reported as the checkpoint, delivered again by Lambda and saved`,
    `  poison records sent to the dead-letter sink: ${deadLetters.length}, none blocked its shard`,
    ...deadLetters.map((line) => `    ${line}`),
  ].join('\n')
}
