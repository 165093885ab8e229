/**
 * `@shardwise/local`: a local Kinesis event source mapping. It reads a real stream (the embedded
 * kinesalite, LocalStack, or AWS), builds the events Lambda builds, invokes a handler with a
 * Lambda-like context, and applies the mapping's settings with Lambda's rules.
 */

export {
  type CheckOptions,
  checkMapping,
  DEFAULT_RECORD_SIZE_BYTES,
  DEFAULT_TIMEOUT_MARGIN_MS,
  type Finding,
  LambdaApiError,
  type ReadDeployedOptions,
  readDeployedMappings,
  type Severity,
} from './check-mapping.js'
export {
  type Destination,
  type InvocationRecord,
  jsonLinesDestination,
} from './destination.js'
export type { MappingEvent, WindowProperties } from './event.js'
export {
  type FilterCriteria,
  matchesFilterCriteria,
  type ParsedFilterCriteria,
  type ParseFilterOptions,
  parseFilterCriteria,
} from './filter.js'
export { type KinesisHandler, loadHandler } from './invoke.js'
export { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
export {
  type MappingClock,
  type MappingStats,
  type RunOptions,
  runMapping,
  type ShardLag,
  STOP_WITHIN_MS,
} from './mapping.js'
export { type ProducedRecord, type ProduceOptions, produce } from './produce.js'
export type { MappingSettings, StartingPosition } from './settings.js'
export {
  type DeployedMapping,
  type MappingOrigin,
  type ReadTemplateOptions,
  readTemplate,
  type SettingName,
  TemplateError,
} from './template.js'
