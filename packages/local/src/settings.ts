/**
 * The event source mapping's settings, named and bounded as in Lambda's
 * `CreateEventSourceMapping` (AWS docs, "services-kinesis-parameters"), checked once.
 */
import { ConfigurationError, checkOptions, type OptionRules, option } from '@shardwise/core'
import { type FilterCriteria, type ParsedFilterCriteria, parseFilterCriteria } from './filter.js'

const pkg = '@shardwise/local'

export type StartingPosition = 'TRIM_HORIZON' | 'LATEST' | 'AT_TIMESTAMP'

export interface MappingSettings {
  /** Records per invocation at most: 1 to 10,000. Default 100. */
  batchSize?: number
  /** Seconds to gather records before invoking: 0 to 300. Default 0. */
  maximumBatchingWindowInSeconds?: number
  /** Where to start reading each shard. Default `'TRIM_HORIZON'` (Lambda has no default). */
  startingPosition?: StartingPosition
  /** Epoch seconds; required with `AT_TIMESTAMP`, rejected otherwise. */
  startingPositionTimestamp?: number
  /** `['ReportBatchItemFailures']` makes the mapping read `batchItemFailures`. Default `[]`. */
  functionResponseTypes?: ReadonlyArray<'ReportBatchItemFailures'>
  /** Split a failed batch in two before retrying. Default `false`. */
  bisectBatchOnFunctionError?: boolean
  /** -1 (infinite) or 0 to 10,000. Default -1. */
  maximumRetryAttempts?: number
  /** -1 (infinite) or 60 to 604,800. Default -1. */
  maximumRecordAgeInSeconds?: number
  /** Concurrent batches per shard, keyed by partition key: 1 to 10. Default 1. */
  parallelizationFactor?: number
  /** 0 (off) to 900. Default 0. */
  tumblingWindowInSeconds?: number
  /**
   * Event filtering: only records that match one of the filters are invoked; the others are
   * skipped. The object (or its JSON text) that `--filter-criteria` takes. Default: none.
   */
  filterCriteria?: FilterCriteria | string
}

/** The settings with every default applied. */
export interface ResolvedSettings {
  batchSize: number
  maximumBatchingWindowInSeconds: number
  startingPosition: StartingPosition
  startingPositionTimestamp: number | undefined
  reportBatchItemFailures: boolean
  bisectBatchOnFunctionError: boolean
  maximumRetryAttempts: number
  maximumRecordAgeInSeconds: number
  parallelizationFactor: number
  tumblingWindowInSeconds: number
  /** `undefined` when no filter is set: every record is invoked. */
  filterCriteria: ParsedFilterCriteria | undefined
}

const rules: OptionRules = {
  batchSize: option.integer(1, 10_000),
  maximumBatchingWindowInSeconds: option.integer(0, 300),
  startingPosition: option.oneOf('TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'),
  startingPositionTimestamp: option.number(0),
  functionResponseTypes: option.arrayOf(option.oneOf('ReportBatchItemFailures')),
  bisectBatchOnFunctionError: option.boolean,
  maximumRetryAttempts: option.integer(-1, 10_000),
  maximumRecordAgeInSeconds: option.integer(-1, 604_800),
  parallelizationFactor: option.integer(1, 10),
  tumblingWindowInSeconds: option.integer(0, 900),
  // Checked by parseFilterCriteria, whose errors name the filter and the field.
  filterCriteria: () => undefined,
}

export function resolveSettings(settings: MappingSettings | undefined): ResolvedSettings {
  const s = checkOptions(pkg, rules, settings)
  const age = s.maximumRecordAgeInSeconds ?? -1
  // Lambda refuses 0 to 59: a record younger than a minute is never too old.
  if (age !== -1 && age < 60) {
    throw new ConfigurationError(
      `${pkg}: maximumRecordAgeInSeconds must be -1 (infinite) or 60 to 604800, got ${age}`,
    )
  }
  const startingPosition = s.startingPosition ?? 'TRIM_HORIZON'
  if ((startingPosition === 'AT_TIMESTAMP') !== (s.startingPositionTimestamp !== undefined)) {
    throw new ConfigurationError(
      `${pkg}: startingPositionTimestamp goes with startingPosition AT_TIMESTAMP, and only with it`,
    )
  }
  return {
    batchSize: s.batchSize ?? 100,
    maximumBatchingWindowInSeconds: s.maximumBatchingWindowInSeconds ?? 0,
    startingPosition,
    startingPositionTimestamp: s.startingPositionTimestamp,
    reportBatchItemFailures: (s.functionResponseTypes ?? []).includes('ReportBatchItemFailures'),
    bisectBatchOnFunctionError: s.bisectBatchOnFunctionError ?? false,
    maximumRetryAttempts: s.maximumRetryAttempts ?? -1,
    maximumRecordAgeInSeconds: age,
    parallelizationFactor: s.parallelizationFactor ?? 1,
    tumblingWindowInSeconds: s.tumblingWindowInSeconds ?? 0,
    filterCriteria: filters(s.filterCriteria as FilterCriteria | string | undefined),
  }
}

/** Criteria without a filter (`{}`, `{"Filters": []}`) filter nothing, as in Lambda. */
function filters(input: FilterCriteria | string | undefined): ParsedFilterCriteria | undefined {
  if (input === undefined) return undefined
  const parsed = parseFilterCriteria(input)
  return parsed.filters.length > 0 ? parsed : undefined
}
