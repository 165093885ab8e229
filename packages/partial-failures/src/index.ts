export {
  type DecodedEvent,
  type KinesisRecord,
  NonRetryableError,
  RecordError,
  RecordHandlerError,
} from '@shardwise/core'
export {
  type BatchHandler,
  type EachRecordOptions,
  eachRecord,
  type Ordering,
  type RecordHandler,
  type RecordHandlerOptions,
} from './each-record.js'
export { type Logger, type PartialFailuresOptions, partialFailures } from './partial-failures.js'
