import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readTemplate, TemplateError } from './template.js'

const dir = mkdtempSync(join(tmpdir(), 'shardwise-template-'))
function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** The shape `cdk synth` writes: logical ids with hashes, Ref and Fn::GetAtt, aws:cdk:path. */
const cdkTemplate = {
  Resources: {
    OrdersStream1A2B3C4D: {
      Type: 'AWS::Kinesis::Stream',
      Properties: { Name: 'orders', ShardCount: 2 },
    },
    ConsumerDlqABCD1234: { Type: 'AWS::SQS::Queue' },
    ConsumerHandlerF00DCAFE: {
      Type: 'AWS::Lambda::Function',
      Properties: { Runtime: 'nodejs22.x', Timeout: 30 },
      Metadata: { 'aws:cdk:path': 'OrdersStack/Consumer/Handler/Resource' },
    },
    ConsumerHandlerKinesisEventSourceBEEF0001: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'ConsumerHandlerF00DCAFE' },
        EventSourceArn: { 'Fn::GetAtt': ['OrdersStream1A2B3C4D', 'Arn'] },
        BatchSize: 100,
        StartingPosition: 'TRIM_HORIZON',
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        MaximumRecordAgeInSeconds: 86400,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': ['ConsumerDlqABCD1234', 'Arn'] } },
        },
        FilterCriteria: { Filters: [{ Pattern: '{"data":{"kind":["order"]}}' }] },
      },
      Metadata: { 'aws:cdk:path': 'OrdersStack/Consumer/Handler/KinesisEventSource/Resource' },
    },
    QueueConsumerMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        FunctionName: { Ref: 'ConsumerHandlerF00DCAFE' },
        EventSourceArn: { 'Fn::GetAtt': ['ConsumerDlqABCD1234', 'Arn'] },
      },
    },
    CDKMetadata: { Type: 'AWS::CDK::Metadata' },
  },
}

describe('readTemplate', () => {
  it('reads a CDK-synthesized template: settings, function timeout, destination, where each came from', () => {
    const path = file('cdk.template.json', JSON.stringify(cdkTemplate))
    const [mapping, ...others] = readTemplate(path)
    expect(others).toEqual([]) // the SQS mapping is not a Kinesis one
    expect(mapping).toMatchObject({
      origin: 'cdk',
      where: `${path} Resources.ConsumerHandlerKinesisEventSourceBEEF0001`,
      function: 'ConsumerHandlerF00DCAFE',
      eventSource: '!GetAtt OrdersStream1A2B3C4D.Arn',
      streamName: 'orders',
      enabled: true,
      settings: {
        batchSize: 100,
        startingPosition: 'TRIM_HORIZON',
        functionResponseTypes: ['ReportBatchItemFailures'],
        bisectBatchOnFunctionError: true,
        maximumRetryAttempts: 10,
        maximumRecordAgeInSeconds: 86400,
        filterCriteria: { Filters: [{ Pattern: '{"data":{"kind":["order"]}}' }] },
      },
      onFailureDestination: '!GetAtt ConsumerDlqABCD1234.Arn',
      timeoutSeconds: 30,
      unresolved: {},
    })
    expect(mapping?.sources.batchSize).toBe(
      'Resources.ConsumerHandlerKinesisEventSourceBEEF0001.Properties.BatchSize',
    )
    expect(mapping?.sources.timeoutSeconds).toBe(
      'Resources.ConsumerHandlerF00DCAFE.Properties.Timeout',
    )
  })

  it('knows a template an App synthesized in code (no CDKMetadata, no paths) by its BootstrapVersion', () => {
    const bare = structuredClone(cdkTemplate) as { Resources: Record<string, object> } & Record<
      string,
      unknown
    >
    delete bare.Resources.CDKMetadata
    for (const resource of Object.values(bare.Resources))
      delete (resource as { Metadata?: unknown }).Metadata
    expect(readTemplate(file('bare.template.json', JSON.stringify(bare)))[0]?.origin).toBe(
      'cloudformation',
    )
    bare.Parameters = {
      BootstrapVersion: {
        Type: 'AWS::SSM::Parameter::Value<String>',
        Default: '/cdk-bootstrap/hnb659fds/version',
      },
    }
    expect(readTemplate(file('bootstrap.template.json', JSON.stringify(bare)))[0]?.origin).toBe(
      'cdk',
    )
  })

  it('finds a function by logical id, by its CDK construct path, or by its FunctionName', () => {
    const path = file('cdk2.template.json', JSON.stringify(cdkTemplate))
    for (const name of [
      'ConsumerHandlerF00DCAFE',
      'Consumer/Handler',
      'OrdersStack/Consumer/Handler',
    ]) {
      expect(readTemplate(path, { function: name }).map((m) => m.function)).toEqual([
        'ConsumerHandlerF00DCAFE',
      ])
    }
    const named = structuredClone(cdkTemplate)
    Object.assign(named.Resources.ConsumerHandlerF00DCAFE.Properties, {
      FunctionName: 'orders-consumer',
    })
    const namedPath = file('named.template.json', JSON.stringify(named))
    expect(readTemplate(namedPath, { function: 'orders-consumer' })).toHaveLength(1)
  })

  it("reads CloudFormation YAML with short tags; a parameter's default counts, a condition is unresolved", () => {
    const path = file(
      'cfn.yaml',
      `AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  BatchSize:
    Type: Number
    Default: 250
  Retries:
    Type: Number
Conditions:
  Prod: !Equals [!Ref AWS::AccountId, '123456789012']
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: { ShardCount: 1 }
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub '\${AWS::StackName}-fn'
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !GetAtt Fn.Arn
      EventSourceArn: !GetAtt Stream.Arn
      StartingPosition: LATEST
      BatchSize: !Ref BatchSize
      MaximumRetryAttempts: !Ref Retries
      BisectBatchOnFunctionError: !If [Prod, true, false]
      ParallelizationFactor: "4"
`,
    )
    const [mapping] = readTemplate(path, { function: 'Fn' })
    expect(mapping).toMatchObject({
      origin: 'cloudformation',
      function: 'Fn',
      settings: { batchSize: 250, startingPosition: 'LATEST', parallelizationFactor: 4 },
      timeoutSeconds: 3,
      sources: {
        batchSize: 'Resources.Mapping.Properties.BatchSize (the default of parameter BatchSize)',
        timeoutSeconds: "Lambda's default",
      },
      unresolved: {
        maximumRetryAttempts:
          'Resources.Mapping.Properties.MaximumRetryAttempts is !Ref Retries, a parameter without a default',
        bisectBatchOnFunctionError:
          'Resources.Mapping.Properties.BisectBatchOnFunctionError is {"Fn::If":["Prod",true,false]}, only known at deploy time',
      },
    })
    expect(mapping?.settings.maximumRetryAttempts).toBeUndefined()
    expect(mapping?.streamName).toBeUndefined()
  })

  it("reads a SAM template: Kinesis events of AWS::Serverless::Function, and Globals' timeout", () => {
    const path = file(
      'template.yaml',
      `Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 45
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties: { Name: orders, ShardCount: 1 }
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Events:
        Api:
          Type: Api
          Properties: { Path: /, Method: get }
        Stream:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 500
            TumblingWindowInSeconds: 60
            Enabled: false
  Other:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Events:
        Stream:
          Type: Kinesis
          Properties:
            Stream: arn:aws:kinesis:eu-west-1:123456789012:stream/clicks
            StartingPosition: LATEST
            FunctionResponseTypes: [ReportBatchItemFailures]
`,
    )
    const [consumer, other] = readTemplate(path)
    expect(consumer).toMatchObject({
      origin: 'sam',
      where: `${path} Resources.Consumer.Properties.Events.Stream`,
      function: 'Consumer',
      streamName: 'orders',
      enabled: false,
      settings: { batchSize: 500, tumblingWindowInSeconds: 60 },
      timeoutSeconds: 45,
      sources: { timeoutSeconds: 'Globals.Function.Timeout' },
    })
    expect(other).toMatchObject({
      function: 'Other',
      streamName: 'clicks',
      timeoutSeconds: 5,
      settings: { functionResponseTypes: ['ReportBatchItemFailures'] },
    })
  })

  it("reads serverless.yml's stream events, with the framework's defaults (batch size 10, timeout 6 s)", () => {
    const path = file(
      'serverless.yml',
      `service: orders
provider:
  name: aws
  runtime: nodejs22.x
functions:
  consumer:
    handler: dist/consumer.handler
    events:
      - stream:
          type: kinesis
          arn: !GetAtt OrdersStream.Arn
          functionResponseType: ReportBatchItemFailures
          bisectBatchOnFunctionError: true
          maximumRetryAttempts: 5
          batchWindow: 2
          destinations:
            onFailure:
              arn: !GetAtt Dlq.Arn
              type: sqs
          filterPatterns:
            - data: { kind: [order] }
      - stream: arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026
      - stream: arn:aws:kinesis:eu-west-1:123456789012:stream/clicks
  timed:
    handler: dist/timed.handler
    timeout: 20
    events:
      - stream:
          type: dynamodb
          arn: arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026
resources:
  Resources:
    OrdersStream:
      Type: AWS::Kinesis::Stream
      Properties: { Name: orders, ShardCount: 1 }
    Dlq:
      Type: AWS::SQS::Queue
`,
    )
    const [consumer, clicks, ...rest] = readTemplate(path)
    expect(rest).toEqual([])
    expect(consumer).toMatchObject({
      origin: 'serverless',
      where: `${path} functions.consumer.events[0].stream`,
      function: 'consumer',
      streamName: 'orders',
      settings: {
        batchSize: 10,
        startingPosition: 'TRIM_HORIZON',
        maximumBatchingWindowInSeconds: 2,
        functionResponseTypes: ['ReportBatchItemFailures'],
        bisectBatchOnFunctionError: true,
        maximumRetryAttempts: 5,
        filterCriteria: { Filters: [{ Pattern: '{"data":{"kind":["order"]}}' }] },
      },
      onFailureDestination: '!GetAtt Dlq.Arn',
      timeoutSeconds: 6,
      sources: {
        batchSize: "the Serverless Framework's default",
        timeoutSeconds: "the Serverless Framework's default",
        onFailureDestination: 'functions.consumer.events[0].stream.destinations.onFailure',
      },
    })
    expect(clicks).toMatchObject({
      where: `${path} functions.consumer.events[2].stream`,
      streamName: 'clicks',
      settings: { batchSize: 10 },
    })
    expect(() => readTemplate(path, { function: 'timed' })).toThrow(
      `function timed has no Kinesis event source mapping in ${path}`,
    )
  })

  it('says that the timeout of a function the template does not hold is unknown', () => {
    const path = file(
      'elsewhere.yaml',
      'Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: { FunctionName: arn:aws:lambda:us-east-1:123456789012:function:orders, EventSourceArn: arn:aws:kinesis:us-east-1:123456789012:stream/s, StartingPosition: LATEST }\n',
    )
    const [mapping] = readTemplate(path, { function: 'orders' })
    expect(mapping?.function).toBe('orders')
    expect(mapping?.timeoutSeconds).toBeUndefined()
    expect(mapping?.unresolved).toEqual({
      timeoutSeconds: `orders is not a function of ${path}, so its timeout is unknown`,
    })
  })

  describe('says why a template cannot be read', () => {
    const cases: Array<[string, string, string | RegExp]> = [
      ['bad.yaml', 'Resources:\n  A: [1, 2\n', /^.*bad\.yaml is not valid JSON or YAML: .*line 3/s],
      ['bad.json', '{"Resources": ', /bad\.json is not valid JSON or YAML: .*JSON/],
      ['list.yaml', '- 1\n- 2\n', 'list.yaml holds a list, not a template (an object)'],
      ['empty.yaml', '', 'empty.yaml holds nothing, not a template (an object)'],
      [
        'other.yaml',
        'name: x\n',
        'other.yaml is neither a CloudFormation template (no Resources) nor a Serverless Framework configuration (no functions)',
      ],
      [
        'sqs.yaml',
        'Resources:\n  Q: { Type: AWS::SQS::Queue }\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: { FunctionName: f, EventSourceArn: !GetAtt Q.Arn }\n',
        'sqs.yaml deploys no Kinesis event source mapping',
      ],
      [
        'nan.yaml',
        'Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: { FunctionName: f, EventSourceArn: arn:aws:kinesis:us-east-1:1:stream/s, StartingPosition: LATEST, BatchSize: lots }\n',
        'nan.yaml Resources.M: Resources.M.Properties.BatchSize is lots, not a number',
      ],
      [
        'bool.yaml',
        'Resources:\n  M:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties: { FunctionName: f, EventSourceArn: arn:aws:kinesis:us-east-1:1:stream/s, StartingPosition: LATEST, BisectBatchOnFunctionError: yes }\n',
        'bool.yaml Resources.M: Resources.M.Properties.BisectBatchOnFunctionError is yes, not true or false',
      ],
    ]
    for (const [name, text, message] of cases) {
      it(name, () => {
        const path = file(name, text)
        expect(() => readTemplate(path)).toThrow(TemplateError)
        expect(() => readTemplate(path)).toThrow(message)
      })
    }

    it('a file that is not there', () => {
      expect(() => readTemplate(join(dir, 'missing.yaml'))).toThrow(
        `cannot read the template ${join(dir, 'missing.yaml')}: ENOENT`,
      )
    })

    it('a function the template does not hold, listing those it does', () => {
      const path = file('cdk3.template.json', JSON.stringify(cdkTemplate))
      expect(() => readTemplate(path, { function: 'Nope' })).toThrow(
        `${path} has no function Nope (functions: ConsumerHandlerF00DCAFE)`,
      )
    })
  })
})
