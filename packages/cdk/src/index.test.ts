import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigurationError } from '@shardwise/core'
import { POISON_QUEUE_URL_ENV as SINK_ENV } from '@shardwise/sqs-poison-sink'
import { App, type CfnElement, CfnParameter, Duration, Stack } from 'aws-cdk-lib'
import { Match, Template } from 'aws-cdk-lib/assertions'
import * as kinesis from 'aws-cdk-lib/aws-kinesis'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import * as sns from 'aws-cdk-lib/aws-sns'
import { afterAll, describe, expect, it } from 'vitest'
import { KinesisConsumer, type KinesisConsumerProps, POISON_QUEUE_URL_ENV } from './index.js'

const ENV = { account: '123456789012', region: 'us-east-2' }

/** A stack with an inline function: no bundling, so synth stays fast. */
function stackWithFunction() {
  const stack = new Stack(new App(), 'Orders', { env: ENV })
  const fn = new lambda.Function(stack, 'Handler', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('export const handler = async () => ({})'),
  })
  return { stack, fn }
}

/** A consumer around the inline function (or none, with `useFunction` false), synthesized. */
function synth(props: Partial<KinesisConsumerProps> = {}, useFunction = true) {
  const { stack, fn } = stackWithFunction()
  const consumer = new KinesisConsumer(stack, 'Consumer', {
    ...(useFunction ? { function: fn } : {}),
    ...props,
  } as KinesisConsumerProps)
  return { stack, consumer, template: Template.fromStack(stack) }
}

/** The policy statements granted to the function's role, flattened. */
function statementsOf(template: Template): Array<{ Action: string | string[]; Resource: unknown }> {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => policy.Properties.PolicyDocument.Statement,
  )
}
const actionsOf = (template: Template) =>
  statementsOf(template)
    .flatMap((statement) => statement.Action)
    .sort()

describe('KinesisConsumer: the event source mapping', () => {
  it('reports batch item failures, bisects, and gives up only into an on-failure queue, by default', () => {
    const { template } = synth()
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1)
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      MaximumRecordAgeInSeconds: 3600,
      BatchSize: 100,
      StartingPosition: 'TRIM_HORIZON',
      ParallelizationFactor: 1,
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ConsumerStream'), 'Arn'] },
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ConsumerOnFailureQueue'), 'Arn'] },
        },
      },
    })
    const mapping = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'))[0]
    expect(mapping?.Properties).not.toHaveProperty('TumblingWindowInSeconds')
    expect(mapping?.Properties).not.toHaveProperty('FilterCriteria')
  })

  it('creates an on-demand, encrypted stream with a day of retention when given none', () => {
    const { template } = synth()
    template.resourceCountIs('AWS::Kinesis::Stream', 1)
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      RetentionPeriodHours: 24,
    })
  })

  it('consumes a stream it is given, and creates none', () => {
    const { stack, fn } = stackWithFunction()
    const stream = kinesis.Stream.fromStreamArn(
      stack,
      'Existing',
      'arn:aws:kinesis:us-east-2:123456789012:stream/orders',
    )
    new KinesisConsumer(stack, 'Consumer', { stream, function: fn, maxRecordAge: Duration.days(2) })
    const template = Template.fromStack(stack)
    template.resourceCountIs('AWS::Kinesis::Stream', 0)
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: 'arn:aws:kinesis:us-east-2:123456789012:stream/orders',
      MaximumRecordAgeInSeconds: 172800,
    })
  })

  it('takes batch size, batching window, starting position, parallelization, retries and filters as options', () => {
    const { template } = synth({
      batchSize: 500,
      maxBatchingWindow: Duration.seconds(5),
      startingPosition: lambda.StartingPosition.AT_TIMESTAMP,
      startingPositionTimestamp: 1_700_000_000,
      parallelizationFactor: 4,
      retryAttempts: 3,
      maxRecordAge: Duration.minutes(30),
      filters: [{ data: { kind: ['order'] } }, { partitionKey: [{ prefix: 'eu-' }] }],
    })
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 5,
      StartingPosition: 'AT_TIMESTAMP',
      StartingPositionTimestamp: 1_700_000_000,
      ParallelizationFactor: 4,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 1800,
      FilterCriteria: {
        Filters: [
          { Pattern: JSON.stringify({ data: { kind: ['order'] } }) },
          { Pattern: JSON.stringify({ partitionKey: [{ prefix: 'eu-' }] }) },
        ],
      },
    })
  })

  it('sets a tumbling window with one batch per shard at a time', () => {
    const { template } = synth({ tumblingWindow: Duration.minutes(5) })
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      TumblingWindowInSeconds: 300,
      ParallelizationFactor: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    })
  })

  it('keeps the on-failure documents 14 days in an encrypted queue that refuses plain HTTP', () => {
    const { template } = synth()
    template.resourceCountIs('AWS::SQS::Queue', 1)
    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true,
    })
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    })
  })
})

describe('KinesisConsumer: the poison queue', () => {
  it('sets the variable the sink reads to a queue of its own, and grants SendMessage alone', () => {
    expect(POISON_QUEUE_URL_ENV).toBe(SINK_ENV)
    const { template } = synth({ poisonQueue: true })
    template.resourceCountIs('AWS::SQS::Queue', 2)
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: { [SINK_ENV]: { Ref: Match.stringLikeRegexp('^ConsumerPoisonQueue') } },
      },
    })
    template.hasResourceProperties('AWS::SQS::Queue', { MaximumMessageSize: 1_048_576 })
    const poisonGrants = statementsOf(template).filter(
      (statement) =>
        JSON.stringify(statement.Resource).includes('ConsumerPoisonQueue') &&
        !JSON.stringify(statement).includes('Deny'),
    )
    expect(poisonGrants.map((statement) => statement.Action)).toEqual(['sqs:SendMessage'])
  })

  it('creates no poison queue unless asked', () => {
    const { template } = synth()
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: Match.absent(),
    })
    expect(JSON.stringify(template.toJSON())).not.toContain('PoisonQueue')
  })
})

describe('KinesisConsumer: least privilege', () => {
  it('grants reading the stream and sending to the on-failure queue, nothing else', () => {
    const { template } = synth()
    expect(actionsOf(template)).toEqual([
      'kinesis:DescribeStream',
      'kinesis:DescribeStreamSummary',
      'kinesis:GetRecords',
      'kinesis:GetShardIterator',
      'kinesis:ListShards',
      'kinesis:SubscribeToShard',
      'sqs:SendMessage',
    ])
    // On the stream and the queue alone, and in place before Lambda checks them at creation.
    for (const statement of statementsOf(template))
      expect(JSON.stringify(statement.Resource)).toMatch(/ConsumerStream|ConsumerOnFailureQueue/)
    const mapping = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'))[0]
    expect(mapping?.DependsOn).toEqual([expect.stringMatching(/^HandlerServiceRoleDefaultPolicy/)])
    expect(actionsOf(template).some((action) => action.startsWith('glue:'))).toBe(false)
  })

  it("grants kms:Decrypt on a given stream's own key, so that the mapping can read it", () => {
    const { stack, fn } = stackWithFunction()
    const stream = new kinesis.Stream(stack, 'Encrypted', {
      encryption: kinesis.StreamEncryption.KMS,
    })
    new KinesisConsumer(stack, 'Consumer', {
      stream,
      function: fn,
      maxRecordAge: Duration.hours(1),
    })
    const template = Template.fromStack(stack)
    const decrypt = statementsOf(template).filter((statement) =>
      JSON.stringify(statement.Resource).includes('EncryptedKey'),
    )
    expect(decrypt.map((statement) => statement.Action)).toEqual(['kms:Decrypt'])
  })

  it('grants glue:GetSchemaVersion only when asked, on the ARNs given', () => {
    const arns = ['arn:aws:glue:us-east-2:123456789012:registry/orders']
    const { template } = synth({ glueSchemaRegistry: { resources: arns } })
    expect(statementsOf(template).filter((s) => s.Action === 'glue:GetSchemaVersion')).toEqual([
      { Action: 'glue:GetSchemaVersion', Effect: 'Allow', Resource: arns[0] },
    ])
    const any = synth({ glueSchemaRegistry: true }).template
    expect(statementsOf(any).filter((s) => s.Action === 'glue:GetSchemaVersion')).toEqual([
      { Action: 'glue:GetSchemaVersion', Effect: 'Allow', Resource: '*' },
    ])
  })
})

describe('KinesisConsumer: alarms', () => {
  it('watches iterator age, function errors and the on-failure queue', () => {
    const { template, consumer } = synth()
    template.resourceCountIs('AWS::CloudWatch::Alarm', 3)
    expect(consumer.alarms).toHaveLength(3)
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Statistic: 'Maximum',
      Threshold: 300_000,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      TreatMissingData: 'ignore',
    })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ConsumerOnFailureQueue'), 'QueueName'] },
        },
      ],
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() })
  })

  it('watches the poison queue when there is one, and notifies a topic when given', () => {
    const { stack, fn } = stackWithFunction()
    const topic = new sns.Topic(stack, 'OnCall')
    new KinesisConsumer(stack, 'Consumer', {
      function: fn,
      poisonQueue: true,
      alarmTopic: topic,
      iteratorAgeAlarmThreshold: Duration.minutes(10),
    })
    const template = Template.fromStack(stack)
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4)
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ConsumerPoisonQueue'), 'QueueName'] },
        },
      ],
    })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Threshold: 600_000,
    })
    const topicId = stack.getLogicalId(topic.node.defaultChild as CfnElement)
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
    expect(alarms.map((alarm) => alarm.Properties.AlarmActions)).toEqual(
      alarms.map(() => [{ Ref: topicId }]),
    )
  })

  it("alarms on @shardwise/observe's failed and poison metrics, with the dimensions batchMetrics publishes", () => {
    const { template } = synth({ observeMetrics: { namespace: 'Shardwise', service: 'orders' } })
    template.resourceCountIs('AWS::CloudWatch::Alarm', 5)
    // Exactly these three: an alarm reads only the line with the same dimension set.
    const dimensions = [
      { Name: 'FunctionName', Value: { Ref: Match.stringLikeRegexp('^Handler') } },
      { Name: 'StreamName', Value: { Ref: Match.stringLikeRegexp('^ConsumerStream') } },
      { Name: 'service', Value: 'orders' },
    ]
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'Shardwise',
      MetricName: 'RecordsSentToPoisonSink',
      Statistic: 'Sum',
      Dimensions: dimensions,
      Threshold: 1,
    })
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      EvaluationPeriods: 3,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(failed, 0) - FILL(poisoned, 0)', ReturnData: true }),
        Match.objectLike({
          Id: 'failed',
          MetricStat: Match.objectLike({
            Metric: { Namespace: 'Shardwise', MetricName: 'RecordsFailed', Dimensions: dimensions },
            Stat: 'Sum',
          }),
        }),
        Match.objectLike({
          Id: 'poisoned',
          MetricStat: Match.objectLike({
            Metric: Match.objectLike({ MetricName: 'RecordsSentToPoisonSink' }),
          }),
        }),
      ]),
    })
    // Powertools' Metrics takes these when the handler names no namespace or service.
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: { POWERTOOLS_METRICS_NAMESPACE: 'Shardwise', POWERTOOLS_SERVICE_NAME: 'orders' },
      },
    })
  })
})

describe('KinesisConsumer: options are checked when it is built', () => {
  const refused: Array<[string, Partial<KinesisConsumerProps>, string | RegExp]> = [
    [
      'a tumbling window with a parallelization factor above 1',
      { tumblingWindow: Duration.minutes(1), parallelizationFactor: 2 },
      "Option 'tumblingWindow' cannot be used with 'parallelizationFactor' 2",
    ],
    ['a batch size over 10,000', { batchSize: 10_001 }, "Option 'batchSize' must be <= 10000"],
    ['a batch size of 0', { batchSize: 0 }, "Option 'batchSize' must be >= 1"],
    [
      'a batching window over 5 minutes',
      { maxBatchingWindow: Duration.minutes(6) },
      "Option 'maxBatchingWindow' must be from 0 seconds to 5 minutes, got 6 minutes",
    ],
    [
      'a parallelization factor of 11',
      { parallelizationFactor: 11 },
      "Option 'parallelizationFactor' must be <= 10",
    ],
    [
      'a tumbling window over 15 minutes',
      { tumblingWindow: Duration.minutes(16) },
      "Option 'tumblingWindow' must be from 0 seconds to 15 minutes",
    ],
    [
      'unbounded retries',
      { retryAttempts: -1 },
      "Option 'retryAttempts' must be 0 to 10000: -1 (retry for ever) lets a failing record stall its shard",
    ],
    [
      'a maximum record age under a minute',
      { maxRecordAge: Duration.seconds(30) },
      "Option 'maxRecordAge' must be from 1 minute to 7 days, got 30 seconds",
    ],
    [
      'a maximum record age past the created stream retention',
      { maxRecordAge: Duration.hours(24) },
      "Option 'maxRecordAge' (1 day) must be under the created stream's retention (1 day)",
    ],
    [
      'an iteratorAge alarm at or past the maximum record age',
      { maxRecordAge: Duration.minutes(10), iteratorAgeAlarmThreshold: Duration.minutes(10) },
      "Option 'iteratorAgeAlarmThreshold' (10 minutes) must be under 'maxRecordAge' (10 minutes)",
    ],
    [
      'AT_TIMESTAMP without a timestamp',
      { startingPosition: lambda.StartingPosition.AT_TIMESTAMP },
      "Option 'startingPosition' AT_TIMESTAMP needs 'startingPositionTimestamp'",
    ],
    [
      'a timestamp without AT_TIMESTAMP',
      { startingPositionTimestamp: 1 },
      "Option 'startingPositionTimestamp' applies only with 'startingPosition' AT_TIMESTAMP",
    ],
    ['an empty filter', { filters: [{}] }, "Option 'filters[0]' must be a non-empty event pattern"],
    [
      'a Glue grant without ARNs',
      { glueSchemaRegistry: { resources: [] } },
      "Option 'glueSchemaRegistry.resources' must be a non-empty array of ARNs",
    ],
    [
      'observe alarms without a service',
      { observeMetrics: { namespace: 'Shardwise' } as never },
      "Missing required option 'observeMetrics.service'",
    ],
    ['an unknown option', { batchsize: 10 } as never, "Unknown option 'batchsize'"],
    [
      'handler with an existing function',
      { handler: 'main' },
      "Option 'handler' applies to the function built from 'entry'",
    ],
    [
      'a stream that is not one',
      { stream: 'orders' as never },
      "Option 'stream' must be a Kinesis stream",
    ],
  ]
  for (const [what, props, message] of refused) {
    it(`refuses ${what}, naming the option`, () => {
      const build = () => synth(props)
      expect(build).toThrow(ConfigurationError)
      expect(build).toThrow(`@shardwise/cdk: KinesisConsumer 'Consumer': `)
      expect(build).toThrow(message)
    })
  }

  it('leaves a number known only at deployment (a token) to CloudFormation', () => {
    const { stack, fn } = stackWithFunction()
    const batchSize = new CfnParameter(stack, 'BatchSize', { type: 'Number' })
    new KinesisConsumer(stack, 'Consumer', { function: fn, batchSize: batchSize.valueAsNumber })
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: { Ref: 'BatchSize' },
    })
  })

  it('needs an entry or a function, and not both', () => {
    expect(() => synth({}, false)).toThrow(
      "@shardwise/cdk: KinesisConsumer 'Consumer': needs 'entry' (the handler file to bundle) or 'function' (an existing function)",
    )
    expect(() => synth({ entry: 'handler.ts' })).toThrow("takes 'entry' or 'function', not both")
  })

  it('refuses a poison queue for a function whose environment it cannot set', () => {
    const app = new App()
    const stack = new Stack(app, 'Orders', { env: ENV })
    const fn = lambda.Function.fromFunctionArn(
      stack,
      'Imported',
      'arn:aws:lambda:us-east-2:123456789012:function:orders',
    )
    expect(
      () => new KinesisConsumer(stack, 'Consumer', { function: fn, poisonQueue: true }),
    ).toThrow(
      "Option 'poisonQueue' needs a function whose environment the construct can set (SHARDWISE_POISON_QUEUE_URL)",
    )
  })

  it('refuses a runtime older than Node 22 and bundling settings of its own', () => {
    expect(() =>
      synth({ entry: 'handler.ts', functionProps: { runtime: lambda.Runtime.NODEJS_20_X } }, false),
    ).toThrow(
      "Option 'functionProps.runtime' must be Node.js 22 or later (the chain needs it), got nodejs20.x",
    )
    expect(() =>
      synth(
        { entry: 'handler.ts', functionProps: { bundling: { minify: false } } as never },
        false,
      ),
    ).toThrow("Option 'functionProps.bundling' is not taken")
  })
})

describe('KinesisConsumer: bundling the entry file', () => {
  // One real bundle (esbuild, local): slow next to the inline functions of the other tests.
  const outdir = mkdtempSync(join(tmpdir(), 'shardwise-cdk-'))
  afterAll(() => rmSync(outdir, { recursive: true, force: true }))
  const entry = fileURLToPath(new URL('../test-fixtures/handler.ts', import.meta.url))

  it('bundles ESM for Node 22 with names kept, source maps on, @shardwise/local out and the Avro banner', {
    timeout: 120_000,
  }, () => {
    const app = new App({ outdir })
    const stack = new Stack(app, 'Orders', { env: ENV })
    new KinesisConsumer(stack, 'Consumer', { entry, avro: true, poisonQueue: true })
    const template = Template.fromStack(stack)
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Architectures: ['arm64'],
      MemorySize: 1024,
      Timeout: 60,
      Environment: {
        Variables: {
          NODE_OPTIONS: '--enable-source-maps',
          [SINK_ENV]: { Ref: Match.stringLikeRegexp('^ConsumerPoisonQueue') },
        },
      },
    })
    const assets = readdirSync(outdir).filter(
      (name) => name.startsWith('asset.') && existsSync(join(outdir, name, 'index.mjs')),
    )
    expect(assets).toHaveLength(1)
    const dir = join(outdir, assets[0] as string)
    const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8')
    expect(
      bundle.startsWith("import { createRequire as __shardwiseCreateRequire } from 'node:module';"),
    ).toBe(true)
    // keepNames: esbuild names each class through its __name helper, which survives minifying.
    expect(bundle).toMatch(/"OrderRejectedError"/)
    expect(bundle).toMatch(/"ConfigurationError"/)
    expect(bundle).toMatch(/from"@shardwise\/local"/)
    expect(bundle).not.toContain('kinesalite')
    expect(bundle).toMatch(/export\s*\{/)
    expect(bundle).toContain('//# sourceMappingURL=index.mjs.map')
    expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true)
  })
})
