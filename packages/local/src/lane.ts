/**
 * One lane of a shard: the records waiting in sequence order, and Lambda's rules for turning
 * them into batches and for what happens after each answer: checkpoint, retry, bisect, discard.
 * A shard has one lane, or `ParallelizationFactor` lanes keyed by partition key. No I/O and no
 * clock: the caller says what time it is, so every rule can be tested without a stream.
 *
 * The rules, from the AWS docs ("with-kinesis", "kinesis-on-failure-destination",
 * "services-kinesis-batchfailurereporting", "services-kinesis-windows"):
 * - A batch is up to `BatchSize` records and at most 6 MB; the mapping waits up to
 *   `MaximumBatchingWindowInSeconds` for a full batch.
 * - A failed invocation is retried "until the records expire, exceed the maximum age
 *   (MaximumRecordAgeInSeconds), or reach the configured retry quota (MaximumRetryAttempts)";
 *   then Lambda discards the records and sends their metadata to the on-failure destination.
 * - `BisectBatchOnFunctionError` "splits a failed batch into two smaller batches" and "splitting
 *   batches doesn't consume the retry quota". A batch of one record cannot be split: its failure
 *   is a retry.
 * - With `ReportBatchItemFailures` and bisect both on, "the batch is bisected at the returned
 *   sequence number and Lambda retries only the remaining records"; being a split, that
 *   consumes no retry. When the reported record is the first of the batch there is nothing to
 *   split off, so the batch is halved like a failed one: that is what corners a poison record
 *   instead of discarding its innocent neighbours with it.
 * - A tumbling window's records never share a batch with the next window's; when the window
 *   ends, a final invocation carries `isFinalInvokeForWindow` and no records, and is retried
 *   until it succeeds. State over 1 MB terminates the window early.
 */
import { compareSequenceNumbers } from '@shardwise/core'
import { MAX_STATE_BYTES, type Verdict } from '@shardwise/testing'
import type { PendingRecord } from './event.js'
import { EVENT_OVERHEAD_BYTES, MAX_PAYLOAD_BYTES, SEPARATOR_BYTES } from './event.js'

/**
 * How long Lambda waits before the `retry`-th retry of the same records (1 for the first):
 * 1 s, doubling, at most 12 s. AWS does not publish the schedule; it is derived from AWS's own
 * recording (kinesis-esm-recorded-on-aws.json, test_kinesis_maximum_record_age_exceeded
 * [expire-while-retrying]): a handler that always throws, retries -1 and a 60 s record age
 * ends with `approximateInvokeCount: 8`. Invocations at 0, 1, 3, 7, 15, 27, 39 and 51 s, the
 * next at 63 s after the record is too old, give those 8 whenever the first invocation comes
 * within 9 s of the record's arrival; doubling without a cap would give 6 (the 7th at 63 s).
 * Splitting a batch (bisect) is not a retry and is not delayed.
 */
export function retryDelayMs(retry: number): number {
  if (retry < 1) return 0
  return Math.min(RETRY_MAX_DELAY_MS, RETRY_FIRST_DELAY_MS * 2 ** Math.min(retry - 1, 30))
}

export const RETRY_FIRST_DELAY_MS = 1000
export const RETRY_MAX_DELAY_MS = 12_000

export interface LaneRules {
  batchSize: number
  maximumBatchingWindowMs: number
  bisectBatchOnFunctionError: boolean
  /** -1: infinite. */
  maximumRetryAttempts: number
  /** -1: infinite. */
  maximumRecordAgeMs: number
  /** 0: no tumbling window. */
  tumblingWindowMs: number
}

export interface TimeWindow {
  startMs: number
  endMs: number
}

export interface Batch {
  readonly records: ReadonlyArray<PendingRecord>
  /** Failed invocations of these records before this one (bisecting does not count). */
  readonly retries: number
  /** The tumbling window and its state; `undefined` without windows. */
  readonly window: TimeWindow | undefined
  readonly state: unknown
  readonly isFinalInvokeForWindow: boolean
  readonly isWindowTerminatedEarly: boolean
}

export type DiscardCondition = 'RetryAttemptsExhausted' | 'RecordAgeExceeded'

type Failure = Extract<Verdict, { kind: 'failure' }>

/**
 * One batch the mapping gave up on: what the on-failure destination hears about, one document
 * each. It is a batch as the mapping formed it (at most `BatchSize` records), never a merge of
 * several.
 */
export interface Discard {
  readonly records: ReadonlyArray<PendingRecord>
  readonly condition: DiscardCondition
  /** Failed invocations of these records, for `approximateInvokeCount`; 0 when never invoked. */
  readonly invokeCount: number
  /** The last failure, when there was an invocation. */
  readonly failure: Failure | undefined
}

export interface Settlement {
  /** Records checkpointed by this answer. */
  readonly succeeded: number
  /** Some records (or the window's final invocation) will be invoked again. */
  readonly retry: boolean
  readonly bisected: boolean
  readonly discarded: Discard | undefined
}

/** A fixed upcoming batch: made by bisecting, so it is retried exactly, not re-gathered. */
interface Segment {
  count: number
  /** Failed invocations that count toward `MaximumRetryAttempts` (a split does not). */
  retries: number
  /** Failed invocations these records were in, splits included. */
  invocations: number
  /** The last of them. */
  failure: Failure
}

const NOTHING_EXPIRED: ReadonlyArray<Discard> = []

export class Lane {
  private readonly rules: LaneRules
  private queue: PendingRecord[] = []
  private head = 0
  /** Fixed batches that start at `head`, in order. */
  private segments: Segment[] = []
  /** Failed invocations of the gathered batch that starts at `head`. */
  private headRetries = 0
  /** How many records the head batch's last failed invocation held. */
  private headCount = 0
  /** That invocation's failure; `undefined` while the head batch has not failed. */
  private headFailure: Failure | undefined
  private inFlight: Batch | undefined
  private window: TimeWindow | undefined
  private state: unknown = {}
  private terminateWindowEarly = false
  /** The sequence number of the last record checkpointed or discarded. */
  private lastDone: string | undefined
  /** The shard was read to its end: nothing more comes, so nothing is waited for. */
  private shardEnded = false

  constructor(rules: LaneRules) {
    this.rules = rules
  }

  push(record: PendingRecord): void {
    this.queue.push(record)
  }

  /** Records read and not yet checkpointed or discarded, including those in flight. */
  get waiting(): number {
    return this.queue.length - this.head
  }

  get busy(): boolean {
    return this.inFlight !== undefined
  }

  /** The oldest record read and not yet done (checkpointed or discarded), in flight or not. */
  get oldestUndone(): PendingRecord | undefined {
    return this.queue[this.head]
  }

  /**
   * The sequence number of the last record done that comes before `limit` (every record done
   * when `limit` is `undefined`): the lane's part of its shard's checkpoint.
   */
  lastDoneBefore(limit: string | undefined): string | undefined {
    const last = this.lastDone
    if (last === undefined || limit === undefined || compareSequenceNumbers(last, limit) < 0) {
      return last
    }
    // Records done are the queue before `head`, in sequence order.
    let low = 0
    let high = this.head - 1
    let found: string | undefined
    while (low <= high) {
      const mid = (low + high) >> 1
      const sequenceNumber = (this.queue[mid] as PendingRecord).sequenceNumber
      if (compareSequenceNumbers(sequenceNumber, limit) < 0) {
        found = sequenceNumber
        low = mid + 1
      } else {
        high = mid - 1
      }
    }
    return found
  }

  /** A tumbling window whose final invocation has not succeeded yet. */
  get windowOpen(): boolean {
    return this.window !== undefined
  }

  /** The open window and its state, to keep with the checkpoint. */
  get openWindow(): { window: TimeWindow; state: unknown } | undefined {
    return this.window === undefined ? undefined : { window: this.window, state: this.state }
  }

  /** Reopens a window kept by an earlier run, with the state its function last answered. */
  restoreWindow(window: TimeWindow, state: unknown): void {
    this.window = { startMs: window.startMs, endMs: window.endMs }
    this.state = state
  }

  /**
   * The shard was read to its end (a reshard closed it): the records waiting go without waiting
   * for the batching window, and the open tumbling window closes ("When the shard ends, Lambda
   * considers the window closed, and the child shards start their own window in a fresh state").
   */
  endShard(): void {
    this.shardEnded = true
  }

  /**
   * Discards the records at the front that are older than `MaximumRecordAgeInSeconds`. Arrival
   * times only grow along a shard, so the old records are a prefix. They go in the batches the
   * mapping would have invoked: the failing batch (and the other halves of a bisected one) with
   * its invocations and last failure, then batches of never-invoked records, up to `BatchSize`
   * and 6 MB each, without a response.
   */
  expire(nowMs: number): ReadonlyArray<Discard> {
    const maxAge = this.rules.maximumRecordAgeMs
    if (maxAge < 0 || this.inFlight !== undefined) return NOTHING_EXPIRED
    const oldest = nowMs - maxAge
    let expired = 0
    while (
      this.head + expired < this.queue.length &&
      (this.queue[this.head + expired] as PendingRecord).arrivalMs < oldest
    ) {
      expired++
    }
    if (expired === 0) return NOTHING_EXPIRED
    const discards: Discard[] = []
    while (expired > 0) {
      const segment = this.segments[0]
      let count: number
      let invokeCount = 0
      let failure: Failure | undefined
      if (segment !== undefined) {
        count = segment.count
        invokeCount = segment.invocations
        failure = segment.failure
      } else if (this.headFailure !== undefined) {
        count = this.headCount
        invokeCount = this.headRetries
        failure = this.headFailure
      } else {
        count = this.gatherEnd(expired, Number.POSITIVE_INFINITY) - this.head
      }
      count = Math.min(count, expired)
      const records = this.queue.slice(this.head, this.head + count)
      discards.push({ records, condition: 'RecordAgeExceeded', invokeCount, failure })
      this.advance(count)
      expired -= count
    }
    return discards
  }

  /** The next batch to invoke, or `undefined` while one is in flight or none is ready yet. */
  next(nowMs: number): Batch | undefined {
    if (this.inFlight !== undefined) return undefined
    const windowed = this.rules.tumblingWindowMs > 0
    const headRecord = this.queue[this.head]
    if (windowed && this.window !== undefined) {
      const closed =
        headRecord === undefined
          ? nowMs >= this.window.endMs || this.shardEnded
          : headRecord.arrivalMs >= this.window.endMs
      if (closed || this.terminateWindowEarly) return this.start([], 0, true)
    }
    if (headRecord === undefined) return undefined

    const segment = this.segments[0]
    if (segment !== undefined) {
      return this.start(
        this.queue.slice(this.head, this.head + segment.count),
        segment.retries,
        false,
      )
    }

    if (windowed && this.window === undefined) this.window = this.windowOf(headRecord.arrivalMs)
    const available = this.queue.length - this.head
    const end = this.gatherEnd(available, this.window?.endMs ?? Number.POSITIVE_INFINITY)
    // Full: something stopped the batch before the records ran out, or it reached BatchSize.
    const full = end - this.head < available || end - this.head === this.rules.batchSize
    const waited =
      this.shardEnded || nowMs - headRecord.readMs >= this.rules.maximumBatchingWindowMs
    if (!full && !waited && this.headRetries === 0) return undefined
    return this.start(this.queue.slice(this.head, end), this.headRetries, false)
  }

  /**
   * Where the batch gathered at `head` from the first `available` records ends: at `BatchSize`
   * records, 6 MB of event, or the first record of the next tumbling window.
   */
  private gatherEnd(available: number, windowEnd: number): number {
    const limit = this.head + Math.min(available, this.rules.batchSize)
    let bytes = EVENT_OVERHEAD_BYTES - SEPARATOR_BYTES
    let end = this.head
    while (end < limit) {
      const record = this.queue[end] as PendingRecord
      if (record.arrivalMs >= windowEnd) break
      const after = bytes + SEPARATOR_BYTES + record.bytes
      // A record over the limit goes alone rather than block its shard for ever; what Lambda
      // does with one is not documented.
      if (after > MAX_PAYLOAD_BYTES && end > this.head) break
      bytes = after
      end++
    }
    return end
  }

  /** Applies Lambda's answer to the batch `next` returned. */
  settle(batch: Batch, verdict: Verdict): Settlement {
    if (batch !== this.inFlight) throw new Error('settle() takes the batch in flight')
    this.inFlight = undefined
    if (batch.isFinalInvokeForWindow) return this.settleFinal(batch, verdict)

    const n = batch.records.length
    const bisect = this.rules.bisectBatchOnFunctionError
    // The failed invocations these records were in, this one included: a bisected part counts
    // those of the batch it was split from.
    const invocations = (this.segments[0]?.invocations ?? batch.retries) + 1
    if (verdict.kind === 'success') {
      this.advance(n)
      this.keepState(verdict.state, verdict.stateBytes)
      return { succeeded: n, retry: false, bisected: false, discarded: undefined }
    }
    if (verdict.kind === 'partial') {
      const k = verdict.checkpoint
      this.advance(k)
      this.keepState(verdict.state, verdict.stateBytes)
      const left = n - k
      const failure = {
        kind: 'failure',
        reason: `the function reported record ${batch.records[k]?.sequenceNumber} as failed`,
        // The function answered: AWS writes null, as for any answer it reads.
        functionError: null,
      } as const
      if (bisect && k > 0) {
        // Split at the returned sequence number: a split, so it consumes no retry. A bisected
        // batch's own segment already holds just the remaining records.
        const rest = this.segments[0]
        if (rest === undefined) {
          this.segments.unshift({ count: left, retries: batch.retries, invocations, failure })
        } else {
          rest.invocations = invocations
          rest.failure = failure
        }
        return { succeeded: k, retry: true, bisected: true, discarded: undefined }
      }
      if (bisect && left > 1) {
        this.bisect(left, batch.retries, invocations, failure)
        return { succeeded: 0, retry: true, bisected: true, discarded: undefined }
      }
      // Past a checkpoint the rest is a new batch: its first failed invocation is this one.
      return k === 0
        ? this.retryOrDiscard(left, batch.retries + 1, invocations, 0, failure, batch)
        : this.retryOrDiscard(left, 1, 1, k, failure, batch)
    }
    if (bisect && n > 1) {
      this.bisect(n, batch.retries, invocations, verdict)
      return { succeeded: 0, retry: true, bisected: true, discarded: undefined }
    }
    return this.retryOrDiscard(n, batch.retries + 1, invocations, 0, verdict, batch)
  }

  private retryOrDiscard(
    count: number,
    retries: number,
    invocations: number,
    succeeded: number,
    failure: Failure,
    batch: Batch,
  ): Settlement {
    const max = this.rules.maximumRetryAttempts
    if (max >= 0 && retries > max) {
      const records = batch.records.slice(succeeded, succeeded + count)
      this.advance(count)
      const discarded: Discard = {
        records,
        condition: 'RetryAttemptsExhausted',
        invokeCount: invocations,
        failure,
      }
      return { succeeded, retry: false, bisected: false, discarded }
    }
    const segment = this.segments[0]
    // A bisected part is retried as it is, so a poison record's neighbours are not gathered
    // back in; a gathered batch is gathered again from the checkpoint, as Lambda re-reads.
    if (segment !== undefined) {
      segment.retries = retries
      segment.invocations = invocations
      segment.failure = failure
    } else {
      this.headRetries = retries
      this.headCount = count
      this.headFailure = failure
    }
    return { succeeded, retry: true, bisected: false, discarded: undefined }
  }

  /**
   * Replaces the batch at the head with its two halves, each keeping its retry count, its failed
   * invocations and the last failure (which a discard of either half reports).
   */
  private bisect(count: number, retries: number, invocations: number, failure: Failure): void {
    const first = Math.ceil(count / 2)
    const segment = this.segments[0]
    if (segment !== undefined && segment.count === count) this.segments.shift()
    else if (segment !== undefined) segment.count -= count
    this.segments.unshift(
      { count: first, retries, invocations, failure },
      { count: count - first, retries, invocations, failure },
    )
  }

  private settleFinal(batch: Batch, verdict: Verdict): Settlement {
    if (verdict.kind === 'failure') {
      return { succeeded: 0, retry: true, bisected: false, discarded: undefined }
    }
    // A window terminated early continues with a fresh state; an ended one closes.
    if (!batch.isWindowTerminatedEarly) this.window = undefined
    this.state = {}
    this.terminateWindowEarly = false
    return { succeeded: 0, retry: false, bisected: false, discarded: undefined }
  }

  private keepState(state: unknown, stateBytes: number | undefined): void {
    if (this.rules.tumblingWindowMs === 0) return
    this.state = state
    if ((stateBytes ?? 0) > MAX_STATE_BYTES) this.terminateWindowEarly = true
  }

  private start(records: PendingRecord[], retries: number, final: boolean): Batch {
    const batch: Batch = {
      records,
      retries,
      window: this.window,
      state: this.rules.tumblingWindowMs > 0 ? this.state : undefined,
      isFinalInvokeForWindow: final,
      isWindowTerminatedEarly: final && this.terminateWindowEarly,
    }
    this.inFlight = batch
    return batch
  }

  /** Tumbling windows are aligned on multiples of their length since the epoch. */
  private windowOf(arrivalMs: number): TimeWindow {
    const length = this.rules.tumblingWindowMs
    const startMs = Math.floor(arrivalMs / length) * length
    return { startMs, endMs: startMs + length }
  }

  /** Moves the checkpoint past `count` records, consuming the fixed batches they belonged to. */
  private advance(count: number): void {
    if (count === 0) return
    this.head += count
    this.lastDone = (this.queue[this.head - 1] as PendingRecord).sequenceNumber
    this.headRetries = 0
    this.headCount = 0
    this.headFailure = undefined
    let left = count
    while (left > 0) {
      const segment = this.segments[0]
      if (segment === undefined) break
      if (segment.count <= left) {
        left -= segment.count
        this.segments.shift()
      } else {
        segment.count -= left
        left = 0
      }
    }
    // Drop checkpointed records now and then, so the queue does not grow without end.
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }
}
