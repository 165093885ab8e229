/** Records for the tests of the rules: no stream needed. */
import { sequenceNumber } from '@shardwise/testing'
import { vi } from 'vitest'
import { type PendingRecord, type RecordSource, toPendingRecord } from './event.js'

export { sequenceNumber }

export const source: RecordSource = {
  shardId: 'shardId-000000000006',
  streamArn: 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream',
  region: 'us-east-2',
  invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
}

export function records(
  count: number,
  options: {
    arrivalMs?: (i: number) => number
    key?: (i: number) => string
    readMs?: number
    bytes?: number
  } = {},
): PendingRecord[] {
  const out: PendingRecord[] = []
  for (let i = 0; i < count; i++) {
    out.push(
      toPendingRecord(
        {
          SequenceNumber: sequenceNumber(i),
          ApproximateArrivalTimestamp: new Date(options.arrivalMs?.(i) ?? 1_545_084_650_987 + i),
          Data: new Uint8Array(options.bytes ?? 8).fill(65 + (i % 26)),
          PartitionKey: options.key?.(i) ?? `key-${i % 3}`,
        },
        source,
        options.readMs ?? 0,
      ),
    )
  }
  return out
}

/** Captures what a CLI command writes to stdout and stderr (restore with vi.restoreAllMocks). */
export function capture(): { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk)
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk)
    return true
  })
  return { out: () => out, err: () => err }
}
