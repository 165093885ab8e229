/**
 * `invoke(handler, event)`: calls a handler as Lambda would and says what Lambda would do next
 * with each record of the batch, by the rules of `judge` (verdict.ts).
 */
import { compareSequenceNumbers, MAX_TIMER_MS, messageOf } from '@shardwise/core'
import type { Context, KinesisStreamEvent } from 'aws-lambda'
import { lambdaContext } from './context.js'
import { type Answer, doneCount, ignoredFailures, judge, type Verdict } from './verdict.js'

export interface InvokeOptions {
  /**
   * Whether the event source mapping has `FunctionResponseTypes: ["ReportBatchItemFailures"]`.
   * Default true. Without it Lambda takes any answer as a complete success.
   */
  reportBatchItemFailures?: boolean
}

/** What Lambda would do with each record of the batch once the handler has answered. */
export interface InvocationVerdict {
  /**
   * `'success'`: every record is done. `'partial'`: Lambda retries from `checkpoint`.
   * `'failure'`: Lambda retries the whole batch (`reason` says why).
   */
  readonly outcome: 'success' | 'partial' | 'failure'
  /** The shard of the batch (Lambda sends the records of one shard per invocation). */
  readonly shardId: string
  /** Sequence numbers of the records Lambda checkpoints past: done, never delivered again. */
  readonly done: string[]
  /** Sequence numbers of the records Lambda delivers again, in batch order. */
  readonly retried: string[]
  /** The sequence number Lambda retries from (the first of `retried`); `undefined` when none. */
  readonly checkpoint: string | undefined
  /**
   * Records the answer reported failed while `reportBatchItemFailures` is off: Lambda took the
   * answer as a success and checkpoints past them, so they are lost. Part of `done`.
   */
  readonly dropped: string[]
  /** Why Lambda retries the whole batch, for `'failure'`. */
  readonly reason: string | undefined
}

export interface Invocation<R> {
  /** What the handler answered; `undefined` when it threw. */
  readonly response: R | undefined
  /** True when the handler threw or its promise rejected; `error` is what it threw. */
  readonly threw: boolean
  readonly error: unknown
  readonly verdict: InvocationVerdict
}

/**
 * Invokes `handler` with a copy of `event` (so that invoking again with the same event is a
 * fresh delivery, as a retry is) and `context` (default: 60 s remaining), and judges its answer
 * as Lambda reads it, in JSON. A handler that has not answered when the context has no time
 * left, or answers after that, timed out: Lambda stopped the function and retries the whole
 * batch. `invoke` does not wait for a handler past that time (it cannot stop it either).
 *
 * @example
 * const { verdict } = await invoke(handler, kinesisEvent(['{"id":1}', 'not json']))
 * expect(verdict.retried).toEqual([sequenceNumber(1)])
 */
export async function invoke<R>(
  handler: (event: KinesisStreamEvent, context: Context) => R | Promise<R>,
  event: KinesisStreamEvent,
  context: Context = lambdaContext(),
  options: InvokeOptions = {},
): Promise<Invocation<Awaited<R>>> {
  const { shardId, sequenceNumbers } = batchOf(event)
  const answer = await answerWithin(handler, structuredClone(event), context)
  const timedOut =
    answer === TIMED_OUT || ('returned' in answer && context.getRemainingTimeInMillis() <= 0)
  const records = sequenceNumbers.map((sequenceNumber) => ({ sequenceNumber }))
  const rules = {
    reportBatchItemFailures: options.reportBatchItemFailures ?? true,
    tumblingWindow: typeof (event as { window?: unknown }).window === 'object',
  }
  let verdict: Verdict
  let ignored: ReturnType<typeof ignoredFailures>
  if (timedOut) {
    verdict = {
      kind: 'failure',
      reason: `the handler ${answer === TIMED_OUT ? 'had not answered when' : 'answered after'} the context had no time left: Lambda stops it at its timeout`,
      functionError: 'Unhandled',
    }
  } else {
    const read = 'returned' in answer ? lambdaReads(answer.returned) : answer
    verdict = judge(read, records, rules)
    ignored = ignoredFailures(read, records, rules)
  }
  const threw = answer !== TIMED_OUT && 'thrown' in answer
  return {
    response:
      answer !== TIMED_OUT && 'returned' in answer ? (answer.returned as Awaited<R>) : undefined,
    threw,
    error: threw ? (answer as { thrown: unknown }).thrown : undefined,
    verdict: verdictOf(verdict, shardId, sequenceNumbers, ignored?.from),
  }
}

const TIMED_OUT = Symbol('timed out')

/** The handler's answer, or `TIMED_OUT` when it has none once the context has no time left. */
async function answerWithin<R>(
  handler: (event: KinesisStreamEvent, context: Context) => R | Promise<R>,
  event: KinesisStreamEvent,
  context: Context,
): Promise<Answer | typeof TIMED_OUT> {
  const run = (async (): Promise<Answer> => {
    try {
      return { returned: await handler(event, context) }
    } catch (thrown) {
      return { thrown }
    }
  })()
  const remaining = context.getRemainingTimeInMillis()
  // A context of one's own that keeps no deadline (NaN, Infinity) sets none.
  if (!Number.isFinite(remaining)) return run
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<typeof TIMED_OUT>((done) => {
    timer = setTimeout(done, Math.min(Math.max(0, remaining), MAX_TIMER_MS), TIMED_OUT)
  })
  try {
    return await Promise.race([run, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * What Lambda reads of what a handler returned: the runtime sends it as JSON, so what does not
 * survive that never reaches Lambda (a `toJSON`, a `String` object, an `undefined` property),
 * and an answer that cannot be written (a cycle, a BigInt, a getter that throws) fails the
 * invocation as a thrown error would.
 */
export function lambdaReads(returned: unknown): Answer {
  try {
    const json = JSON.stringify(returned)
    return { returned: json === undefined ? null : JSON.parse(json) }
  } catch (error) {
    return { thrown: new Error(`the answer is not JSON: ${messageOf(error)}`, { cause: error }) }
  }
}

function verdictOf(
  verdict: Verdict,
  shardId: string,
  sequenceNumbers: string[],
  droppedFrom = sequenceNumbers.length,
): InvocationVerdict {
  const from = doneCount(verdict, sequenceNumbers.length)
  return {
    outcome: verdict.kind,
    shardId,
    done: sequenceNumbers.slice(0, from),
    retried: sequenceNumbers.slice(from),
    checkpoint: sequenceNumbers[from],
    dropped: sequenceNumbers.slice(droppedFrom),
    reason: verdict.kind === 'failure' ? verdict.reason : undefined,
  }
}

/**
 * The shard and sequence numbers of the event's records. Lambda sends the records of one shard,
 * in sequence order: an event that is not so has no verdict Lambda could reach.
 */
function batchOf(event: KinesisStreamEvent): { shardId: string; sequenceNumbers: string[] } {
  const records = (event as Partial<KinesisStreamEvent> | null)?.Records
  if (!Array.isArray(records)) {
    throw new TypeError('@shardwise/testing: invoke needs a Kinesis event, with Records')
  }
  const shards = new Set<string>()
  const sequenceNumbers: string[] = []
  for (const [i, record] of records.entries()) {
    const sequenceNumber = record?.kinesis?.sequenceNumber
    const eventID = record?.eventID
    // An empty sequence number names no record: Lambda never sends one, and its verdict could
    // not tell a checkpoint at it from none.
    if (
      typeof sequenceNumber !== 'string' ||
      sequenceNumber === '' ||
      typeof eventID !== 'string'
    ) {
      throw new TypeError(
        `@shardwise/testing: Records[${i}] has no kinesis.sequenceNumber or eventID; invoke judges Kinesis events as Lambda sends them (build them with kinesisEvent)`,
      )
    }
    const previous = sequenceNumbers[i - 1]
    if (previous === sequenceNumber) {
      throw new TypeError(
        `@shardwise/testing: Records[${i}] repeats the sequence number of Records[${i - 1}] (${sequenceNumber}); Lambda sends each Kinesis record once per batch, and the user records of a KPL aggregate share its one record: build it with kplAggregate`,
      )
    }
    if (previous !== undefined && compareSequenceNumbers(previous, sequenceNumber) >= 0) {
      throw new TypeError(
        `@shardwise/testing: Records[${i}] (${sequenceNumber}) does not come after Records[${i - 1}] (${previous}); Lambda sends a shard's records in sequence order`,
      )
    }
    shards.add(eventID.split(':')[0] as string)
    sequenceNumbers.push(sequenceNumber)
  }
  if (shards.size > 1) {
    throw new TypeError(
      `@shardwise/testing: the event holds records of ${[...shards].join(', ')}; Lambda sends the records of one shard per invocation: invoke once per shard`,
    )
  }
  return { shardId: [...shards][0] ?? '', sequenceNumbers }
}
