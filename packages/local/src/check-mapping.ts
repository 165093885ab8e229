/**
 * Judges a Kinesis event source mapping before a deploy (or after one): the settings without
 * which a Shardwise consumer loses records or stalls a shard, each problem with why it matters
 * and the fix, in the words of the tool that wrote the mapping. The mapping comes from a
 * template (`template.ts`) or from AWS (`readDeployedMappings`, Lambda's
 * `ListEventSourceMappings` and `GetFunctionConfiguration`).
 */
import {
  type EventSourceMappingConfiguration,
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
} from '@aws-sdk/client-lambda'
import { ConfigurationError, messageOf } from '@shardwise/core'
import { awsClientConfig } from './aws-client.js'
import {
  EVENT_OVERHEAD_BYTES,
  MAX_PAYLOAD_BYTES,
  SEPARATOR_BYTES,
  toPendingRecord,
} from './event.js'
import type { FilterCriteria } from './filter.js'
import { type ResolvedSettings, resolveSettings, type StartingPosition } from './settings.js'
import type { DeployedMapping, MappingOrigin, SettingName } from './template.js'

/** What a record's size is taken to be, without `recordSizeBytes`: a small JSON document. */
export const DEFAULT_RECORD_SIZE_BYTES = 1024
/** `partialFailures`' default `timeoutMarginMs` (`@shardwise/partial-failures`). */
export const DEFAULT_TIMEOUT_MARGIN_MS = 1000

export interface CheckOptions {
  /** The typical size of a record's data, in bytes (before base64). Default 1,024. */
  recordSizeBytes?: number
  /** The `timeoutMarginMs` the handler gives `partialFailures`. Default 1,000; 0 is no guard. */
  timeoutMarginMs?: number
}

export type Severity = 'error' | 'warning'

/** One problem of a mapping: what is wrong, why it matters, and what to change. */
export interface Finding {
  severity: Severity
  /** A stable name, for tools: `report-batch-item-failures`, `bisect-off`, ... */
  check: string
  problem: string
  why: string
  fix: string
}

/**
 * The problems of one mapping, errors first. An empty list means the mapping keeps every record
 * a Shardwise handler reports, discards none without a trace, and stalls no shard for long.
 */
export function checkMapping(mapping: DeployedMapping, options: CheckOptions = {}): Finding[] {
  const recordSize = options.recordSizeBytes ?? DEFAULT_RECORD_SIZE_BYTES
  const margin = options.timeoutMarginMs ?? DEFAULT_TIMEOUT_MARGIN_MS
  const findings: Finding[] = []
  const say = phrasing(mapping.origin)
  let s: ResolvedSettings
  try {
    s = resolveSettings(mapping.settings)
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error
    return [
      {
        severity: 'error',
        check: 'invalid-setting',
        problem: `a setting Lambda would refuse: ${messageOf(error).replace(/^@shardwise\/local: /, '')}`,
        why: 'the deploy fails, or the mapping is not what the template says; the other checks wait until it is fixed',
        fix: 'set the value within the bounds of CreateEventSourceMapping (AWS docs, "services-kinesis-parameters")',
      },
    ]
  }
  const known = (key: SettingName) => mapping.unresolved[key] === undefined
  for (const [key, reason] of Object.entries(mapping.unresolved)) {
    findings.push({
      severity: 'warning',
      check: 'unresolved',
      problem: `${key} cannot be checked: ${reason}`,
      why: 'its value is only known once deployed, so the checks that need it were skipped',
      fix: 'give the parameter a default, or check the deployed mapping with --function <name> --region <region>',
    })
  }

  if (known('functionResponseTypes') && !s.reportBatchItemFailures) {
    findings.push({
      severity: 'error',
      check: 'report-batch-item-failures',
      problem: 'ReportBatchItemFailures is off',
      why: 'Lambda then reads no answer: every invocation that returns counts as a complete success. A Shardwise handler starts nothing after a failed record and reports it, so that record and every one after it in the batch are checkpointed past without running: lost, with no error anywhere',
      fix: say.reportBatchItemFailures,
    })
  }

  const retries = s.maximumRetryAttempts
  const age = s.maximumRecordAgeInSeconds
  const bounded = [
    retries !== -1 ? `MaximumRetryAttempts is ${retries}` : undefined,
    age !== -1 ? `MaximumRecordAgeInSeconds is ${age}` : undefined,
  ].filter((x) => x !== undefined)
  if (
    known('maximumRetryAttempts') &&
    known('maximumRecordAgeInSeconds') &&
    bounded.length > 0 &&
    mapping.onFailureDestination === undefined
  ) {
    findings.push({
      severity: 'error',
      check: 'discard-without-destination',
      problem: `${bounded.join(' and ')}, with no on-failure destination`,
      why: 'when a batch runs out of retries or its records grow too old, Lambda discards it and moves on; without a destination nothing says which records were skipped, so they cannot be found or replayed',
      fix: say.destination,
    })
  }
  if (
    known('maximumRetryAttempts') &&
    known('maximumRecordAgeInSeconds') &&
    retries === -1 &&
    age === -1
  ) {
    // An error, not a warning: the stall loses more than the discard it avoids. Records behind
    // a failing batch wait on its shard until they expire from the stream, and then they are
    // gone too, every one of them, with nothing sent to any destination.
    findings.push({
      severity: 'error',
      check: 'unbounded-retries',
      problem:
        'retries are unbounded: MaximumRetryAttempts and MaximumRecordAgeInSeconds are both -1 (infinite, the default)',
      why: "a batch that always fails (a poison record that the handler throws on, a timeout, a dependency down for good) is retried until its records leave the stream: its shard stops for the stream's whole retention (24 hours by default, up to a year), and the records behind it expire unread: they are lost without a trace",
      fix: say.bounds,
    })
  }

  if (known('bisectBatchOnFunctionError') && !s.bisectBatchOnFunctionError) {
    findings.push({
      severity: 'warning',
      check: 'bisect-off',
      problem: 'BisectBatchOnFunctionError is off',
      why: 'a failure the handler does not report record by record (a throw outside the record handler, a timeout, an out-of-memory) retries the whole batch, and when the retries run out the whole batch is discarded, good records with the bad one; bisecting halves the batch until the failing record is alone, without using up retries',
      fix: say.bisect,
    })
  }

  if (known('batchSize')) findings.push(...sizeFindings(s.batchSize, recordSize, say))

  const timeout = mapping.timeoutSeconds
  if (known('timeoutSeconds') && timeout !== undefined && margin > 0) {
    const timeoutMs = timeout * 1000
    // No time at all for records is an error; less for records than kept back, a warning.
    const none = timeoutMs <= margin
    if (none || timeoutMs < 2 * margin) {
      findings.push({
        severity: none ? 'error' : 'warning',
        check: 'timeout-margin',
        problem: none
          ? `the function's timeout (${timeout} s) is not longer than the handler's timeoutMarginMs (${margin} ms)`
          : `the function's timeout (${timeout} s) leaves ${timeoutMs - margin} ms for records after the handler's timeoutMarginMs (${margin} ms)`,
        why: none
          ? 'partialFailures starts no record once the time left is under timeoutMarginMs, so every invocation answers at once with its first record failed: the shard never moves'
          : 'more than half of each invocation is kept back, so batches end early and come back as retries; a slow record can then never finish in time',
        fix: `${say.timeout(Math.ceil((margin * 3) / 1000))}, or a smaller timeoutMarginMs`,
      })
    }
  }

  if (
    known('tumblingWindowInSeconds') &&
    known('parallelizationFactor') &&
    s.tumblingWindowInSeconds > 0 &&
    s.parallelizationFactor > 1
  ) {
    findings.push({
      severity: 'error',
      check: 'tumbling-window-parallel',
      problem: `a tumbling window (${s.tumblingWindowInSeconds} s) with ParallelizationFactor ${s.parallelizationFactor}`,
      why: "a window's state is one aggregate per shard, carried from one invocation to the next; with concurrent batches of the same shard the invocations do not follow one another, so the aggregate of a window misses records or counts them in another lane's state: its result is wrong, silently",
      fix: `${say.parallelization}, or keep the parallelization and aggregate outside the window (in a table keyed by window)`,
    })
  }
  return findings.sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1))
}

/** A batch over 6 MB is cut short; a record over 6 MB alone can never be delivered. */
function sizeFindings(batchSize: number, recordSize: number, say: Phrasing): Finding[] {
  const perRecord = recordEventBytes(recordSize)
  const one = EVENT_OVERHEAD_BYTES + perRecord
  if (one > MAX_PAYLOAD_BYTES) {
    return [
      {
        severity: 'error',
        check: 'record-over-6mb',
        problem: `a record of ${bytes(recordSize)} makes an event of ${bytes(one)} alone, over Lambda's 6 MB invocation limit`,
        why: 'Lambda sends a record base64-encoded, a third larger; no invocation can carry such a record, so its shard stops on it until it expires from the stream',
        fix: 'keep records under about 4.5 MB (a reference to S3 for larger payloads), or check with the real --record-size',
      },
    ]
  }
  const batch = EVENT_OVERHEAD_BYTES + batchSize * (perRecord + SEPARATOR_BYTES) - SEPARATOR_BYTES
  if (batch <= MAX_PAYLOAD_BYTES) return []
  const fits = Math.floor(
    (MAX_PAYLOAD_BYTES - EVENT_OVERHEAD_BYTES + SEPARATOR_BYTES) / (perRecord + SEPARATOR_BYTES),
  )
  return [
    {
      severity: 'warning',
      check: 'batch-over-6mb',
      problem: `BatchSize ${batchSize} of ${bytes(recordSize)} records makes an event of about ${bytes(batch)}, over Lambda's 6 MB invocation limit (about ${fits} such records fit)`,
      why: 'Lambda cuts each batch at 6 MB, so no invocation carries the batch size: the timeout and memory chosen for it are not what runs, and the batching window waits for a batch that never fills',
      fix: `${say.batchSize(fits)}, or check with the real --record-size`,
    },
  ]
}

/** A record's bytes in the event Lambda builds, counted as the local runner counts them. */
function recordEventBytes(recordSize: number): number {
  return toPendingRecord(
    {
      SequenceNumber: '49590338271490256608559692538361571095921575989136588898',
      Data: new Uint8Array(recordSize),
      // A UUID: the partition key most producers use.
      PartitionKey: '2b5f9c3e-8a61-4d2f-9a1e-7f3c5d2e1b4a',
      ApproximateArrivalTimestamp: new Date(1_545_084_650_987),
    },
    {
      shardId: 'shardId-000000000000',
      streamArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/orders',
      region: 'us-east-1',
      invokeIdentityArn: 'arn:aws:iam::123456789012:role/consumer-role',
    },
    0,
  ).bytes
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, '')} KiB`
  return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '')} MB`
}

interface Phrasing {
  reportBatchItemFailures: string
  destination: string
  bounds: string
  bisect: string
  parallelization: string
  batchSize(n: number): string
  timeout(seconds: number): string
}

/** The fixes in the words of each tool: property names, CDK props, or the AWS CLI. */
function phrasing(origin: MappingOrigin): Phrasing {
  switch (origin) {
    case 'serverless':
      return {
        reportBatchItemFailures:
          'set functionResponseType: ReportBatchItemFailures on the stream event',
        destination:
          'set destinations: { onFailure: <SQS queue or SNS topic ARN> } on the stream event',
        bounds:
          'set maximumRetryAttempts (e.g. 10) and maximumRecordAgeInSeconds (e.g. 86400) on the stream event, with destinations.onFailure to keep what is discarded',
        bisect: 'set bisectBatchOnFunctionError: true on the stream event',
        parallelization: 'set parallelizationFactor: 1 on the stream event',
        batchSize: (n) => `set batchSize to at most ${n} on the stream event`,
        timeout: (s) => `set timeout: ${s} (seconds) on the function`,
      }
    case 'cdk':
      return {
        reportBatchItemFailures:
          "set reportBatchItemFailures: true on the KinesisEventSource (@shardwise/cdk's KinesisConsumer always does)",
        destination: 'set onFailure: new SqsDlq(queue) on the KinesisEventSource',
        bounds:
          'set retryAttempts (e.g. 10) and maxRecordAge (e.g. Duration.days(1)) on the KinesisEventSource, with an onFailure destination to keep what is discarded',
        bisect: 'set bisectBatchOnError: true on the KinesisEventSource',
        parallelization: 'set parallelizationFactor: 1 on the KinesisEventSource',
        batchSize: (n) => `set batchSize to at most ${n} on the KinesisEventSource`,
        timeout: (s) => `set timeout: Duration.seconds(${s}) on the function`,
      }
    case 'aws':
      return {
        reportBatchItemFailures:
          'aws lambda update-event-source-mapping --uuid <uuid> --function-response-types ReportBatchItemFailures (and in the code that deploys it)',
        destination:
          'aws lambda update-event-source-mapping --uuid <uuid> --destination-config \'{"OnFailure":{"Destination":"<SQS queue or SNS topic ARN>"}}\'',
        bounds:
          'aws lambda update-event-source-mapping --uuid <uuid> --maximum-retry-attempts 10 --maximum-record-age-in-seconds 86400, with an on-failure destination to keep what is discarded',
        bisect:
          'aws lambda update-event-source-mapping --uuid <uuid> --bisect-batch-on-function-error',
        parallelization:
          'aws lambda update-event-source-mapping --uuid <uuid> --parallelization-factor 1',
        batchSize: (n) => `aws lambda update-event-source-mapping --uuid <uuid> --batch-size ${n}`,
        timeout: (s) =>
          `aws lambda update-function-configuration --function-name <name> --timeout ${s}`,
      }
    default: {
      // SAM writes the mapping as the function's event of Type Kinesis, with the same names.
      const on = origin === 'sam' ? "on the function's Kinesis event" : 'on the mapping'
      return {
        reportBatchItemFailures: `set FunctionResponseTypes: [ReportBatchItemFailures] ${on}`,
        destination: `set DestinationConfig: { OnFailure: { Destination: <SQS queue or SNS topic ARN> } } ${on}`,
        bounds: `set MaximumRetryAttempts (e.g. 10) and MaximumRecordAgeInSeconds (e.g. 86400) ${on}, with DestinationConfig.OnFailure to keep what is discarded`,
        bisect: `set BisectBatchOnFunctionError: true ${on}`,
        parallelization: `set ParallelizationFactor: 1 ${on}`,
        batchSize: (n) => `set BatchSize to at most ${n} ${on}`,
        timeout: (s) =>
          origin === 'sam'
            ? `set Timeout: ${s} on the function (or in Globals.Function)`
            : `set Timeout: ${s} on the function`,
      }
    }
  }
}

/** The settings a mapping runs with, Lambda's defaults filled in: for the report's first line. */
export function describeMapping(mapping: DeployedMapping): string {
  let s: ResolvedSettings
  try {
    s = resolveSettings(mapping.settings)
  } catch {
    return 'settings Lambda would refuse'
  }
  const parts = [`batch size ${s.batchSize}`]
  if (s.maximumBatchingWindowInSeconds > 0) {
    parts.push(`batching window ${s.maximumBatchingWindowInSeconds} s`)
  }
  parts.push(s.reportBatchItemFailures ? 'ReportBatchItemFailures' : 'no ReportBatchItemFailures')
  parts.push(s.bisectBatchOnFunctionError ? 'bisect on' : 'bisect off')
  parts.push(
    s.maximumRetryAttempts === -1
      ? 'unbounded retries'
      : `at most ${s.maximumRetryAttempts} retries`,
  )
  if (s.maximumRecordAgeInSeconds !== -1) {
    parts.push(`records up to ${s.maximumRecordAgeInSeconds} s old`)
  }
  parts.push(
    mapping.onFailureDestination === undefined
      ? 'no on-failure destination'
      : `on failure to ${mapping.onFailureDestination}`,
  )
  if (s.parallelizationFactor > 1) parts.push(`parallelization factor ${s.parallelizationFactor}`)
  if (s.tumblingWindowInSeconds > 0) parts.push(`tumbling window ${s.tumblingWindowInSeconds} s`)
  if (s.filterCriteria !== undefined) parts.push(`${s.filterCriteria.filters.length} filter(s)`)
  parts.push(`from ${s.startingPosition}`)
  if (mapping.timeoutSeconds !== undefined) parts.push(`timeout ${mapping.timeoutSeconds} s`)
  if (!mapping.enabled) parts.push('disabled')
  return parts.join(', ')
}

/** A call to Lambda's API that failed: names the call, the function and where it was sent. */
export class LambdaApiError extends Error {
  override name = 'LambdaApiError'
}

export interface ReadDeployedOptions {
  /** The function's name, ARN or partial ARN. */
  functionName: string
  /** Default: `$AWS_REGION`, then `us-east-1`. */
  region?: string
  /** A Lambda endpoint (LocalStack, a stand-in in tests); without it, AWS. */
  endpoint?: string
  /** A ready client; `region` and `endpoint` are then ignored. */
  client?: LambdaClient
}

/** The Kinesis mappings of a deployed function, with its timeout, read from Lambda's API. */
export async function readDeployedMappings(
  options: ReadDeployedOptions,
): Promise<DeployedMapping[]> {
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1'
  const client = options.client ?? new LambdaClient(awsClientConfig(options.endpoint, region))
  const name = options.functionName
  const where = options.endpoint !== undefined ? `at ${options.endpoint}` : `in ${region}`
  const call = async <T>(what: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send()
    } catch (error) {
      const kind = (error as Error).name
      const reason = messageOf(error)
      throw new LambdaApiError(
        `${what} for function ${name} ${where} failed: ${kind !== 'Error' && !reason.startsWith(kind) ? `${kind}: ` : ''}${reason}`,
        { cause: error },
      )
    }
  }
  try {
    const fn = await call('GetFunctionConfiguration', () =>
      client.send(new GetFunctionConfigurationCommand({ FunctionName: name })),
    )
    const found: EventSourceMappingConfiguration[] = []
    let marker: string | undefined
    do {
      const page = await call('ListEventSourceMappings', () =>
        client.send(new ListEventSourceMappingsCommand({ FunctionName: name, Marker: marker })),
      )
      found.push(...(page.EventSourceMappings ?? []))
      marker = page.NextMarker
    } while (marker !== undefined && marker !== '')
    const kinesis = found.filter((m) => (m.EventSourceArn ?? '').split(':')[2] === 'kinesis')
    if (kinesis.length === 0) {
      const others = found.length > 0 ? ` (${found.length} mapping(s) of other sources)` : ''
      throw new LambdaApiError(
        `function ${fn.FunctionName ?? name} ${where} has no Kinesis event source mapping${others}`,
      )
    }
    return kinesis.map((m) => deployedMapping(m, fn.FunctionName ?? name, fn.Timeout))
  } finally {
    if (options.client === undefined) client.destroy()
  }
}

function deployedMapping(
  m: EventSourceMappingConfiguration,
  functionName: string,
  timeout: number | undefined,
): DeployedMapping {
  const source = m.EventSourceArn ?? ''
  const mapping: DeployedMapping = {
    origin: 'aws',
    where: `event source mapping ${m.UUID ?? '(no UUID)'}`,
    function: functionName,
    eventSource: source,
    enabled: m.State === undefined || !/^Disabl/.test(m.State),
    settings: {},
    sources: {},
    unresolved: {},
  }
  const name = /^arn:[^:]+:kinesis:[^:]*:[^:]*:stream\/([^/]+)/.exec(source)?.[1]
  if (name !== undefined) mapping.streamName = name
  const s = mapping.settings
  const set = <K extends keyof typeof s>(key: K, value: (typeof s)[K] | undefined) => {
    if (value === undefined) return
    s[key] = value
    mapping.sources[key] = `${mapping.where} in AWS`
  }
  set('batchSize', m.BatchSize)
  set('maximumBatchingWindowInSeconds', m.MaximumBatchingWindowInSeconds)
  set('startingPosition', m.StartingPosition as StartingPosition | undefined)
  set(
    'startingPositionTimestamp',
    m.StartingPositionTimestamp && m.StartingPositionTimestamp.getTime() / 1000,
  )
  set(
    'functionResponseTypes',
    (m.FunctionResponseTypes ?? []).filter((t) => t === 'ReportBatchItemFailures'),
  )
  set('bisectBatchOnFunctionError', m.BisectBatchOnFunctionError)
  set('maximumRetryAttempts', m.MaximumRetryAttempts)
  set('maximumRecordAgeInSeconds', m.MaximumRecordAgeInSeconds)
  set('parallelizationFactor', m.ParallelizationFactor)
  set('tumblingWindowInSeconds', m.TumblingWindowInSeconds)
  const filters = m.FilterCriteria?.Filters
  if (filters !== undefined && filters.length > 0) {
    set('filterCriteria', {
      Filters: filters.map((f) => ({ Pattern: f.Pattern ?? '' })),
    } satisfies FilterCriteria)
  }
  const destination = m.DestinationConfig?.OnFailure?.Destination
  if (destination !== undefined && destination !== '') mapping.onFailureDestination = destination
  if (timeout !== undefined) {
    mapping.timeoutSeconds = timeout
    mapping.sources.timeoutSeconds = `function ${functionName}'s configuration in AWS`
  }
  return mapping
}
