/**
 * The reading of a stream's shards, as Lambda's poller reads them: the Kinesis client, the
 * shard list, each shard's iterator from `StartingPosition`, and `GetRecords` in a loop until the
 * shard ends or the mapping stops, every request under a deadline. What is done with the
 * records (lanes, batches, Lambda's rules) is the mapping's (mapping.ts).
 */
import {
  type _Record,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
  KinesisClient,
  type KinesisClientConfig,
  ListShardsCommand,
  type ListShardsCommandOutput,
  type Shard,
} from '@aws-sdk/client-kinesis'
import { messageOf } from '@shardwise/core'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { StartingPosition } from './settings.js'

/** GetRecords' largest `Limit`. */
export const MAX_GET_RECORDS = 10_000
const REQUEST_TIMEOUT_MS = 30_000

/** A Kinesis request that got no answer in time; it names the call and the shard. */
export class RequestTimeoutError extends Error {
  override name = 'RequestTimeoutError'
}

/** The client of a run, and of `shardwise redrive`: a local endpoint gets placeholder keys. */
export function kinesisClient(endpoint: string | undefined, region: string): KinesisClient {
  const config: KinesisClientConfig = { region, requestHandler: new NodeHttpHandler() }
  if (endpoint !== undefined) {
    config.endpoint = endpoint
    // A local endpoint takes any key; AWS' credential chain would fail on a machine without one.
    if (process.env.AWS_ACCESS_KEY_ID === undefined && process.env.AWS_PROFILE === undefined) {
      config.credentials = { accessKeyId: 'local', secretAccessKey: 'local' }
    }
  }
  return new KinesisClient(config)
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
  /** The records of one GetRecords, in shard order, read at `readMs`. */
  take(records: _Record[], readMs: number): void
}

/** Reads one stream's shards. */
export class StreamReader {
  /** Requests in flight: reading is not idleness. */
  readsInFlight = 0
  private readonly requestTimeoutMs: number
  private readonly skipBeforeMs: number | undefined

  constructor(
    private readonly client: KinesisClient,
    private readonly options: ReaderOptions,
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
    this.skipBeforeMs =
      options.startingPosition === 'AT_TIMESTAMP' && options.builtInKinesalite
        ? (options.startingPositionTimestamp as number) * 1000
        : undefined
  }

  /**
   * Sends one Kinesis request with a deadline: a call that never gets an answer fails the run
   * with an error naming the call and where, instead of keeping it waiting for ever.
   */
  private async request<Output>(
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

  /** The stream's ARN, as the endpoint writes it. */
  async streamArn(): Promise<string> {
    const { stream } = this.options
    const summary = await this.request('DescribeStreamSummary', stream, (abortSignal) =>
      this.client.send(new DescribeStreamSummaryCommand({ StreamName: stream }), { abortSignal }),
    )
    return summary.StreamDescriptionSummary?.StreamARN ?? ''
  }

  async listShards(): Promise<Shard[]> {
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

  /** Reads a shard from `StartingPosition` until it ends (no next iterator) or the sink stops. */
  async read(shardId: string, sink: ShardSink): Promise<void> {
    const { stream } = this.options
    const pollMs = this.options.pollIntervalMs ?? 1000
    let lastSequence: string | undefined
    let skipBeforeMs = this.skipBeforeMs
    let iterator = await this.iterator(shardId, undefined)
    while (!sink.stopping() && iterator !== undefined) {
      if (sink.full()) {
        await sink.waitForRoom()
        continue
      }
      let out: GetRecordsCommandOutput
      try {
        out = await this.getRecords(shardId, iterator)
      } catch (error) {
        if (error instanceof RequestTimeoutError) throw error
        const name = (error as { name?: string }).name
        if (name === 'ExpiredIteratorException') {
          iterator = await this.iterator(shardId, lastSequence)
          continue
        }
        if (
          name === 'ProvisionedThroughputExceededException' ||
          name === 'LimitExceededException'
        ) {
          await sink.pause(pollMs)
          continue
        }
        throw new Error(`GetRecords failed on ${stream}/${shardId}: ${messageOf(error)}`, {
          cause: error,
        })
      }
      const records = out.Records ?? []
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
        sink.take(taken, now)
      }
      iterator = out.NextShardIterator
      // Lambda reads again at once while the shard has more; an empty read means caught up.
      if (records.length === 0) await sink.pause(pollMs)
    }
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

  /** The first iterator follows `StartingPosition`; after an expiry, it resumes after `after`. */
  private async iterator(shardId: string, after: string | undefined): Promise<string | undefined> {
    const { startingPosition, startingPositionTimestamp } = this.options
    const input: GetShardIteratorCommandInput = {
      StreamName: this.options.stream,
      ShardId: shardId,
      ShardIteratorType: startingPosition,
    }
    if (after !== undefined) {
      input.ShardIteratorType = 'AFTER_SEQUENCE_NUMBER'
      input.StartingSequenceNumber = after
    } else if (this.skipBeforeMs !== undefined) {
      input.ShardIteratorType = 'TRIM_HORIZON'
    } else if (startingPosition === 'AT_TIMESTAMP') {
      input.Timestamp = new Date((startingPositionTimestamp as number) * 1000)
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
