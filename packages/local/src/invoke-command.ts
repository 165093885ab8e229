/**
 * `shardwise invoke`: one saved event (AWS's sample, or one a handler saved) through the handler,
 * with a Lambda-like context and timeout; it prints the answer and what Lambda would do with it.
 * The exit status is 0 when Lambda would checkpoint the whole batch, 1 when it would retry.
 */
import { readFile } from 'node:fs/promises'
import type { KinesisStreamRecord } from '@shardwise/core'
import { compareSequenceNumbers, messageOf } from '@shardwise/core'
import {
  type Command,
  type Flags,
  functionResponseTypes,
  text,
  timeoutSeconds,
  UsageError,
} from './cli-args.js'
import { MAX_PAYLOAD_BYTES, type MappingEvent, type PendingRecord } from './event.js'
import { describeAnswer, explainAnswer, pendingOf } from './explain.js'
import { invoke, loadHandler } from './invoke.js'

export const invokeFlags = {
  handler: { type: 'string' },
  event: { type: 'string' },
  timeout: { type: 'string' },
  'function-response-types': { type: 'string', multiple: true },
  'bisect-batch-on-function-error': { type: 'boolean' },
} satisfies Flags

const HELP = `Usage: shardwise invoke --handler <module>[:<export>] --event <event.json> [options]

Runs one Kinesis event (AWS's sample, or one a handler saved) through the handler, with a
Lambda-like context and timeout, prints the answer, and says what Lambda would do with it:
where it checkpoints, what it retries, and what it would drop without ReportBatchItemFailures.
An event with a tumbling window (a \`window\` property) is judged as a window's: its answer
must carry \`state\`.

  --handler <module>[:<export>]   the handler module and its export (default: handler)
  --event <file>                  the event: {"Records": [...]}, one shard, in sequence order;
                                  - reads it from stdin
  --timeout <seconds>             the function's timeout, 1 to 900 (default 3)
  --function-response-types ReportBatchItemFailures
                                  judge the answer as a mapping with the setting does
  --bisect-batch-on-function-error
                                  say how a mapping with bisect splits a failed batch
  -h, --help                      this help

Exit status: 0 when Lambda would checkpoint the whole batch; 1 when it would retry records (a
partial failure, a thrown error, a timeout, an answer it rejects); 2 on a usage mistake.
`

export const invokeCommand: Command = {
  name: 'invoke',
  summary: 'run one saved event through a handler and say what Lambda would do with the answer',
  help: HELP,
  flags: invokeFlags,
  async run(values) {
    const handlerSpec = text(values, 'handler')
    const eventPath = text(values, 'event')
    if (handlerSpec === undefined) throw new UsageError('--handler is required')
    if (eventPath === undefined) throw new UsageError('--event is required')
    const { event, records } = await readEvent(eventPath)
    const seconds = timeoutSeconds(values)
    const handler = await loadHandler(handlerSpec)

    const started = Date.now()
    const { answer } = await invoke(handler, event, {
      functionName: 'local-function',
      region: event.Records[0]?.awsRegion ?? process.env.AWS_REGION ?? 'us-east-1',
      timeoutMs: seconds * 1000,
      memoryLimitInMB: 128,
    })
    const tookMs = Date.now() - started
    const explanation = explainAnswer(answer, records, {
      reportBatchItemFailures: (functionResponseTypes(values) ?? []).length > 0,
      bisectBatchOnFunctionError: values['bisect-batch-on-function-error'] === true,
      tumblingWindow: event.window !== undefined,
    })
    const shards = records.length > 0 ? ` of ${shardOf(records[0] as PendingRecord)}` : ''
    process.stdout.write(
      `Invoked ${handlerSpec} with ${eventPath}: ${records.length} record(s)${shards}, ` +
        `in ${tookMs} ms (timeout ${seconds} s)\n` +
        `Answer: ${describeAnswer(answer)}\n` +
        explanation.lines.map((line) => `${line}\n`).join(''),
    )
    return explanation.outcome === 'success' ? 0 : 1
  },
}

function shardOf(record: PendingRecord): string {
  return record.lambda.eventID.split(':')[0] as string
}

/**
 * Reads a Kinesis event as Lambda sends it and checks what the rules rely on: each record's
 * coordinates, and one shard in sequence order. A mistake names the record and the field.
 */
async function readEvent(path: string): Promise<{ event: MappingEvent; records: PendingRecord[] }> {
  let text: string
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`--event: cannot read ${path}: ${messageOf(error)}`)
  }
  let event: MappingEvent
  try {
    event = JSON.parse(text) as MappingEvent
  } catch (error) {
    throw new UsageError(`--event: ${path} is not JSON: ${messageOf(error)}`)
  }
  if (typeof event !== 'object' || event === null || !Array.isArray(event.Records)) {
    throw new UsageError(`--event: ${path} is no Kinesis event: it needs a Records array`)
  }
  const records = event.Records.map((record, i) => pendingOf(checkRecord(record, i, path)))
  for (let i = 1; i < records.length; i++) {
    const previous = records[i - 1] as PendingRecord
    const record = records[i] as PendingRecord
    if (shardOf(record) !== shardOf(previous)) {
      throw new UsageError(
        `--event: Records[${i}] is of ${shardOf(record)} and Records[${i - 1}] of ${shardOf(previous)}: Lambda sends one shard per batch`,
      )
    }
    if (compareSequenceNumbers(previous.sequenceNumber, record.sequenceNumber) >= 0) {
      throw new UsageError(
        `--event: Records[${i}] (${record.sequenceNumber}) does not come after Records[${i - 1}] (${previous.sequenceNumber}): Lambda sends a batch in sequence order`,
      )
    }
  }
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_PAYLOAD_BYTES) {
    process.stderr.write(
      `shardwise: warning: the event is ${bytes} bytes, over the 6 MB Lambda invokes a function with; the mapping would never send it\n`,
    )
  }
  return { event, records }
}

async function readStdin(): Promise<string> {
  let text = ''
  process.stdin.setEncoding('utf8')
  for await (const chunk of process.stdin) text += chunk
  return text
}

const SEQUENCE_NUMBER = /^(0|[1-9]\d{0,128})$/

function checkRecord(record: unknown, i: number, path: string): KinesisStreamRecord {
  const r = record as Partial<KinesisStreamRecord> | null
  const fail = (what: string) => new UsageError(`--event: ${path} Records[${i}]: ${what}`)
  if (typeof r !== 'object' || r === null || typeof r.kinesis !== 'object' || r.kinesis === null) {
    throw fail('no kinesis object')
  }
  const k = r.kinesis
  if (typeof k.sequenceNumber !== 'string' || !SEQUENCE_NUMBER.test(k.sequenceNumber)) {
    throw fail(`kinesis.sequenceNumber ${JSON.stringify(k.sequenceNumber)} is no sequence number`)
  }
  if (typeof k.partitionKey !== 'string') throw fail('kinesis.partitionKey is missing')
  if (typeof k.data !== 'string') throw fail('kinesis.data (base64) is missing')
  if (typeof k.approximateArrivalTimestamp !== 'number') {
    throw fail('kinesis.approximateArrivalTimestamp (epoch seconds) is missing')
  }
  if (typeof r.eventID !== 'string' || !r.eventID.includes(':')) {
    throw fail('eventID (shardId:sequenceNumber) is missing')
  }
  return r as KinesisStreamRecord
}
