/**
 * What `partialFailures` needs to know of the record loops (`eachRecord`, `foldWindow`): which
 * batch a loop ran on, and the answer it gave, so that an answer replaced on the way back is
 * noticed; and the state a tumbling window's answer must carry on.
 */
import type { RecordBatch } from '@shardwise/core'

/**
 * The state to carry on when the event is one of a tumbling window (`undefined` when it is
 * not): the one Lambda sent, or `{}` when it sent none.
 */
export function windowStateOf(event: unknown): object | undefined {
  const windowEvent = event as { window?: unknown; state?: unknown } | null | undefined
  if (windowEvent?.window === undefined) return undefined
  return typeof windowEvent.state === 'object' && windowEvent.state !== null
    ? windowEvent.state
    : {}
}

/**
 * The batches a record loop (`eachRecord`, `foldWindow`) ran on, each with the answer it gave, so
 * that `partialFailures` can tell when that answer is not the one it receives: middy's early
 * timeout answered instead (its `timeoutEarlyResponse`), or another middleware replaced it.
 * Records the loop never started are then as undone as any, though no step failed them.
 */
export const loopAnswers = new WeakMap<RecordBatch<unknown>, object>()

/** What `loopAnswers` holds for a batch while its loop has not answered. */
export const NOT_ANSWERED: object = Object.freeze({})

/** Called as a loop starts on `batch`: until it answers, an answer received is not its own. */
export function notAnswered(batch: RecordBatch<unknown>): void {
  loopAnswers.set(batch, NOT_ANSWERED)
}

/** Called with the loop's answer, which it returns. */
export function answered<A extends object>(batch: RecordBatch<unknown>, answer: A): A {
  loopAnswers.set(batch, answer)
  return answer
}
