/**
 * `shardwise redrive`: the records an on-failure destination names (redrive.ts reads them back
 * from the stream), run through a handler again or put on a stream. It reports what it found and
 * what has expired, and runs each record once.
 */
import { readFile } from 'node:fs/promises'
import type { _Record } from '@aws-sdk/client-kinesis'
import { messageOf } from '@shardwise/core'
import { doneCount, judge } from '@shardwise/testing'
import {
  type Command,
  type Flags,
  functionResponseTypes,
  text,
  timeoutSeconds,
  UsageError,
} from './cli-args.js'
import {
  buildEvent,
  EVENT_OVERHEAD_BYTES,
  MAX_PAYLOAD_BYTES,
  type PendingRecord,
  type RecordSource,
  SEPARATOR_BYTES,
  toPendingRecord,
} from './event.js'
import { type FunctionIdentity, invoke, type KinesisHandler, loadHandler } from './invoke.js'
import { produce } from './produce.js'
import {
  type FoundBatch,
  type OnFailureDocument,
  parseDocuments,
  readBatches,
  streamOf,
} from './redrive.js'
import { kinesisClient } from './shards.js'
import { table } from './summary.js'

export const redriveFlags = {
  from: { type: 'string' },
  handler: { type: 'string' },
  'to-stream': { type: 'string' },
  stream: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  timeout: { type: 'string' },
  'function-response-types': { type: 'string', multiple: true },
} satisfies Flags

const HELP = `Usage: shardwise redrive --from <file> (--handler <module>[:<export>] | --to-stream <name>) [options]

Reads again the records that on-failure documents name (each KinesisBatchInfo: shard, first and
last sequence number) while they are still in the stream, and runs them through a handler or
puts them on a stream. It reports, per document, what it found and what has expired (past the
stream's retention), and never runs a record twice in one redrive, even when documents overlap.

  --from <file>                   the documents: the JSON lines \`shardwise run --on-failure\`
                                  writes, one document or an array of them, or SQS messages saved
                                  as JSON (\`aws sqs receive-message\` output, or its Messages),
                                  each Body a document or an SNS notification carrying one
  --handler <module>[:<export>]   invoke this handler with each batch, as Lambda builds the event
  --to-stream <name>              or put the records on this stream (partition key and data)
  --stream <name>                 the stream to read; default: the one in each document's streamArn
  --endpoint <url>                a Kinesis endpoint (kinesalite, LocalStack); without it, AWS
  --region <region>               default: the region in the documents' streamArn
  --timeout <seconds>             the handler's timeout, 1 to 900 (default 3)
  --function-response-types ReportBatchItemFailures
                                  read batchItemFailures from the handler's answer
  -h, --help                      this help

Each batch is invoked once, not retried. Exit status: 0 when every record named was found and
handled (or put); 1 when some have expired or failed again; 2 on a usage mistake.
`

export const redriveCommand: Command = {
  name: 'redrive',
  summary: 'run again, or put back on a stream, the records on-failure documents name',
  help: HELP,
  flags: redriveFlags,
  async run(values, signal) {
    const from = text(values, 'from')
    const handlerSpec = text(values, 'handler')
    const toStream = text(values, 'to-stream')
    if (from === undefined) throw new UsageError('--from is required')
    if ((handlerSpec === undefined) === (toStream === undefined)) {
      throw new UsageError(
        'give one of --handler (to run the records) and --to-stream (to put them)',
      )
    }
    const documents = await readDocuments(from)
    const handler = handlerSpec === undefined ? undefined : await loadHandler(handlerSpec)
    const first = streamOf(documents[0]?.info.streamArn ?? '')
    const region = text(values, 'region') ?? first?.region ?? process.env.AWS_REGION ?? 'us-east-1'
    const override = text(values, 'stream')
    const streamName = (doc: OnFailureDocument) => {
      const name = override ?? streamOf(doc.info.streamArn)?.name
      if (name === undefined) {
        throw new UsageError(
          `${doc.where}: streamArn ${doc.info.streamArn} names no stream; pass --stream`,
        )
      }
      return name
    }
    const client = kinesisClient(text(values, 'endpoint'), region)
    try {
      const batches = await readBatches(client, documents, streamName)
      const report = new Report(from, documents.length)
      const identity: FunctionIdentity = {
        functionName: 'local-function',
        region,
        timeoutMs: timeoutSeconds(values) * 1000,
        memoryLimitInMB: 128,
      }
      const reportFailures = (functionResponseTypes(values) ?? []).length > 0
      for (const batch of batches) {
        if (signal.aborted) {
          report.line(batch, 'not run: stopped')
          continue
        }
        if (batch.records.length === 0) {
          report.line(batch, 'nothing to run')
        } else if (handler !== undefined) {
          const outcome = await runBatch(handler, batch, identity, reportFailures)
          report.invoked(batch, outcome)
        } else {
          await produce(
            { client, stream: toStream as string },
            batch.records.map((r) => ({
              partitionKey: r.PartitionKey ?? '',
              data: r.Data ?? new Uint8Array(0),
            })),
          )
          report.put(batch, toStream as string)
        }
      }
      process.stdout.write(report.text(handler !== undefined ? undefined : toStream))
      return report.ok() ? 0 : 1
    } finally {
      client.destroy()
    }
  },
}

async function readDocuments(path: string): Promise<OnFailureDocument[]> {
  let content: string
  try {
    content = await readFile(path, 'utf8')
  } catch (error) {
    throw new UsageError(`--from: cannot read ${path}: ${messageOf(error)}`)
  }
  let documents: OnFailureDocument[]
  try {
    documents = parseDocuments(content, path)
  } catch (error) {
    throw new UsageError(`--from: ${messageOf(error)}`)
  }
  if (documents.length === 0) throw new UsageError(`--from: ${path} holds no document`)
  return documents
}

interface Outcome {
  invocations: number
  succeeded: number
  failed: number
  /** The first record that failed, and why. */
  failure: { sequenceNumber: string; reason: string } | undefined
}

/**
 * Invokes the handler with the batch's records, in events within Lambda's 6 MB; after a failure
 * the rest of the batch is not run, as Lambda would not run records after its checkpoint.
 */
async function runBatch(
  handler: KinesisHandler,
  batch: FoundBatch,
  identity: FunctionIdentity,
  reportBatchItemFailures: boolean,
): Promise<Outcome> {
  const { info } = batch.document
  const source: RecordSource = {
    shardId: info.shardId,
    streamArn: info.streamArn,
    region: identity.region,
    // The account of the function that failed the batch, as Lambda's event carried it.
    invokeIdentityArn: `arn:aws:iam::${accountOf(batch.document.functionArn) ?? '000000000000'}:role/${identity.functionName}-role`,
  }
  const now = Date.now()
  const pending = batch.records.map((r: _Record) => toPendingRecord(r, source, now))
  const outcome: Outcome = { invocations: 0, succeeded: 0, failed: 0, failure: undefined }
  for (const chunk of chunks(pending)) {
    if (outcome.failure !== undefined) {
      outcome.failed += chunk.length
      continue
    }
    const { answer } = await invoke(handler, buildEvent(chunk, undefined), {
      ...identity,
      arn: batch.document.functionArn ?? identity.arn,
    })
    outcome.invocations++
    const verdict = judge(answer, chunk, { reportBatchItemFailures, tumblingWindow: false })
    const done = doneCount(verdict, chunk.length)
    outcome.succeeded += done
    outcome.failed += chunk.length - done
    if (done < chunk.length) {
      outcome.failure = {
        sequenceNumber: (chunk[done] as PendingRecord).sequenceNumber,
        reason: verdict.kind === 'failure' ? verdict.reason : 'reported in batchItemFailures',
      }
    }
  }
  return outcome
}

/** The account in `arn:aws:lambda:<region>:<account>:function:<name>`. */
function accountOf(arn: string | undefined): string | undefined {
  const account = arn?.split(':')[4]
  return account !== undefined && /^\d{12}$/.test(account) ? account : undefined
}

/** Events of at most 10,000 records and 6 MB, as Lambda forms them. */
function chunks(records: PendingRecord[]): PendingRecord[][] {
  const out: PendingRecord[][] = []
  let current: PendingRecord[] = []
  let bytes = EVENT_OVERHEAD_BYTES
  for (const record of records) {
    const added = record.bytes + (current.length > 0 ? SEPARATOR_BYTES : 0)
    if (current.length > 0 && (current.length === 10_000 || bytes + added > MAX_PAYLOAD_BYTES)) {
      out.push(current)
      current = []
      bytes = EVENT_OVERHEAD_BYTES
    }
    current.push(record)
    bytes += record.bytes + (current.length > 1 ? SEPARATOR_BYTES : 0)
  }
  if (current.length > 0) out.push(current)
  return out
}

/** The lines per document and the summary. */
class Report {
  private readonly lines: string[] = []
  private named = 0
  private found = 0
  private expired = 0
  private alreadyRead = 0
  private invocations = 0
  private succeeded = 0
  private failed = 0
  private putCount = 0

  constructor(
    private readonly file: string,
    private readonly documents: number,
  ) {}

  line(batch: FoundBatch, outcome: string): void {
    const { info, condition } = batch.document
    this.named += info.batchSize ?? batch.records.length + batch.alreadyRead
    this.found += batch.records.length + batch.alreadyRead
    this.expired += batch.expired
    this.alreadyRead += batch.alreadyRead
    const range =
      info.startSequenceNumber === info.endSequenceNumber
        ? info.startSequenceNumber
        : `${info.startSequenceNumber} to ${info.endSequenceNumber}`
    const parts = [`found ${batch.records.length + batch.alreadyRead}`]
    if (batch.alreadyRead > 0) parts.push(`${batch.alreadyRead} already run in this redrive`)
    if (batch.expired > 0) parts.push(`${batch.expired} expired (${batch.expiredReason})`)
    const what = [`${info.batchSize ?? '?'} record(s)`, condition].filter(Boolean).join(', ')
    this.lines.push(
      `  ${batch.document.where}: ${info.shardId} ${range} (${what}): ${parts.join(', ')}; ${outcome}`,
    )
  }

  invoked(batch: FoundBatch, outcome: Outcome): void {
    this.invocations += outcome.invocations
    this.succeeded += outcome.succeeded
    this.failed += outcome.failed
    const result =
      outcome.failure === undefined
        ? `invoked: ${outcome.succeeded} succeeded`
        : `invoked: ${outcome.succeeded} succeeded, ${outcome.failed} failed again from ${outcome.failure.sequenceNumber} (${outcome.failure.reason})`
    this.line(batch, result)
  }

  put(batch: FoundBatch, stream: string): void {
    this.putCount += batch.records.length
    this.line(batch, `put ${batch.records.length} on ${stream}`)
  }

  ok(): boolean {
    return this.expired === 0 && this.failed === 0
  }

  text(toStream: string | undefined): string {
    const rows: Array<[string, string]> = [
      ['documents', String(this.documents)],
      ['records named', String(this.named)],
      ['records found', String(this.found)],
      ['records expired', `${this.expired} (no longer in the stream)`],
      ['records already run', `${this.alreadyRead} (named by an earlier document, run once)`],
    ]
    if (toStream === undefined) {
      rows.push(['invocations', String(this.invocations)])
      rows.push(['records succeeded', String(this.succeeded)])
      rows.push(['records failed again', String(this.failed)])
    } else {
      rows.push([`records put on ${toStream}`, String(this.putCount)])
    }
    return `Redrive of ${this.file}\n${this.lines.join('\n')}\n${table('Summary', rows)}`
  }
}
