/**
 * The SAM template and the Serverless Framework configuration in examples/ deploy the mapping
 * @shardwise/cdk's KinesisConsumer deploys by default (the example CDK app, synthesized here),
 * and `shardwise check-mapping --template` passes on all three: the command itself, run as CI
 * would run it before a deploy.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkMapping, type DeployedMapping, readTemplate } from '@shardwise/local'
import { App } from 'aws-cdk-lib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ordersStack } from './cdk/app.js'

const examples = fileURLToPath(new URL('..', import.meta.url))
const cli = fileURLToPath(import.meta.resolve('@shardwise/local').replace(/index\.js$/, 'cli.js'))

function checkMappingCli(template: string): { status: number | null; out: string; err: string } {
  const run = spawnSync(process.execPath, [cli, 'check-mapping', '--template', template], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: run.status, out: run.stdout, err: run.stderr }
}

/** What the construct deploys: the example CDK app, synthesized without bundling its handler. */
const outdir = mkdtempSync(join(tmpdir(), 'shardwise-deploy-cdk-'))
const cdkTemplate = join(outdir, 'ShardwiseOrders.template.json')
let construct: DeployedMapping

beforeAll(() => {
  const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } })
  ordersStack(app, { env: { account: '123456789012', region: 'us-east-2' } })
  app.synth()
  construct = readTemplate(cdkTemplate)[0] as DeployedMapping
  // aws-cdk-lib alone takes seconds to load and synthesize on a busy machine.
}, 120_000)
afterAll(() => rmSync(outdir, { recursive: true, force: true }))

/** The settings a mapping runs with: Lambda's defaults where the configuration says nothing. */
function effective(mapping: DeployedMapping) {
  return {
    maximumBatchingWindowInSeconds: 0,
    parallelizationFactor: 1,
    tumblingWindowInSeconds: 0,
    ...mapping.settings,
  }
}

describe("the example CDK app's synthesized template", () => {
  it('holds the mapping the chain needs', () => {
    expect(construct).toMatchObject({
      origin: 'cdk',
      settings: {
        functionResponseTypes: ['ReportBatchItemFailures'],
        bisectBatchOnFunctionError: true,
      },
    })
    expect(construct.onFailureDestination).toBeDefined()
  })

  it('passes shardwise check-mapping --template (exit 0, no problem found)', () => {
    const run = checkMappingCli(cdkTemplate)
    expect(run.err).toBe('')
    expect(run.out).toMatch(/\nno problem found\n$/)
    expect(run.status).toBe(0)
  })
})

describe.each([
  ['sam/template.yaml', 'sam', 'OrdersConsumer', '!GetAtt OnFailureQueue.Arn'],
  ['serverless/serverless.yml', 'serverless', 'orders', '!GetAtt OnFailureQueue.Arn'],
])('%s', (file, origin, fn, destination) => {
  const path = join(examples, file)

  it("deploys what the construct deploys: its mapping's settings, an on-failure queue, its timeout", () => {
    const [mapping, ...others] = readTemplate(path)
    expect(others).toEqual([])
    expect(mapping).toMatchObject({
      origin,
      function: fn,
      enabled: true,
      onFailureDestination: destination,
      timeoutSeconds: construct.timeoutSeconds,
      unresolved: {},
    })
    expect(mapping && effective(mapping)).toEqual(effective(construct))
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
