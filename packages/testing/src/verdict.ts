/**
 * What Lambda makes of a function's answer to a Kinesis batch (AWS docs,
 * "services-kinesis-batchfailurereporting" and "services-kinesis-windows"), paraphrased:
 *
 * - Without `ReportBatchItemFailures`, Lambda "checkpoints to the highest sequence number of a
 *   batch only when the batch is a complete success"; any answer is a success, a thrown error a
 *   complete failure.
 * - With it, an empty or null `batchItemFailures` list, or an empty or null response, is a
 *   complete success; an `itemIdentifier` that is an empty string, null, or under a bad key name
 *   is a complete failure.
 * - Undocumented, judged as the failure that cannot lose a record: an identifier that is not in
 *   the batch, and an answer that is neither empty nor an object (a string, a number, a list of
 *   items). AWS recorded an empty string and an empty list as successes.
 * - "Lambda uses the record with the lowest sequence number as the checkpoint. Lambda then
 *   retries all records starting from that checkpoint."
 * - With a tumbling window, an answer without a `state` property is a failed invocation.
 */
import { compareSequenceNumbers, messageOf } from '@shardwise/core'

/** What the verdict reads of a batch's records, in batch order: their sequence numbers. */
export interface BatchRecord {
  readonly sequenceNumber: string
}

/** The most state a tumbling window may carry; more terminates the window early. */
export const MAX_STATE_BYTES = 1024 * 1024

export type Verdict =
  | { readonly kind: 'success'; readonly state?: unknown; readonly stateBytes?: number }
  /** `checkpoint`: position in the batch of the lowest reported record; everything before it is done. */
  | {
      readonly kind: 'partial'
      readonly checkpoint: number
      readonly state?: unknown
      readonly stateBytes?: number
    }
  /** The whole batch failed; `reason` says why, for the log and the on-failure destination. */
  | { readonly kind: 'failure'; readonly reason: string; readonly functionError: FunctionError }

/**
 * The on-failure document's `responseContext.functionError`: `Unhandled` when the function
 * threw or timed out, `null` when it answered and Lambda did not take the answer (AWS's
 * recording: `null` for `batchItemFailures` with an empty, null, misnamed or unknown identifier).
 */
export type FunctionError = 'Unhandled' | null

export interface VerdictRules {
  reportBatchItemFailures: boolean
  tumblingWindow: boolean
}

/** The answer of an invocation: what the handler returned, or what it threw. */
export type Answer = { readonly returned: unknown } | { readonly thrown: unknown }

export function judge(
  answer: Answer,
  records: ReadonlyArray<BatchRecord>,
  rules: VerdictRules,
): Verdict {
  if ('thrown' in answer) {
    return { kind: 'failure', reason: messageOf(answer.thrown), functionError: 'Unhandled' }
  }
  const response = answer.returned as Record<string, unknown> | null | undefined

  let state: unknown
  let stateBytes = 0
  if (rules.tumblingWindow) {
    if (typeof response !== 'object' || response === null || !('state' in response)) {
      return invalid('a tumbling window needs the answer to carry `state`')
    }
    state = response.state
    const json = JSON.stringify(state)
    stateBytes = json === undefined ? 0 : Buffer.byteLength(json)
  }
  const withState = rules.tumblingWindow ? { state, stateBytes } : {}

  if (!rules.reportBatchItemFailures) return { kind: 'success', ...withState }
  if (isEmptyAnswer(response)) return { kind: 'success', ...withState }
  if (typeof response !== 'object' || response === null || Array.isArray(response)) {
    // Undocumented in Lambda; failing the batch is the choice that cannot lose a record.
    return invalid(
      `the answer is ${describeAnswer(response)}, not an object with batchItemFailures; Lambda retries the whole batch`,
    )
  }
  const failures = response.batchItemFailures
  if (failures === undefined || failures === null) return { kind: 'success', ...withState }
  if (!Array.isArray(failures)) return invalid('`batchItemFailures` is not an array')
  if (failures.length === 0) return { kind: 'success', ...withState }

  let checkpoint = records.length
  for (let i = 0; i < failures.length; i++) {
    const item = failures[i] as { itemIdentifier?: unknown } | null
    const id = typeof item === 'object' && item !== null ? item.itemIdentifier : undefined
    if (typeof id !== 'string' || id === '') {
      return invalid(
        `batchItemFailures[${i}] has ${describeIdentifier(item)}; Lambda retries the whole batch`,
      )
    }
    const position = indexOf(records, id)
    if (position === -1) {
      // Undocumented in Lambda, whichever identifier it is, the lowest or not; failing the batch
      // is the choice that cannot lose a record.
      return invalid(
        `batchItemFailures[${i}] names ${id}, which is not in the batch; Lambda retries the whole batch`,
      )
    }
    if (position < checkpoint) checkpoint = position
  }
  return { kind: 'partial', checkpoint, ...withState }
}

/** How many of a batch's `count` records a verdict leaves done: those before its checkpoint. */
export function doneCount(verdict: Verdict, count: number): number {
  return verdict.kind === 'success' ? count : verdict.kind === 'partial' ? verdict.checkpoint : 0
}

function invalid(reason: string): Verdict {
  return { kind: 'failure', reason, functionError: null }
}

/**
 * The records an answer reports failed while `ReportBatchItemFailures` is off: Lambda takes the
 * answer as a success and checkpoints past them, so they are dropped. `from` is the first of
 * them (the checkpoint the answer would have set with the setting on); `undefined` when the
 * answer reports nothing, the setting is on, or the invocation failed anyway.
 */
export function ignoredFailures(
  answer: Answer,
  records: ReadonlyArray<BatchRecord>,
  rules: VerdictRules,
): { readonly from: number; readonly count: number } | undefined {
  if (rules.reportBatchItemFailures || judge(answer, records, rules).kind !== 'success') {
    return undefined
  }
  const reported = judge(answer, records, { ...rules, reportBatchItemFailures: true })
  if (reported.kind === 'success' || !hasFailureList(answer)) return undefined
  const from = reported.kind === 'partial' ? reported.checkpoint : 0
  return from < records.length ? { from, count: records.length - from } : undefined
}

/**
 * The answers AWS documents or recorded as a complete success: none, null, an empty string
 * (recorded: empty_string_success), an empty list (empty_list_success).
 */
function isEmptyAnswer(response: unknown): boolean {
  return (
    response === undefined ||
    response === null ||
    response === '' ||
    (Array.isArray(response) && response.length === 0)
  )
}

function describeAnswer(response: unknown): string {
  if (Array.isArray(response)) return `an array of ${response.length} item(s)`
  if (typeof response === 'string') return `the string ${JSON.stringify(response.slice(0, 80))}`
  if (typeof response === 'number' || typeof response === 'boolean' || typeof response === 'bigint')
    return `the ${typeof response} ${String(response)}`
  return `a ${typeof response}`
}

function describeIdentifier(item: { itemIdentifier?: unknown } | null): string {
  if (typeof item !== 'object' || item === null) return `no object but ${JSON.stringify(item)}`
  if (!('itemIdentifier' in item)) {
    return `no itemIdentifier (keys: ${Object.keys(item).join(', ') || 'none'})`
  }
  return `itemIdentifier ${JSON.stringify(item.itemIdentifier)}`
}

/** Whether the answer holds a `batchItemFailures`: an answer that is not an object reports nothing. */
function hasFailureList(answer: Answer): boolean {
  if (!('returned' in answer)) return false
  const response = answer.returned
  return (
    typeof response === 'object' &&
    response !== null &&
    !Array.isArray(response) &&
    'batchItemFailures' in response
  )
}

/** Records of a batch are in sequence order, so a binary search finds the identifier. */
function indexOf(records: ReadonlyArray<BatchRecord>, sequenceNumber: string): number {
  let low = 0
  let high = records.length - 1
  while (low <= high) {
    const mid = (low + high) >> 1
    const c = compareSequenceNumbers((records[mid] as BatchRecord).sequenceNumber, sequenceNumber)
    if (c === 0) return mid
    if (c < 0) low = mid + 1
    else high = mid - 1
  }
  return -1
}
