/**
 * What Lambda would do with one answer to one batch, in words: where it checkpoints, what it
 * retries, and what it would drop without `ReportBatchItemFailures`. The decision itself is
 * `judge` (verdict.ts), the same the mapping applies; this only tells it.
 */
import type { KinesisStreamRecord } from '@shardwise/core'
import { messageOf, propertyOf } from '@shardwise/core'
import { type Answer, ignoredFailures, judge, type Verdict } from '@shardwise/testing'
import type { PendingRecord } from './event.js'

export interface ExplainSettings {
  reportBatchItemFailures: boolean
  bisectBatchOnFunctionError: boolean
  tumblingWindow: boolean
}

export interface Explanation {
  /** `success`: Lambda checkpoints the whole batch; otherwise it retries some records. */
  outcome: Verdict['kind']
  verdict: Verdict
  /** Records Lambda would invoke again: from the checkpoint to the end of the batch. */
  retried: number
  /**
   * Records the function reported failed that Lambda would still checkpoint past, because
   * `ReportBatchItemFailures` is off (or would be, when it is on: see `droppedWithoutSetting`).
   */
  dropped: number
  /** With the setting on: how many records the same answer would lose without it. */
  droppedWithoutSetting: number
  /** The explanation, one sentence a line. */
  lines: string[]
}

/** A batch as a saved event holds it: enough of `PendingRecord` for the rules. */
export function pendingOf(record: KinesisStreamRecord): PendingRecord {
  const json = JSON.stringify(record)
  return {
    lambda: record,
    sequenceNumber: record.kinesis.sequenceNumber,
    partitionKey: record.kinesis.partitionKey,
    arrivalMs: Math.round(record.kinesis.approximateArrivalTimestamp * 1000),
    bytes: Buffer.byteLength(json),
    readMs: Date.now(),
  }
}

/** `shardId-000000000006 49590338...898 (partition key 1)`: where a record is. */
export function describeRecord(record: PendingRecord): string {
  const shard = record.lambda.eventID.split(':')[0]
  return `${shard} ${record.sequenceNumber} (partition key ${record.partitionKey})`
}

export function explainAnswer(
  answer: Answer,
  records: ReadonlyArray<PendingRecord>,
  settings: ExplainSettings,
): Explanation {
  const rules = {
    reportBatchItemFailures: settings.reportBatchItemFailures,
    tumblingWindow: settings.tumblingWindow,
  }
  const verdict = judge(answer, records, rules)
  const n = records.length
  const lines: string[] = []
  let retried = 0
  let dropped = 0
  let droppedWithoutSetting = 0
  const at = (i: number) => describeRecord(records[i] as PendingRecord)

  if (verdict.kind === 'success') {
    lines.push(
      n === 0
        ? 'Success: the window closes (a final invocation carries no records).'
        : `Success: Lambda checkpoints the whole batch, ${n} record(s), up to ${at(n - 1)}.`,
    )
    // What the function meant, which Lambda ignores without the setting.
    const ignored = ignoredFailures(answer, records, rules)
    if (ignored !== undefined) {
      dropped = ignored.count
      lines.push(
        `The answer carries batchItemFailures, but ReportBatchItemFailures is off: Lambda ignores ` +
          `them and drops ${dropped} record(s) the function did not finish, from ${at(ignored.from)}. ` +
          'Deploy with --function-response-types ReportBatchItemFailures.',
      )
    }
  } else if (verdict.kind === 'partial') {
    const k = verdict.checkpoint
    retried = n - k
    lines.push(
      k === 0
        ? `Partial failure at the first record: Lambda checkpoints nothing and retries all ${n} record(s) from ${at(0)}.`
        : `Partial failure: Lambda checkpoints ${k} record(s), up to ${at(k - 1)}, and retries the ${retried} from ${at(k)}.`,
    )
    if (!settings.bisectBatchOnFunctionError) {
      lines.push(
        'The retry reads the shard again from the checkpoint, so it may carry newer records too.',
      )
    } else if (k > 0) {
      lines.push(
        `With BisectBatchOnFunctionError the batch is bisected at ${records[k]?.sequenceNumber}: the retry carries only those ${retried} record(s).`,
      )
    } else {
      lines.push(
        'With BisectBatchOnFunctionError there is nothing to split off before the first record: the batch is halved, as a failed one is.',
      )
    }
    droppedWithoutSetting = retried
    lines.push(
      `Without ReportBatchItemFailures, Lambda would take this answer as a success and drop those ${retried} record(s).`,
    )
  } else {
    retried = n
    lines.push(
      `Failure (${failureKind(answer, verdict.reason)}: ${verdict.reason}): Lambda checkpoints nothing and retries all ${n} record(s) from ${n > 0 ? at(0) : 'the window'}.`,
    )
    if (settings.bisectBatchOnFunctionError && n > 1) {
      const half = Math.ceil(n / 2)
      lines.push(
        `With BisectBatchOnFunctionError it splits the batch into ${half} and ${n - half} record(s) and retries each half; a split does not use up a retry.`,
      )
    }
    if (settings.reportBatchItemFailures && 'thrown' in answer) {
      lines.push('A thrown error fails the whole batch even with ReportBatchItemFailures.')
    }
  }
  if (verdict.kind !== 'success') {
    lines.push(
      'Retries go on until MaximumRetryAttempts or MaximumRecordAgeInSeconds (by default until ' +
        'the records expire, blocking the shard); then the batch goes to the on-failure ' +
        'destination, if one is set, or is dropped.',
    )
  }
  return { outcome: verdict.kind, verdict, retried, dropped, droppedWithoutSetting, lines }
}

function failureKind(answer: Answer, reason: string): string {
  if (!('thrown' in answer)) return 'Lambda rejects the answer'
  return reason.startsWith('Task timed out') ? 'the function timed out' : 'the function threw'
}

/** The answer as Lambda would log it: JSON, or the error a thrown value becomes. */
export function describeAnswer(answer: Answer): string {
  if ('returned' in answer) return JSON.stringify(answer.returned)
  const thrownName = propertyOf(answer.thrown, 'name')
  const name = typeof thrownName === 'string' ? thrownName : 'Error'
  return `threw ${name}: ${messageOf(answer.thrown)}`
}
