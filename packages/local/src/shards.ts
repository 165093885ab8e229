/**
 * The reading of a stream's shards, as Lambda's poller reads them: the Kinesis client, the
 * shard list, each shard's iterator from `StartingPosition`, and `GetRecords` in a loop until the
 * shard ends or the mapping stops, every request under a deadline. What is done with the
 * records (lanes, batches, Lambda's rules) is the mapping's (mapping.ts).
 */
import {
  type _Record,
  type ChildShard,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  KinesisClient,
  ListShardsCommand,
  type ListShardsCommandOutput,
  type Shard,
} from '@aws-sdk/client-kinesis'
import { messageOf } from '@shardwise/core'
import { awsClientConfig } from './aws-client.js'
import type { StartingPosition } from './settings.js'

/** GetRecords' largest `Limit`. */
export const MAX_GET_RECORDS = 10_000
const REQUEST_TIMEOUT_MS = 30_000
/** The first wait after a transient error, doubled after each failure up to the cap. */
const FIRST_RETRY_MS = 100
const MAX_RETRY_MS = 5_000
const RETRY_FOR_MS = 60_000

/** A Kinesis request that got no answer in time; it names the call and the shard. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError'
}

/** A Kinesis request that failed for good: it names the call, the stream and the endpoint. */
export class KinesisCallError extends Error {
  override name = 'KinesisCallError'
}

/**
 * The mapping stopped while a request waited to be tried again: a shard's reading just ends;
 * elsewhere (the first requests of a run) it fails with what the request met.
 */
class Stopped extends KinesisCallError {}

/** The client of a run, and of `shardwise redrive`. */
export function kinesisClient(endpoint: string | undefined, region: string): KinesisClient {
  // The reader retries transient errors itself, with its own backoff, bound and line.
  return new KinesisClient({ ...awsClientConfig(endpoint, region), maxAttempts: 1 })
}

/** What a request's sleep and bound go by; the mapping's clock. */
export interface ReaderClock {
  now(): number
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export interface ReaderOptions {
  stream: string
  startingPosition: StartingPosition
  /** Epoch seconds, with `AT_TIMESTAMP`. */
  startingPositionTimestamp?: number | undefined
  /**
   * The endpoint is the built-in kinesalite: its GetShardIterator AT_TIMESTAMP never answers on
   * a shard without a record at or after the timestamp, so such a shard is read from
   * TRIM_HORIZON and the records that arrived before the timestamp are skipped here. AWS and
   * other endpoints position the iterator themselves.
   */
  builtInKinesalite: boolean
  /** How long one request may go unanswered. Default 30000. */
  requestTimeoutMs?: number | undefined
  /** How long a shard that returned nothing waits before reading again. Default 1000. */
  pollIntervalMs?: number | undefined
  /** The endpoint, for messages; `undefined` is AWS's endpoint of `region`. */
  endpoint?: string | undefined
  region: string
  /**
   * How long a request that fails with a transient error (refused connection, throttling, 5xx)
   * is tried again, with backoff, before the run fails. Default 60000.
   */
  retryForMs?: number | undefined
  clock: ReaderClock
  /** Aborts when the mapping stops: a request waiting to be tried again gives up. */
  signal: AbortSignal
  /** Says when Kinesis fails transiently and when it answers again. */
  logger?: { warn(message: string): void } | undefined
}

/** Where a shard's reading resumes: after a sequence number, or at a time (epoch ms). */
export type ShardPosition = { after: string } | { atMs: number }

/** A shard read to its end, and its children as GetRecords named them (AWS does, kinesalite not). */
export interface ShardEnd {
  children: Shard[]
}

function asShard(child: ChildShard): Shard {
  const [parent, adjacent] = child.ParentShards ?? []
  return {
    ShardId: child.ShardId,
    ParentShardId: parent,
    AdjacentParentShardId: adjacent,
    HashKeyRange: child.HashKeyRange,
    SequenceNumberRange: undefined,
  }
}

/** Where a shard's records go, and how the mapping paces its reading. */
export interface ShardSink {
  /** The mapping stops: no read starts. */
  stopping(): boolean
  /** So many records wait that reading pauses until a batch settles. */
  full(): boolean
  waitForRoom(): Promise<void>
  /** Waits `ms` before the next read; a stop ends the wait. */
  pause(ms: number): Promise<void>
  /**
   * The records of one GetRecords, in shard order, read at `readMs`; reading goes on once what
   * it returns settles (the checkpoint written for records filtered out).
   */
  take(records: _Record[], readMs: number): void | Promise<void>
  /** What each GetRecords says of the shard: `MillisBehindLatest`, its distance to the tip. */
  behind(millisBehindLatest: number | undefined): void
}

/** Reads one stream's shards. */
export class StreamReader {
  /** Requests in flight: reading is not idleness. */
  readsInFlight = 0
  private readonly requestTimeoutMs: number
  private readonly retryForMs: number
  /** The transient failure being retried, from the first request that met it. */
  private outage: { sinceMs: number } | undefined

  constructor(
    private readonly client: KinesisClient,
    private readonly options: ReaderOptions,
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
    this.retryForMs = options.retryForMs ?? RETRY_FOR_MS
  }

  /**
   * Sends one Kinesis request with a deadline, and tries it again after a transient error
   * (refused connection, throttling, 5xx) with capped exponential backoff, for `retryForMs` at
   * most. An error that is not transient, or one that outlasts the bound, fails the run with a
   * message naming the call, the stream, the endpoint and what to check.
   */
  private async request<Output>(
    call: string,
    where: string,
    send: (abortSignal: AbortSignal) => Promise<Output>,
  ): Promise<Output> {
    const { clock, signal, logger } = this.options
    let delayMs = FIRST_RETRY_MS
    let firstFailureMs: number | undefined
    for (;;) {
      let error: unknown
      try {
        const output = await this.attempt(call, where, send)
        if (this.outage !== undefined) {
          const seconds = ((clock.now() - this.outage.sinceMs) / 1000).toFixed(1)
          this.outage = undefined
          logger?.warn(`Kinesis answers again at ${this.endpointText()} after ${seconds} s`)
        }
        return output
      } catch (thrown) {
        error = thrown
      }
      const transient = transientCause(error)
      if (transient === undefined) throw this.failure(call, where, error, '')
      const nowMs = clock.now()
      firstFailureMs ??= nowMs
      const leftMs = firstFailureMs + this.retryForMs - nowMs
      if (leftMs <= 0) {
        throw this.failure(
          call,
          where,
          error,
          ` (still failing after ${this.retryForMs / 1000} s of retries)`,
        )
      }
      if (signal.aborted) throw this.stopped(call, where, error)
      if (this.outage === undefined) {
        this.outage = { sinceMs: nowMs }
        logger?.warn(
          `${call} on ${where}: ${transient} at ${this.endpointText()}; retrying with backoff ` +
            `for up to ${this.retryForMs / 1000} s`,
        )
      }
      await clock.sleep(Math.min(delayMs, leftMs), signal)
      delayMs = Math.min(delayMs * 2, MAX_RETRY_MS)
      if (signal.aborted) throw this.stopped(call, where, error)
    }
  }

  private async attempt<Output>(
    call: string,
    where: string,
    send: (abortSignal: AbortSignal) => Promise<Output>,
  ): Promise<Output> {
    const signal = AbortSignal.timeout(this.requestTimeoutMs)
    try {
      return await send(signal)
    } catch (error) {
      if (!signal.aborted) throw error
      throw new RequestTimeoutError(
        `${call} on ${where} got no answer within ${this.requestTimeoutMs / 1000} s (requestTimeoutMs)`,
        { cause: error },
      )
    }
  }

  private stopped(call: string, where: string, error: unknown): Stopped {
    const failure = this.failure(call, where, error, ' (stopped while retrying)')
    return new Stopped(failure.message, { cause: error })
  }

  private endpointText(): string {
    return this.options.endpoint ?? `the AWS endpoint of ${this.options.region}`
  }

  /** The error a failed call ends the run with: the call, the stream, the endpoint, a hint. */
  private failure(call: string, where: string, error: unknown, after: string): Error {
    if (error instanceof RequestTimeoutError) return error
    const { cause, hint } = explain(error, call, this.options.endpoint)
    return new KinesisCallError(
      `${call} on ${where} at ${this.endpointText()} failed${after}: ${hint === '' ? cause : `${cause.replace(/\.$/, '')}. ${hint}`}`,
      { cause: error },
    )
  }

  /** The stream's ARN, as the endpoint writes it. */
  async streamArn(): Promise<string> {
    const { stream } = this.options
    const summary = await this.request('DescribeStreamSummary', stream, (abortSignal) =>
      this.client.send(new DescribeStreamSummaryCommand({ StreamName: stream }), { abortSignal }),
    )
    return summary.StreamDescriptionSummary?.StreamARN ?? ''
  }

  async listShards(): Promise<Shard[]> {
    this.readsInFlight++
    try {
      return await this.listAllShards()
    } finally {
      this.readsInFlight--
    }
  }

  private async listAllShards(): Promise<Shard[]> {
    const shards: Shard[] = []
    let next: string | undefined
    do {
      const input = next === undefined ? { StreamName: this.options.stream } : { NextToken: next }
      const page: ListShardsCommandOutput = await this.request(
        'ListShards',
        this.options.stream,
        (abortSignal) => this.client.send(new ListShardsCommand(input), { abortSignal }),
      )
      shards.push(...(page.Shards ?? []))
      next = page.NextToken
    } while (next !== undefined)
    return shards
  }

  /**
   * Reads a shard from `from` (a kept checkpoint), or else `StartingPosition`, until it ends (no next iterator: a reshard closed it
   * and every record was read) or the sink stops; at its end, the children GetRecords named.
   */
  async read(
    shardId: string,
    sink: ShardSink,
    from?: ShardPosition,
  ): Promise<ShardEnd | undefined> {
    try {
      return await this.readUntilEnd(shardId, sink, from)
    } catch (error) {
      if (!(error instanceof Stopped)) throw error
      return undefined
    }
  }

  private async readUntilEnd(
    shardId: string,
    sink: ShardSink,
    from: ShardPosition | undefined,
  ): Promise<ShardEnd | undefined> {
    const pollMs = this.options.pollIntervalMs ?? 1000
    let lastSequence = from !== undefined && 'after' in from ? from.after : undefined
    const { startingPosition, startingPositionTimestamp } = this.options
    const atMs =
      from !== undefined && 'atMs' in from
        ? from.atMs
        : from === undefined && startingPosition === 'AT_TIMESTAMP'
          ? (startingPositionTimestamp as number) * 1000
          : undefined
    let skipBeforeMs = this.options.builtInKinesalite ? atMs : undefined
    let iterator = await this.iterator(shardId, lastSequence, atMs)
    while (!sink.stopping() && iterator !== undefined) {
      if (sink.full()) {
        await sink.waitForRoom()
        continue
      }
      let out: GetRecordsCommandOutput
      try {
        out = await this.getRecords(shardId, iterator)
      } catch (error) {
        if (error instanceof KinesisCallError && isExpiredIterator(error.cause)) {
          iterator = await this.iterator(shardId, lastSequence, atMs)
          continue
        }
        throw error
      }
      const records = out.Records ?? []
      sink.behind(out.MillisBehindLatest)
      const now = Date.now()
      let from = 0
      if (skipBeforeMs !== undefined) {
        while (from < records.length) {
          const record = records[from] as _Record
          const arrivalMs = record.ApproximateArrivalTimestamp?.getTime() ?? now
          // Arrival times grow along a shard: every record after this one is read as well.
          if (arrivalMs >= skipBeforeMs) {
            skipBeforeMs = undefined
            break
          }
          lastSequence = record.SequenceNumber
          from++
        }
      }
      if (from < records.length) {
        const taken = from === 0 ? records : records.slice(from)
        lastSequence = (taken[taken.length - 1] as _Record).SequenceNumber
        await sink.take(taken, now)
      }
      iterator = out.NextShardIterator
      if (iterator === undefined) return { children: (out.ChildShards ?? []).map(asShard) }
      // Lambda reads again at once while the shard has more; an empty read means caught up.
      if (records.length === 0) await sink.pause(pollMs)
    }
    return undefined
  }

  private async getRecords(shardId: string, iterator: string) {
    this.readsInFlight++
    try {
      const input = { ShardIterator: iterator, Limit: MAX_GET_RECORDS }
      return await this.request('GetRecords', `${this.options.stream}/${shardId}`, (abortSignal) =>
        this.client.send(new GetRecordsCommand(input), { abortSignal }),
      )
    } finally {
      this.readsInFlight--
    }
  }

  /**
   * An iterator after `after` (a checkpoint, or the last record read before an expiry), else at
   * `atMs`, else at `StartingPosition`. At a time on the built-in kinesalite: TRIM_HORIZON, the
   * older records skipped by the reader.
   */
  private async iterator(
    shardId: string,
    after: string | undefined,
    atMs: number | undefined,
  ): Promise<string | undefined> {
    const input: GetShardIteratorCommandInput = {
      StreamName: this.options.stream,
      ShardId: shardId,
      ShardIteratorType: this.options.startingPosition,
    }
    if (after !== undefined) {
      input.ShardIteratorType = 'AFTER_SEQUENCE_NUMBER'
      input.StartingSequenceNumber = after
    } else if (atMs !== undefined && this.options.builtInKinesalite) {
      input.ShardIteratorType = 'TRIM_HORIZON'
    } else if (atMs !== undefined) {
      input.ShardIteratorType = 'AT_TIMESTAMP'
      input.Timestamp = new Date(atMs)
    }
    this.readsInFlight++
    try {
      const out = await this.request(
        `GetShardIterator ${input.ShardIteratorType}`,
        `${this.options.stream}/${shardId}`,
        (abortSignal) => this.client.send(new GetShardIteratorCommand(input), { abortSignal }),
      )
      return out.ShardIterator
    } finally {
      this.readsInFlight--
    }
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'LimitExceededException',
  'ThrottlingException',
])

interface SdkError {
  name?: string
  code?: string
  message?: string
  $metadata?: { httpStatusCode?: number }
  $response?: { statusCode?: number; headers?: Record<string, string> }
}

/** Why a request failed, when trying it again may work: `undefined` for an error that stays. */
function transientCause(error: unknown): string | undefined {
  if (error instanceof RequestTimeoutError || typeof error !== 'object' || error === null) {
    return undefined
  }
  const e = error as SdkError
  if (e.code !== undefined && CONNECTION_CODES.has(e.code))
    return `the connection failed (${e.code})`
  if (e.message === 'socket hang up') return 'the connection closed (socket hang up)'
  if (e.name !== undefined && THROTTLING.has(e.name)) return `throttled (${e.name})`
  const status = statusOf(e)
  if (status !== undefined && status >= 500) return `the endpoint answered HTTP ${status}`
  return undefined
}

function isExpiredIterator(error: unknown): boolean {
  return (error as SdkError | undefined)?.name === 'ExpiredIteratorException'
}

function statusOf(e: SdkError): number | undefined {
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode
}

/** The error in words a person can act on, and what to check. */
function explain(
  error: unknown,
  call: string,
  endpoint: string | undefined,
): { cause: string; hint: string } {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SdkError
  const contentType = e.$response?.headers?.['content-type'] ?? ''
  const status = statusOf(e)
  if (/html/i.test(contentType) || /Unexpected token '<'/.test(e.message ?? '')) {
    return {
      cause: `it answered with an HTML page (HTTP ${status ?? '?'}), not the Kinesis API`,
      hint:
        endpoint === undefined
          ? 'a proxy may stand between this machine and AWS'
          : "--endpoint should be the Kinesis endpoint itself: kinesalite's address, or LocalStack's http://localhost:4566",
    }
  }
  const cause = `${e.name ?? 'Error'}: ${messageOf(error)}`
  if (e.code !== undefined && CONNECTION_CODES.has(e.code)) {
    return {
      cause,
      hint: 'nothing answers there: start kinesalite or LocalStack, or correct --endpoint',
    }
  }
  if (e.name === 'ResourceNotFoundException') {
    return {
      cause,
      hint: 'check --stream and --region; at a local endpoint, create the stream first (aws kinesis create-stream --endpoint-url ...)',
    }
  }
  if (
    e.name === 'UnrecognizedClientException' ||
    e.name === 'InvalidSignatureException' ||
    e.name === 'ExpiredTokenException' ||
    e.name === 'CredentialsProviderError'
  ) {
    return { cause, hint: 'check the AWS credentials: AWS_PROFILE, or aws sso login' }
  }
  if (e.name === 'AccessDeniedException') {
    return { cause, hint: `the credentials need kinesis:${call.split(' ')[0]} on the stream` }
  }
  if (status === 404 || e.name === 'Unknown') {
    return {
      cause: `${cause} (HTTP ${status ?? '?'})`,
      hint: 'is --endpoint a Kinesis endpoint?',
    }
  }
  return { cause, hint: '' }
}
