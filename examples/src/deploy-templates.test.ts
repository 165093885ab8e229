/**
 * The SAM template and the Serverless Framework configuration in examples/ deploy the mapping
 * @shardwise/cdk's KinesisConsumer deploys by default, and `shardwise check-mapping --template`
 * passes on each: the command itself, run as CI would run it before a deploy.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkMapping, readTemplate } from '@shardwise/local'
import { describe, expect, it } from 'vitest'

const examples = fileURLToPath(new URL('..', import.meta.url))
const cli = fileURLToPath(import.meta.resolve('@shardwise/local').replace(/index\.js$/, 'cli.js'))

function checkMappingCli(template: string): { status: number | null; out: string; err: string } {
  const run = spawnSync(process.execPath, [cli, 'check-mapping', '--template', template], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: run.status, out: run.stdout, err: run.stderr }
}

/** The construct's defaults, as Lambda's CreateEventSourceMapping names them. */
const CONSTRUCT_DEFAULTS = {
  batchSize: 100,
  startingPosition: 'TRIM_HORIZON',
  functionResponseTypes: ['ReportBatchItemFailures'],
  bisectBatchOnFunctionError: true,
  maximumRetryAttempts: 10,
  maximumRecordAgeInSeconds: 3600,
}

describe.each([
  ['sam/template.yaml', 'sam', 'OrdersConsumer', '!GetAtt OnFailureQueue.Arn'],
  ['serverless/serverless.yml', 'serverless', 'orders', '!GetAtt OnFailureQueue.Arn'],
])('%s', (file, origin, fn, destination) => {
  const path = join(examples, file)

  it("deploys the construct's defaults: one mapping, an SQS on-failure queue, a 60 s timeout", () => {
    const [mapping, ...others] = readTemplate(path)
    expect(others).toEqual([])
    expect(mapping).toMatchObject({
      origin,
      function: fn,
      enabled: true,
      settings: CONSTRUCT_DEFAULTS,
      onFailureDestination: destination,
      timeoutSeconds: 60,
      unresolved: {},
    })
    expect(mapping && checkMapping(mapping)).toEqual([])
  })

  it('passes shardwise check-mapping --template (exit 0, no problem found)', () => {
    const run = checkMappingCli(path)
    expect(run.err).toBe('')
    expect(run.out).toContain('  ok: no problem found\n')
    expect(run.out).toMatch(/\nno problem found\n$/)
    expect(run.status).toBe(0)
  })

  it('fails it once ReportBatchItemFailures is taken out (exit 1)', () => {
    const text = readFileSync(path, 'utf8')
    const without = text.replace(/^\s*(functionResponseType|FunctionResponseTypes):.*\n/m, '')
    expect(without).not.toBe(text)
    const copy = join(
      mkdtempSync(join(tmpdir(), 'shardwise-example-')),
      file.split('/')[1] as string,
    )
    writeFileSync(copy, without)
    const run = checkMappingCli(copy)
    expect(run.out).toContain('  error: ReportBatchItemFailures is off\n')
    expect(run.status).toBe(1)
  })
})
