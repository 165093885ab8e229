/**
 * The example CDK app synthesizes offline, bundling orders-dlq.ts with esbuild, as `cdk synth`
 * would: the template has the mapping the chain needs, the asset is the ESM bundle, and
 * `shardwise check-mapping` finds no problem in the template.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkMapping, readTemplate } from '@shardwise/local'
import { POISON_QUEUE_URL_ENV } from '@shardwise/sqs-poison-sink'
import { App } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import { afterAll, expect, it } from 'vitest'
import { ordersStack } from './app.js'

const outdir = mkdtempSync(join(tmpdir(), 'shardwise-example-cdk-'))
afterAll(() => rmSync(outdir, { recursive: true, force: true }))

it('synthesizes the orders consumer, with its handler bundled', { timeout: 120_000 }, () => {
  const app = new App({ outdir })
  const stack = ordersStack(app, { env: { account: '123456789012', region: 'us-east-2' } })
  const template = Template.fromStack(stack)
  template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    FunctionResponseTypes: ['ReportBatchItemFailures'],
    BisectBatchOnFunctionError: true,
    MaximumRetryAttempts: Match.anyValue(),
    MaximumRecordAgeInSeconds: Match.anyValue(),
    DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
  })
  template.hasResourceProperties('AWS::Lambda::Function', {
    Runtime: 'nodejs22.x',
    Environment: {
      Variables: Match.objectLike({ [POISON_QUEUE_URL_ENV]: Match.anyValue() }),
    },
  })
  template.resourceCountIs('AWS::SQS::Queue', 2)

  app.synth()
  const assets = readdirSync(outdir).filter((name) => existsSync(join(outdir, name, 'index.mjs')))
  expect(assets).toHaveLength(1)
  const dir = join(outdir, assets[0] as string)
  const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8')
  // The handler's own code and the chain are in it; the SDK is the runtime's.
  expect(bundle).toContain('SHARDWISE_POISON_QUEUE_URL')
  expect(bundle).toMatch(/from"@aws-sdk\/client-sqs"/)
  expect(bundle).toContain('"NonRetryableError"')
  expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true)

  // What `shardwise check-mapping --template cdk.out/ShardwiseOrders.template.json` reads.
  const [mapping, ...others] = readTemplate(join(outdir, 'ShardwiseOrders.template.json'))
  expect(others).toEqual([])
  expect(mapping).toMatchObject({
    settings: {
      functionResponseTypes: ['ReportBatchItemFailures'],
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 10,
      maximumRecordAgeInSeconds: 3600,
    },
    timeoutSeconds: 60,
  })
  expect(mapping && checkMapping(mapping)).toEqual([])
})
