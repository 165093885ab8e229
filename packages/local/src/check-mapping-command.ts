/** `shardwise check-mapping`: judges a function's Kinesis mappings, in a template or in AWS. */
import { ConfigurationError, messageOf } from '@shardwise/core'
import {
  type CheckOptions,
  checkMapping,
  DEFAULT_RECORD_SIZE_BYTES,
  DEFAULT_TIMEOUT_MARGIN_MS,
  describeMapping,
  type Finding,
  readDeployedMappings,
} from './check-mapping.js'
import { type Command, type Flags, number, text, UsageError, type Values } from './cli-args.js'
import { type DeployedMapping, readTemplate } from './template.js'

/** The exit statuses: a CI step tells a bad mapping from a check that could not run. */
export const EXIT_ERRORS = 1
export const EXIT_UNREADABLE = 3

export const checkMappingFlags = {
  template: { type: 'string' },
  function: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  'record-size': { type: 'string' },
  'timeout-margin-ms': { type: 'string' },
  json: { type: 'boolean' },
} satisfies Flags

const HELP = `Usage: shardwise check-mapping (--template <file> [--function <id>] | --function <name> [--region <region>]) [options]

Checks a function's Kinesis event source mappings for the settings without which a Shardwise
consumer loses records or stalls a shard, and says for each problem why it matters and the fix.

Errors: ReportBatchItemFailures off; retries or record age bounded without an on-failure
destination; retries unbounded (MaximumRetryAttempts and MaximumRecordAgeInSeconds both -1);
a function timeout not longer than the handler's timeoutMarginMs; a tumbling window with a
ParallelizationFactor above 1; a record too large for any invocation; a setting Lambda refuses.
Warnings: bisect off; a batch over the 6 MB invocation limit; a timeout that leaves less
time for records than the margin; a setting only known at deploy time (or the timeout of a
function the template does not hold).

Where the mappings come from:
  --template <file>           a CloudFormation template (JSON or YAML, cdk synth's output
                              included), a SAM template.yaml or a serverless.yml
  --function <name>           with --template: only this function's mappings (its logical id,
                              FunctionName, CDK path, or serverless.yml key); without it:
                              the function in AWS (ListEventSourceMappings and
                              GetFunctionConfiguration, credentials from the usual chain)
  --region <region>           with a function in AWS; default: $AWS_REGION, then us-east-1
  --endpoint <url>            a Lambda endpoint instead of AWS (LocalStack)

What to judge against:
  --record-size <bytes>       a typical record's data, before base64 (default ${DEFAULT_RECORD_SIZE_BYTES})
  --timeout-margin-ms <ms>    the handler's partialFailures timeoutMarginMs (default ${DEFAULT_TIMEOUT_MARGIN_MS},
                              partialFailures' own; 0 when the guard is off)

Output:
  --json                      the mappings, their settings and problems as JSON on stdout
  -h, --help                  this help

Exit status: 0 no error (warnings allowed), 1 errors found, 2 a usage mistake, 3 the mappings
could not be read (a template that cannot be read, a function or mapping not found, an error of
Lambda's API).
`

export const checkMappingCommand: Command = {
  name: 'check-mapping',
  summary: 'check the event source mappings of a template or a deployed function',
  help: HELP,
  flags: checkMappingFlags,
  async run(values) {
    const template = text(values, 'template')
    const functionName = text(values, 'function')
    const options = checkOptions(values)
    const json = values.json === true
    if (template === undefined && functionName === undefined) {
      throw new UsageError('check-mapping needs --template <file> or --function <name>')
    }
    if (template !== undefined) {
      for (const flag of ['region', 'endpoint']) {
        if (values[flag] !== undefined) {
          throw new UsageError(`--${flag} goes with a function in AWS, not with --template`)
        }
      }
    }
    let mappings: DeployedMapping[]
    try {
      mappings =
        template !== undefined
          ? readTemplate(template, { function: functionName })
          : await readDeployedMappings({
              functionName: functionName as string,
              region: text(values, 'region'),
              endpoint: text(values, 'endpoint'),
            })
    } catch (error) {
      // A flag's value that cannot work (an endpoint without a scheme) is a usage mistake.
      if (error instanceof UsageError || error instanceof ConfigurationError) throw error
      // Whatever stops the reading (TemplateError, LambdaApiError, anything else) is status 3:
      // 1 would tell CI the mapping was read and found wrong.
      const message = messageOf(error)
      if (json) process.stdout.write(`${JSON.stringify({ error: message }, null, 2)}\n`)
      process.stderr.write(`shardwise: ${message}\n`)
      return EXIT_UNREADABLE
    }
    const reports = mappings.map((mapping) => ({
      mapping,
      findings: checkMapping(mapping, options),
    }))
    const errors = count(reports, 'error')
    const warnings = count(reports, 'warning')
    if (json) {
      const out = {
        source: template ?? `function ${functionName} in AWS`,
        recordSizeBytes: options.recordSizeBytes,
        timeoutMarginMs: options.timeoutMarginMs,
        mappings: reports.map(({ mapping, findings }) => ({ ...mapping, findings })),
        errors,
        warnings,
      }
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    } else {
      process.stdout.write(
        report(template ?? `function ${functionName}`, reports, options, errors, warnings),
      )
    }
    return errors > 0 ? EXIT_ERRORS : 0
  },
}

function checkOptions(values: Values): Required<CheckOptions> {
  const recordSize = number(values, 'record-size') ?? DEFAULT_RECORD_SIZE_BYTES
  // Kinesis takes records of up to 10 MiB.
  if (!Number.isInteger(recordSize) || recordSize < 1 || recordSize > 10 * 1024 * 1024) {
    throw new UsageError(
      `--record-size takes whole bytes from 1 to 10485760 (10 MiB, Kinesis' largest record), got ${recordSize}`,
    )
  }
  const margin = number(values, 'timeout-margin-ms') ?? DEFAULT_TIMEOUT_MARGIN_MS
  if (!Number.isInteger(margin) || margin < 0 || margin > 900_000) {
    throw new UsageError(
      `--timeout-margin-ms takes whole milliseconds from 0 to 900000, got ${margin}`,
    )
  }
  return { recordSizeBytes: recordSize, timeoutMarginMs: margin }
}

interface Report {
  mapping: DeployedMapping
  findings: Finding[]
}

function count(reports: Report[], severity: Finding['severity']): number {
  return reports.reduce((n, r) => n + r.findings.filter((f) => f.severity === severity).length, 0)
}

function report(
  source: string,
  reports: Report[],
  options: Required<CheckOptions>,
  errors: number,
  warnings: number,
): string {
  const lines = [
    `Checked ${reports.length} Kinesis event source mapping(s) of ${source} (records of ${options.recordSizeBytes} B, timeoutMarginMs ${options.timeoutMarginMs})`,
  ]
  for (const { mapping, findings } of reports) {
    lines.push('', `${mapping.function} <- ${mapping.eventSource}`, `  ${mapping.where}`)
    lines.push(`  ${describeMapping(mapping)}`)
    if (findings.length === 0) lines.push('  ok: no problem found')
    for (const f of findings) {
      lines.push(`  ${f.severity}: ${f.problem}`, `    why: ${f.why}`, `    fix: ${f.fix}`)
    }
  }
  const verdict =
    errors > 0
      ? `${errors} error(s), ${warnings} warning(s): this mapping loses or stalls records`
      : warnings > 0
        ? `no error, ${warnings} warning(s)`
        : 'no problem found'
  lines.push('', verdict, '')
  return lines.join('\n')
}
