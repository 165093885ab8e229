/**
 * Redrive: the records an on-failure destination names, read back from the stream. Lambda sends
 * the destination only metadata (`KinesisBatchInfo`: shard, first and last sequence number); the
 * records stay in the stream until its retention ends, so they are read again with
 * `GetShardIterator AT_SEQUENCE_NUMBER` while they are there, and the rest reported as expired.
 * A record named by two documents (overlapping retries, a message received twice) is returned
 * once.
 */
import {
  type _Record,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis'
import { compareSequenceNumbers, messageOf } from '@shardwise/core'
import type { InvocationRecord } from './destination.js'

/** What redrive needs of a document: where its batch was. */
export type BatchInfo = InvocationRecord['KinesisBatchInfo']

export interface OnFailureDocument {
  /** Where it was found: `failed.jsonl:3`, `messages.json Messages[2]`. */
  where: string
  info: BatchInfo
  condition: string | undefined
  /** The function that failed the batch (`requestContext.functionArn`), when the document says. */
  functionArn: string | undefined
}

/** A mistake in the documents, naming the line or message. */
export class DocumentError extends Error {
  override name = 'DocumentError'
}

/**
 * Reads on-failure documents from a file's text: JSON lines (what `--on-failure` writes), one
 * document, an array of them, or SQS messages saved as JSON (`aws sqs receive-message` output, or
 * its `Messages`), each `Body` a document or an SNS notification carrying one in `Message`.
 */
export function parseDocuments(text: string, file: string): OnFailureDocument[] {
  let whole: unknown
  try {
    whole = JSON.parse(text)
  } catch {
    whole = undefined
  }
  if (whole === undefined) {
    const documents: OnFailureDocument[] = []
    const lines = text.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim()
      if (line === '') continue
      const where = `${file}:${i + 1}`
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (error) {
        throw new DocumentError(`${where}: not JSON: ${messageOf(error)}`)
      }
      documents.push(documentOf(value, where))
    }
    return documents
  }
  const messages = (whole as { Messages?: unknown } | null)?.Messages
  if (Array.isArray(messages))
    return messages.map((m, i) => documentOf(m, `${file} Messages[${i}]`))
  if (Array.isArray(whole)) return whole.map((m, i) => documentOf(m, `${file} [${i}]`))
  return [documentOf(whole, file)]
}

/** A document, or an SQS message whose body is one (directly, or inside an SNS notification). */
function documentOf(value: unknown, where: string): OnFailureDocument {
  let body: unknown = value
  const sqsBody = (value as { Body?: unknown } | null)?.Body
  if (typeof sqsBody === 'string') body = parseInner(sqsBody, `${where} Body`)
  const sns = body as { Type?: unknown; Message?: unknown } | null
  if (sns?.Type === 'Notification' && typeof sns.Message === 'string') {
    body = parseInner(sns.Message, `${where} Body.Message`)
  }
  const doc = body as Partial<InvocationRecord> | null
  const info = doc?.KinesisBatchInfo
  if (typeof info !== 'object' || info === null) {
    throw new DocumentError(`${where}: no KinesisBatchInfo: not an on-failure document of Kinesis`)
  }
  for (const field of [
    'shardId',
    'startSequenceNumber',
    'endSequenceNumber',
    'streamArn',
  ] as const) {
    if (typeof info[field] !== 'string' || info[field] === '') {
      throw new DocumentError(`${where}: KinesisBatchInfo.${field} is missing`)
    }
  }
  const functionArn = doc?.requestContext?.functionArn
  return {
    where,
    info,
    condition: doc?.requestContext?.condition,
    functionArn: typeof functionArn === 'string' ? functionArn : undefined,
  }
}

function parseInner(text: string, where: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new DocumentError(`${where}: not JSON: ${messageOf(error)}`)
  }
}

/** The stream's name and region in its ARN: `arn:aws:kinesis:<region>:<account>:stream/<name>`. */
export function streamOf(arn: string): { name: string; region: string } | undefined {
  const match = /^arn:[^:]+:kinesis:([^:]*):[^:]*:stream\/(.+)$/.exec(arn)
  return match === null ? undefined : { region: match[1] as string, name: match[2] as string }
}

export interface FoundBatch {
  document: OnFailureDocument
  /** Records of the range not returned before in this redrive, in sequence order. */
  records: _Record[]
  /** Records of the range an earlier document of this redrive already named. */
  alreadyRead: number
  /** Records of the batch no longer in the stream (`batchSize` less those found). */
  expired: number
  /** Why records are missing, when some are. */
  expiredReason: string | undefined
}

const REQUEST_TIMEOUT_MS = 30_000
/** Reads of one range at most: 10,000 records each, far beyond any batch. */
const MAX_READS = 1000
/** GetRecords calls a throttled read makes before it fails. */
const THROTTLED_TRIES = 10

/**
 * Reads each document's range, in shard and sequence order so that each partition key keeps its
 * order, and returns each record once.
 */
export async function readBatches(
  client: KinesisClient,
  documents: ReadonlyArray<OnFailureDocument>,
  streamName: (doc: OnFailureDocument) => string,
): Promise<FoundBatch[]> {
  const ordered = [...documents].sort(
    (a, b) =>
      a.info.shardId.localeCompare(b.info.shardId) ||
      compareSequenceNumbers(a.info.startSequenceNumber, b.info.startSequenceNumber),
  )
  const seen = new Set<string>()
  const found: FoundBatch[] = []
  for (const document of ordered) {
    const stream = streamName(document)
    const { records, missing } = await readRange(client, stream, document.info)
    const fresh: _Record[] = []
    let alreadyRead = 0
    for (const record of records) {
      const key = `${stream}/${document.info.shardId}/${record.SequenceNumber}`
      if (seen.has(key)) {
        alreadyRead++
      } else {
        seen.add(key)
        fresh.push(record)
      }
    }
    const expired = Math.max(0, (document.info.batchSize ?? records.length) - records.length)
    found.push({
      document,
      records: fresh,
      alreadyRead,
      expired,
      expiredReason: expired > 0 ? (missing ?? 'no longer in the stream') : undefined,
    })
  }
  return found
}

/** The records of one shard from `start` to `end`, and why none could be read, when so. */
async function readRange(
  client: KinesisClient,
  stream: string,
  info: BatchInfo,
): Promise<{ records: _Record[]; missing: string | undefined }> {
  const where = `${stream}/${info.shardId}`
  let iterator: string | undefined
  try {
    const out = await client.send(
      new GetShardIteratorCommand({
        StreamName: stream,
        ShardId: info.shardId,
        ShardIteratorType: 'AT_SEQUENCE_NUMBER',
        StartingSequenceNumber: info.startSequenceNumber,
      }),
      { abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
    )
    iterator = out.ShardIterator
  } catch (error) {
    const name = (error as { name?: string }).name
    // The shard is gone (deleted with its stream, or expired after a reshard), or the sequence
    // number is no longer (or never was) in it: the stream's retention has passed.
    if (name === 'ResourceNotFoundException') {
      return { records: [], missing: `${where} does not exist (any more): ${messageOf(error)}` }
    }
    if (name === 'InvalidArgumentException') {
      return { records: [], missing: `not in ${where} any more: ${messageOf(error)}` }
    }
    throw new Error(
      `GetShardIterator AT_SEQUENCE_NUMBER ${info.startSequenceNumber} on ${where} failed: ${messageOf(error)}`,
      { cause: error },
    )
  }
  const records: _Record[] = []
  let reads = 0
  while (iterator !== undefined) {
    if (++reads > MAX_READS) {
      throw new Error(
        `GetRecords on ${where}: ${MAX_READS} reads did not reach ${info.endSequenceNumber}`,
      )
    }
    const out = await getRecords(client, iterator, where)
    const batch = out.Records ?? []
    for (const record of batch) {
      const sequence = record.SequenceNumber ?? ''
      if (compareSequenceNumbers(sequence, info.endSequenceNumber) > 0) {
        return { records, missing: undefined }
      }
      if (compareSequenceNumbers(sequence, info.startSequenceNumber) >= 0) records.push(record)
    }
    // Nothing more in the shard: an empty read at its tip (a sparse shard answers empty reads
    // while MillisBehindLatest is above 0, and is read on).
    if (batch.length === 0 && (out.MillisBehindLatest ?? 0) === 0) break
    iterator = out.NextShardIterator
  }
  return { records, missing: undefined }
}

/** GetRecords, waiting a second and asking again while the shard's read limit is exceeded. */
async function getRecords(client: KinesisClient, iterator: string, where: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }), {
        abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (error) {
      const name = (error as { name?: string }).name
      if (name === 'ProvisionedThroughputExceededException' && attempt < THROTTLED_TRIES) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        continue
      }
      throw new Error(`GetRecords on ${where} failed: ${messageOf(error)}`, { cause: error })
    }
  }
}
