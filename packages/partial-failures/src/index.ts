export {
  ConfigurationError,
  type DecodedEvent,
  DecodeError,
  type KinesisRecord,
  NonRetryableError,
  ParseError,
  type PoisonSink,
  RecordError,
  RecordHandlerError,
  ValidationError,
} from '@shardwise/core'
export {
  type BatchHandler,
  type EachRecordOptions,
  eachRecord,
} from './each-record.js'
export {
  type FoldWindowOptions,
  foldWindow,
  WindowEndError,
  type WindowHandler,
  type WindowInfo,
  type WindowReduce,
} from './fold-window.js'
export {
  type Logger,
  type PartialFailuresOptions,
  partialFailures,
  type Stage,
} from './partial-failures.js'
export {
  type Ordering,
  PoisonSinkError,
  type RecordHandler,
  type RecordHandlerOptions,
  TimeoutError,
} from './run-batch.js'
