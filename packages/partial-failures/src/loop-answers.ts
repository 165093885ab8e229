/**
 * What `partialFailures` needs to know of the record loops (`eachRecord`, `foldWindow`): which
 * batch a loop ran on, and the answer it gave, so that an answer replaced on the way back is
 * noticed; and the state a tumbling window's answer must carry on.
 */
import { isObjectLike, type RecordBatch } from '@shardwise/core'

/**
 * The state to carry on when the event is one of a tumbling window (`undefined` when it is
 * not): the one Lambda sent, or `{}` when it sent none.
 */
export function windowStateOf(event: unknown): object | undefined {
  const windowEvent = event as { window?: unknown; state?: unknown } | null | undefined
  if (windowEvent?.window === undefined) return undefined
  return isObjectLike(windowEvent.state) ? windowEvent.state : {}
}

/**
 * Where a record loop (`eachRecord`, `foldWindow`) leaves on the batch it ran on the answer it
 * gave, so that `partialFailures` can tell when that answer is not the one it receives: middy's
 * early timeout answered instead (its `timeoutEarlyResponse`), or another middleware replaced it.
 * Records the loop never started are then as undone as any, though no step failed them. On the
 * batch, not in a WeakMap of batches: adding an entry to a weak collection at every invocation
 * costs about a microsecond.
 */
const LOOP_ANSWER: unique symbol = Symbol('loop answer')

type Answered = { [LOOP_ANSWER]?: object }

/** The answer of the loop that ran on `batch`; `undefined` when no loop ran on it. */
export function loopAnswerOf(batch: RecordBatch<unknown>): object | undefined {
  return (batch as Answered)[LOOP_ANSWER]
}

/** What a batch holds while its loop has not answered. */
export const NOT_ANSWERED: object = Object.freeze({})

/** Called as a loop starts on `batch`: until it answers, an answer received is not its own. */
export function notAnswered(batch: RecordBatch<unknown>): void {
  ;(batch as Answered)[LOOP_ANSWER] = NOT_ANSWERED
}

/** Called with the loop's answer, which it returns. */
export function answered<A extends object>(batch: RecordBatch<unknown>, answer: A): A {
  ;(batch as Answered)[LOOP_ANSWER] = answer
  return answer
}
