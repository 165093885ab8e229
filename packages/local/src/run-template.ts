/**
 * `shardwise run --template <file> --function <id>`: the mapping's settings read from the
 * template that deploys it (`template.ts`), so a local run uses what will be deployed. Flags
 * given as well override the template's values; the start line says where each setting came from.
 */
import { text, UsageError, type Values } from './cli-args.js'
import { type MappingSettings, resolveSettings } from './settings.js'
import { type DeployedMapping, readTemplate, type SettingName, TemplateError } from './template.js'

export interface TemplateRun {
  /** The template's settings with the flags' on top. */
  mapping: MappingSettings
  timeoutSeconds: number | undefined
  stream: string
  /** What the run prints first: each setting, its value and where it came from. */
  startLines: string
}

/**
 * The run's settings from `--template` and `--function`, or undefined without `--template`.
 * `flags` holds the mapping settings given as flags, which win.
 */
export function templateRun(values: Values, flags: MappingSettings): TemplateRun | undefined {
  const path = text(values, 'template')
  const fn = text(values, 'function')
  if (path === undefined) {
    if (fn !== undefined) throw new UsageError('--function goes with --template <file>')
    return undefined
  }
  const mapping = chooseMapping(path, fn, text(values, 'stream'))
  const stream = text(values, 'stream') ?? mapping.streamName
  if (stream === undefined) {
    throw new UsageError(
      `--stream is required: ${path} does not name the stream of ${mapping.function} (${mapping.eventSource}), so its name is only known once deployed`,
    )
  }
  const settings: MappingSettings = { ...mapping.settings, ...flags }
  const timeoutSeconds = text(values, 'timeout') === undefined ? mapping.timeoutSeconds : undefined
  return {
    mapping: settings,
    timeoutSeconds,
    stream,
    startLines: startLines(mapping, settings, values, stream, timeoutSeconds),
  }
}

function chooseMapping(path: string, fn: string | undefined, stream: string | undefined) {
  let found: DeployedMapping[]
  try {
    found = readTemplate(path, fn === undefined ? {} : { function: fn })
  } catch (error) {
    if (error instanceof TemplateError) throw new UsageError(`--template: ${error.message}`)
    throw error
  }
  const chosen =
    found.length > 1 && stream !== undefined ? found.filter((m) => m.streamName === stream) : found
  if (chosen.length === 1) return chosen[0] as DeployedMapping
  const list = found.map((m) => `${m.function} <- ${m.streamName ?? m.eventSource}`).join(', ')
  throw new UsageError(
    `${path} has ${found.length} Kinesis mappings (${list}): choose one with --function <id>${fn === undefined ? '' : ' and --stream <name>'}`,
  )
}

/** Each setting the run uses, on a line of its own, with where it came from. */
function startLines(
  mapping: DeployedMapping,
  settings: MappingSettings,
  values: Values,
  stream: string,
  timeoutSeconds: number | undefined,
): string {
  const s = resolveSettings(settings)
  const from = (key: SettingName, flag: string): string => {
    if (values[flag] !== undefined) return `--${flag}`
    const source = mapping.sources[key]
    if (source !== undefined) return source
    const unresolved = mapping.unresolved[key]
    return unresolved === undefined
      ? "Lambda's default"
      : `Lambda's default, as ${unresolved}: pass --${flag}`
  }
  const onOff = (on: boolean) => (on ? 'on' : 'off')
  const infinite = (n: number) => (n === -1 ? '-1 (infinite)' : String(n))
  const rows: Array<[string, string, string]> = [
    ['stream', stream, values.stream !== undefined ? '--stream' : 'the stream resource or ARN'],
    ['batch size', String(s.batchSize), from('batchSize', 'batch-size')],
    [
      'batching window',
      `${s.maximumBatchingWindowInSeconds} s`,
      from('maximumBatchingWindowInSeconds', 'maximum-batching-window-in-seconds'),
    ],
    [
      'starting position',
      s.startingPosition +
        (s.startingPositionTimestamp === undefined ? '' : ` ${s.startingPositionTimestamp}`),
      from('startingPosition', 'starting-position'),
    ],
    [
      'ReportBatchItemFailures',
      onOff(s.reportBatchItemFailures),
      from('functionResponseTypes', 'function-response-types'),
    ],
    [
      'bisect on function error',
      onOff(s.bisectBatchOnFunctionError),
      from('bisectBatchOnFunctionError', 'bisect-batch-on-function-error'),
    ],
    [
      'maximum retry attempts',
      infinite(s.maximumRetryAttempts),
      from('maximumRetryAttempts', 'maximum-retry-attempts'),
    ],
    [
      'maximum record age',
      s.maximumRecordAgeInSeconds === -1 ? '-1 (infinite)' : `${s.maximumRecordAgeInSeconds} s`,
      from('maximumRecordAgeInSeconds', 'maximum-record-age-in-seconds'),
    ],
    [
      'parallelization factor',
      String(s.parallelizationFactor),
      from('parallelizationFactor', 'parallelization-factor'),
    ],
    [
      'tumbling window',
      s.tumblingWindowInSeconds === 0 ? 'off' : `${s.tumblingWindowInSeconds} s`,
      from('tumblingWindowInSeconds', 'tumbling-window-in-seconds'),
    ],
    [
      'filter criteria',
      s.filterCriteria === undefined ? 'none' : `${s.filterCriteria.filters.length} filter(s)`,
      from('filterCriteria', 'filter-criteria'),
    ],
    [
      'function timeout',
      `${timeoutSeconds ?? text(values, 'timeout') ?? 3} s`,
      values.timeout !== undefined
        ? '--timeout'
        : (mapping.sources.timeoutSeconds ??
          "the function is not in the template: Lambda's default"),
    ],
    [
      'on-failure destination',
      text(values, 'on-failure') ?? 'none kept locally',
      values['on-failure'] !== undefined
        ? `--on-failure, for ${mapping.onFailureDestination ?? 'none in the template'}`
        : mapping.onFailureDestination === undefined
          ? 'none in the template'
          : `the template sends to ${mapping.onFailureDestination}: pass --on-failure <file> to keep what would go there`,
    ],
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const lines = rows.map(
    ([label, value, source]) => `  ${label.padEnd(width)}  ${value} (${source})`,
  )
  const disabled = mapping.enabled ? '' : ' (disabled in the template: run anyway)'
  return `mapping of ${mapping.function} from ${mapping.where}${disabled}\n${lines.join('\n')}\n`
}
