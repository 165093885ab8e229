/**
 * Testing a Kinesis handler without AWS: build the event Lambda would send (text, JSON, bytes,
 * KPL aggregates, gzip and zstd payloads, AWS's sample), a context with the remaining time you
 * choose, then `invoke` the handler and assert on what Lambda would do with each record: which
 * it checkpoints past, which it delivers again, and why.
 */
export { type FakeClock, lambdaContext, recordingLogger, settleOnFakeClock } from './context.js'
export {
  awsSampleEvent,
  gzip,
  kinesisEvent,
  kinesisRecord,
  type Payload,
  payloadBytes,
  type RecordSpec,
  SHARD_ID,
  STREAM_ARN,
  sequenceNumber,
  windowEvent,
  zstd,
} from './events.js'
export {
  type Invocation,
  type InvocationVerdict,
  type InvokeOptions,
  invoke,
  lambdaReads,
} from './invoke.js'
export { kplAggregate, kplFraming, type UserRecord } from './kpl.js'
export {
  type Answer,
  type BatchRecord,
  doneCount,
  type FunctionError,
  ignoredFailures,
  judge,
  MAX_STATE_BYTES,
  type Verdict,
  type VerdictRules,
} from './verdict.js'
