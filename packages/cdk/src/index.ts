/**
 * `KinesisConsumer`: a Lambda function that consumes a Kinesis stream through the Shardwise
 * chain, deployed with the settings the chain's answer needs to count.
 *
 * The event source mapping always reports batch item failures (without it Lambda reads no
 * answer and drops the records after a failure), bisects, and gives up on a batch only after
 * bounded retries or a maximum record age, and then only into an SQS queue that keeps where the
 * batch was. Alarms watch how far behind the function is and every queue a record can end up in.
 */
import { ConfigurationError, checkOptions, type OptionRule, option } from '@shardwise/core'
import { Duration, Token } from 'aws-cdk-lib'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as kinesis from 'aws-cdk-lib/aws-kinesis'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs'
import type * as sns from 'aws-cdk-lib/aws-sns'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import { Construct } from 'constructs'

/**
 * The environment variable `@shardwise/sqs-poison-sink` reads the poison queue's URL from.
 * Written here rather than imported: the construct must not make the AWS SDK a dependency of
 * the CDK app, and the sink must not import aws-cdk-lib; a test checks that the two agree.
 */
export const POISON_QUEUE_URL_ENV = 'SHARDWISE_POISON_QUEUE_URL'

/** What Lambda needs to read a stream for a mapping ("services-kinesis-create"). */
export const STREAM_READ_ACTIONS: readonly string[] = [
  'kinesis:DescribeStream',
  'kinesis:DescribeStreamSummary',
  'kinesis:GetRecords',
  'kinesis:GetShardIterator',
  'kinesis:ListShards',
  'kinesis:SubscribeToShard',
]

/** Bundling settings the chain needs, applied to the function the construct creates from `entry`. */
export const EXTERNAL_MODULES: readonly string[] = [
  // The Node.js 22 runtime provides SDK v3; bundling it would pin an older copy into each zip.
  '@aws-sdk/*',
  // The local runner and its kinesalite: for tests on a laptop, never for the function.
  '@shardwise/local',
]

/** Makes `require` exist in the ESM bundle: avsc is CommonJS and requires Node's built-ins. */
export const CREATE_REQUIRE_BANNER =
  "import { createRequire as __shardwiseCreateRequire } from 'node:module';const require = __shardwiseCreateRequire(import.meta.url);"

export interface KinesisConsumerProps {
  /** The stream to consume. Default: an on-demand stream the construct creates, encrypted with the AWS-managed key. */
  readonly stream?: kinesis.IStream
  /** The handler's entry file: the construct bundles it into a `NodejsFunction`. Give this or `function`. */
  readonly entry?: string
  /** The handler's export name in `entry`. Default: `handler`. */
  readonly handler?: string
  /** An existing function to consume the stream with, instead of `entry`. */
  readonly function?: lambda.IFunction
  /**
   * More settings of the function built from `entry` (memory, timeout, environment, VPC, ...).
   * Default: 1,024 MB, a 1-minute timeout, arm64. Runtime, entry and bundling are the construct's.
   */
  readonly functionProps?: Omit<nodejs.NodejsFunctionProps, 'entry' | 'handler' | 'bundling'>
  /** The handler reads Avro (`@shardwise/avro-parse`, avsc): adds the `createRequire` banner. Default: false. */
  readonly avro?: boolean

  /** Records per invocation, 1 to 10,000. Default: 100. */
  readonly batchSize?: number
  /** How long Lambda gathers records before invoking, up to 300 s. Default: none. */
  readonly maxBatchingWindow?: Duration
  /** Where a new mapping starts reading. Default: `TRIM_HORIZON` (the oldest record kept). */
  readonly startingPosition?: lambda.StartingPosition
  /** With `startingPosition` `AT_TIMESTAMP`: epoch seconds. */
  readonly startingPositionTimestamp?: number
  /** Batches of one shard processed at once, 1 to 10 (order kept per partition key). Default: 1. */
  readonly parallelizationFactor?: number
  /** A tumbling window, up to 900 s; the handler must then answer `state` (`foldWindow`). Default: none. */
  readonly tumblingWindow?: Duration
  /** Event filtering patterns (`{ data: { kind: ['order'] } }`); records that match none are skipped. Default: none. */
  readonly filters?: ReadonlyArray<Record<string, unknown>>
  /** Retries of a failing batch before it goes to the on-failure queue, 0 to 10,000. Default: 10. */
  readonly retryAttempts?: number
  /** Records older than this go to the on-failure queue unprocessed, 60 s to 7 days. Default: 1 hour. */
  readonly maxRecordAge?: Duration

  /** Create a poison-record queue for `@shardwise/sqs-poison-sink`, set its URL on the function and grant send. Default: false. */
  readonly poisonQueue?: boolean
  /** Grant `glue:GetSchemaVersion` for the AWS Glue Schema Registry: `true` (any schema) or the ARNs of registries and schemas. Default: false. */
  readonly glueSchemaRegistry?: boolean | { readonly resources: readonly string[] }

  /** Where alarms notify. Default: none (the alarms still change state in CloudWatch). */
  readonly alarmTopic?: sns.ITopic
  /** Iterator age over which the iterator-age alarm fires; below `maxRecordAge`. Default: 5 minutes. */
  readonly iteratorAgeAlarmThreshold?: Duration
  /**
   * The namespace and service of `@shardwise/observe`'s `batchMetrics`: adds alarms on records
   * that keep failing and on records sent to the poison sink. Default: none.
   */
  readonly observeMetrics?: { readonly namespace: string; readonly service: string }
}

const PACKAGE = '@shardwise/cdk'
const RETENTION_OF_CREATED_STREAM = Duration.hours(24)

/** A Kinesis consumer: the function, its event source mapping, its queues, alarms and permissions. */
export class KinesisConsumer extends Construct {
  readonly stream: kinesis.IStream
  readonly function: lambda.IFunction
  /** Receives a document naming the shard and sequence range of each batch the mapping gave up on. */
  readonly onFailureQueue: sqs.Queue
  /** Receives the poison records themselves, from `@shardwise/sqs-poison-sink`, when `poisonQueue` is on. */
  readonly poisonQueue: sqs.Queue | undefined
  readonly eventSourceMappingId: string
  readonly alarms: cloudwatch.Alarm[] = []

  constructor(scope: Construct, id: string, props: KinesisConsumerProps) {
    super(scope, id)
    const settings = checkProps(`${PACKAGE}: KinesisConsumer '${id}'`, props)

    this.stream =
      props.stream ??
      new kinesis.Stream(this, 'Stream', {
        streamMode: kinesis.StreamMode.ON_DEMAND,
        encryption: kinesis.StreamEncryption.MANAGED,
        retentionPeriod: RETENTION_OF_CREATED_STREAM,
      })
    this.function = props.function ?? this.createFunction(props)

    this.onFailureQueue = this.queue('OnFailureQueue')
    const onFailureQueue = this.onFailureQueue
    const mapping = new lambda.EventSourceMapping(this, 'Mapping', {
      target: this.function,
      eventSourceArn: this.stream.streamArn,
      reportBatchItemFailures: true,
      bisectBatchOnError: true,
      retryAttempts: settings.retryAttempts,
      maxRecordAge: settings.maxRecordAge,
      onFailure: { bind: () => ({ destination: onFailureQueue.queueArn }) },
      batchSize: settings.batchSize,
      startingPosition: props.startingPosition ?? lambda.StartingPosition.TRIM_HORIZON,
      ...(props.startingPositionTimestamp === undefined
        ? {}
        : { startingPositionTimestamp: props.startingPositionTimestamp }),
      ...(props.maxBatchingWindow ? { maxBatchingWindow: props.maxBatchingWindow } : {}),
      parallelizationFactor: settings.parallelizationFactor,
      ...(props.tumblingWindow ? { tumblingWindow: props.tumblingWindow } : {}),
      ...(props.filters?.length
        ? { filters: props.filters.map((pattern) => lambda.FilterCriteria.filter({ ...pattern })) }
        : {}),
    })
    this.eventSourceMappingId = mapping.eventSourceMappingId
    // What Lambda's Kinesis page lists for a mapping, on this stream alone; no ListStreams on "*"
    // nor DescribeStreamConsumer, which KinesisEventSource's grantRead adds. Lambda checks the
    // role when the mapping is created, so the mapping waits for the policy.
    const grants = [
      this.stream.grant(this.function, ...STREAM_READ_ACTIONS),
      onFailureQueue.grant(this.function, 'sqs:SendMessage'),
    ]
    if (this.stream.encryptionKey)
      grants.push(this.stream.encryptionKey.grantDecrypt(this.function))
    for (const grant of grants) grant.applyBefore(mapping)

    if (props.poisonQueue) {
      this.poisonQueue = this.queue('PoisonQueue')
      // SendMessage alone: the sink neither reads the queue nor looks up its attributes.
      this.poisonQueue.grant(this.function, 'sqs:SendMessage')
      environmentOf(this.function).addEnvironment(POISON_QUEUE_URL_ENV, this.poisonQueue.queueUrl)
    } else {
      this.poisonQueue = undefined
    }
    if (props.glueSchemaRegistry) this.grantGlue(props.glueSchemaRegistry)
    if (props.observeMetrics && 'addEnvironment' in this.function) {
      // Powertools' Metrics takes these when the handler does not name them itself.
      environmentOf(this.function)
        .addEnvironment('POWERTOOLS_METRICS_NAMESPACE', props.observeMetrics.namespace)
        .addEnvironment('POWERTOOLS_SERVICE_NAME', props.observeMetrics.service)
    }
    this.addAlarms(props, settings)
  }

  private createFunction(props: KinesisConsumerProps): nodejs.NodejsFunction {
    const functionProps = props.functionProps ?? {}
    const nodeOptions = functionProps.environment?.NODE_OPTIONS
    return new nodejs.NodejsFunction(this, 'Function', {
      memorySize: 1024,
      timeout: Duration.minutes(1),
      architecture: lambda.Architecture.ARM_64,
      ...functionProps,
      runtime: functionProps.runtime ?? lambda.Runtime.NODEJS_22_X,
      entry: props.entry as string,
      handler: props.handler ?? 'handler',
      environment: {
        ...functionProps.environment,
        // Stack traces point into the sources, not into one minified line.
        NODE_OPTIONS: nodeOptions?.includes('--enable-source-maps')
          ? nodeOptions
          : `${nodeOptions ? `${nodeOptions} ` : ''}--enable-source-maps`,
      },
      bundling: {
        format: nodejs.OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        minify: true,
        // Error classes keep their names (DecodeError, ValidationError, ...): logs, the poison
        // sink and @shardwise/observe's metrics sort failures by them.
        keepNames: true,
        sourceMap: true,
        sourcesContent: false,
        externalModules: [...EXTERNAL_MODULES],
        ...(props.avro ? { banner: CREATE_REQUIRE_BANNER } : {}),
      },
    })
  }

  private queue(id: string): sqs.Queue {
    return new sqs.Queue(this, id, {
      // The longest SQS keeps a message: time to notice, fix the cause and replay.
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // SQS's largest message, so that records of up to ~750 KiB fit once base64-encoded.
      maxMessageSizeBytes: 1_048_576,
    })
  }

  private grantGlue(registry: true | { readonly resources: readonly string[] }): void {
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['glue:GetSchemaVersion'],
        // Looked up by schema version id alone, a version names no registry in the request;
        // AWS's own deserializer policy grants it on "*". Give the ARNs to narrow it.
        resources: registry === true ? ['*'] : [...registry.resources],
      }),
    )
  }

  private addAlarms(props: KinesisConsumerProps, settings: Settings): void {
    const minute = Duration.minutes(1)
    const alarm = (id: string, alarmProps: cloudwatch.AlarmProps) => {
      const created = new cloudwatch.Alarm(this, id, alarmProps)
      if (props.alarmTopic) created.addAlarmAction(new SnsAction(props.alarmTopic))
      this.alarms.push(created)
      return created
    }
    const atLeastOne = {
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // An idle queue or function publishes nothing: that is the good case.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }

    alarm('IteratorAgeAlarm', {
      alarmDescription: `The function is more than ${settings.iteratorAgeAlarmThreshold.toHumanString()} behind its stream (records expire to the on-failure queue at ${settings.maxRecordAge.toHumanString()})`,
      metric: this.function.metric('IteratorAge', { statistic: 'Maximum', period: minute }),
      threshold: settings.iteratorAgeAlarmThreshold.toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      // A stalled consumer may stop publishing; keep the alarm where it was rather than clear it.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
    })
    alarm('FunctionErrorsAlarm', {
      ...atLeastOne,
      alarmDescription:
        'An invocation failed as a whole (threw, timed out, ran out of memory): record failures are reported, never thrown, so this is a fault of the function or its wiring',
      metric: this.function.metricErrors({ statistic: 'Sum', period: minute }),
    })
    alarm('OnFailureQueueAlarm', {
      ...atLeastOne,
      alarmDescription:
        'The mapping gave up on a batch (retries or record age exhausted): its records were skipped; the message names the shard and sequence range to redrive',
      metric: this.onFailureQueue.metricApproximateNumberOfMessagesVisible({
        statistic: 'Maximum',
        period: minute,
      }),
    })
    if (this.poisonQueue) {
      alarm('PoisonQueueAlarm', {
        ...atLeastOne,
        alarmDescription:
          'Poison records are waiting in the poison queue: each holds its bytes and error, to fix and replay',
        metric: this.poisonQueue.metricApproximateNumberOfMessagesVisible({
          statistic: 'Maximum',
          period: minute,
        }),
      })
    }
    if (props.observeMetrics) this.addObserveAlarms(props.observeMetrics, alarm)
  }

  private addObserveAlarms(
    { namespace, service }: { readonly namespace: string; readonly service: string },
    alarm: (id: string, alarmProps: cloudwatch.AlarmProps) => cloudwatch.Alarm,
  ): void {
    // The dimensions batchMetrics publishes by default; an alarm must name exactly those.
    const metric = (metricName: string) =>
      new cloudwatch.Metric({
        namespace,
        metricName,
        dimensionsMap: {
          service,
          StreamName: this.stream.streamName,
          FunctionName: this.function.functionName,
        },
        statistic: 'Sum',
        period: Duration.minutes(1),
      })
    alarm('RecordsFailingAlarm', {
      alarmDescription:
        'Records have failed without going to the poison sink for 3 minutes in a row: they hold their shards (RecordsFailed - RecordsSentToPoisonSink)',
      metric: new cloudwatch.MathExpression({
        // batchMetrics leaves out counts of zero: a minute with failures and nothing sent to
        // the sink has no poisoned value, and without FILL the difference would be missing too.
        expression: 'FILL(failed, 0) - FILL(poisoned, 0)',
        usingMetrics: {
          failed: metric('RecordsFailed'),
          poisoned: metric('RecordsSentToPoisonSink'),
        },
        period: Duration.minutes(1),
        label: 'records failed and holding their shard',
      }),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    })
    alarm('PoisonRecordsAlarm', {
      alarmDescription: 'Records were sent to the poison sink: they need a fix and a replay',
      metric: metric('RecordsSentToPoisonSink'),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    })
  }
}

/** A function the construct can set environment variables on. */
function environmentOf(fn: lambda.IFunction): lambda.Function {
  return fn as lambda.Function
}

interface Settings {
  batchSize: number
  parallelizationFactor: number
  retryAttempts: number
  maxRecordAge: Duration
  iteratorAgeAlarmThreshold: Duration
}

const isDuration = (value: unknown): value is Duration =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Duration).toSeconds === 'function' &&
  typeof (value as Duration).toHumanString === 'function'

/** A `Duration` from `minimum` to `maximum` seconds; one that is a token is left to CloudFormation. */
const durationIn =
  (minimum: number, maximum: number): OptionRule =>
  (value, name) => {
    if (!isDuration(value)) return `Option '${name}' must be a Duration`
    if (Token.isUnresolved(value)) return undefined
    const seconds = value.toSeconds({ integral: false })
    if (seconds < minimum || seconds > maximum)
      return `Option '${name}' must be from ${Duration.seconds(minimum).toHumanString()} to ${Duration.seconds(maximum).toHumanString()}, got ${value.toHumanString()}`
    return undefined
  }

/** A number that is a CDK token (resolved at deployment) is left to CloudFormation. */
const unlessToken =
  (rule: OptionRule): OptionRule =>
  (value, name) =>
    typeof value === 'number' && Token.isUnresolved(value) ? undefined : rule(value, name)

const construct = (what: string, method: string): OptionRule =>
  option.that((value) => typeof value === 'object' && value !== null && method in value, `${what}`)

const RULES = {
  stream: construct('a Kinesis stream (kinesis.IStream)', 'streamArn'),
  entry: option.matching(/./, 'the path of the handler file'),
  handler: option.matching(/./, 'the name of an export of the entry file'),
  function: construct('a Lambda function (lambda.IFunction)', 'addEventSource'),
  functionProps: option.object,
  avro: option.boolean,
  batchSize: unlessToken(option.integer(1, 10_000)),
  maxBatchingWindow: durationIn(0, 300),
  startingPosition: option.oneOf(...Object.values(lambda.StartingPosition)),
  startingPositionTimestamp: unlessToken(option.number(0)),
  parallelizationFactor: unlessToken(option.integer(1, 10)),
  tumblingWindow: durationIn(0, 900),
  filters: option.arrayOf(
    option.that(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.keys(value).length > 0,
      'a non-empty event pattern object',
    ),
  ),
  retryAttempts: unlessToken((value, name) =>
    value === -1
      ? `Option '${name}' must be 0 to 10000: -1 (retry for ever) lets a failing record stall its shard until it expires`
      : option.integer(0, 10_000)(value, name),
  ),
  maxRecordAge: durationIn(60, 604_800),
  poisonQueue: option.boolean,
  glueSchemaRegistry: (value: unknown, name: string) =>
    value === true || value === false
      ? undefined
      : option.shape(
          {
            resources: option.that(
              (resources) =>
                Array.isArray(resources) &&
                resources.length > 0 &&
                resources.every((arn) => typeof arn === 'string' && arn !== ''),
              'a non-empty array of ARNs',
            ),
          },
          ['resources'],
        )(value, name),
  alarmTopic: construct('an SNS topic (sns.ITopic)', 'topicArn'),
  iteratorAgeAlarmThreshold: durationIn(1, 604_800),
  observeMetrics: option.shape(
    {
      namespace: option.matching(/^[^:].{0,254}$/, 'a CloudWatch namespace (1 to 255 characters)'),
      service: option.matching(/^.{1,255}$/, "the Metrics' service name (1 to 255 characters)"),
    },
    ['namespace', 'service'],
  ),
} as const

/** Checks the props as a whole, naming the option at fault; fills in the defaults. */
function checkProps(where: string, props: KinesisConsumerProps): Settings {
  checkOptions(where, RULES, props)
  const refuse = (problem: string): never => {
    throw new ConfigurationError(`${where}: ${problem}`)
  }
  if (props.entry === undefined && props.function === undefined)
    refuse("needs 'entry' (the handler file to bundle) or 'function' (an existing function)")
  if (props.entry !== undefined && props.function !== undefined)
    refuse("takes 'entry' or 'function', not both")
  if (props.function !== undefined) {
    for (const name of ['handler', 'functionProps', 'avro'] as const) {
      if (props[name] !== undefined)
        refuse(
          `Option '${name}' applies to the function built from 'entry'; with 'function', set it on that function`,
        )
    }
    if (props.poisonQueue && !('addEnvironment' in props.function))
      refuse(
        `Option 'poisonQueue' needs a function whose environment the construct can set (${POISON_QUEUE_URL_ENV}): an imported function cannot be changed; create it in this app, or use 'entry'`,
      )
  }
  const bundling = (props.functionProps as { bundling?: unknown } | undefined)?.bundling
  if (bundling !== undefined)
    refuse(
      "Option 'functionProps.bundling' is not taken: the construct bundles for the chain (ESM, Node 22, keepNames, source maps); use 'avro' for the createRequire banner",
    )
  const runtime = props.functionProps?.runtime
  if (
    runtime !== undefined &&
    (runtime.family !== lambda.RuntimeFamily.NODEJS ||
      Number(/^nodejs(\d+)/.exec(runtime.name)?.[1] ?? 0) < 22)
  )
    refuse(
      `Option 'functionProps.runtime' must be Node.js 22 or later (the chain needs it), got ${runtime.name}`,
    )

  const isAtTimestamp = props.startingPosition === lambda.StartingPosition.AT_TIMESTAMP
  if (isAtTimestamp && props.startingPositionTimestamp === undefined)
    refuse("Option 'startingPosition' AT_TIMESTAMP needs 'startingPositionTimestamp'")
  if (!isAtTimestamp && props.startingPositionTimestamp !== undefined)
    refuse("Option 'startingPositionTimestamp' applies only with 'startingPosition' AT_TIMESTAMP")

  const parallelizationFactor = props.parallelizationFactor ?? 1
  if (
    props.tumblingWindow !== undefined &&
    !Token.isUnresolved(props.tumblingWindow) &&
    props.tumblingWindow.toSeconds({ integral: false }) > 0 &&
    !Token.isUnresolved(parallelizationFactor) &&
    parallelizationFactor > 1
  )
    refuse(
      `Option 'tumblingWindow' cannot be used with 'parallelizationFactor' ${parallelizationFactor}: Lambda keeps a window's state per shard, so it needs one batch of a shard at a time (parallelizationFactor 1)`,
    )

  const maxRecordAge = props.maxRecordAge ?? Duration.hours(1)
  const resolved = (duration: Duration) => !Token.isUnresolved(duration)
  if (
    props.stream === undefined &&
    resolved(maxRecordAge) &&
    maxRecordAge.toSeconds() >= RETENTION_OF_CREATED_STREAM.toSeconds()
  )
    refuse(
      `Option 'maxRecordAge' (${maxRecordAge.toHumanString()}) must be under the created stream's retention (${RETENTION_OF_CREATED_STREAM.toHumanString()}), or the records of a batch given up on are gone before they can be redriven`,
    )
  const iteratorAgeAlarmThreshold = props.iteratorAgeAlarmThreshold ?? Duration.minutes(5)
  if (
    resolved(maxRecordAge) &&
    resolved(iteratorAgeAlarmThreshold) &&
    iteratorAgeAlarmThreshold.toSeconds({ integral: false }) >= maxRecordAge.toSeconds()
  )
    refuse(
      `Option 'iteratorAgeAlarmThreshold' (${iteratorAgeAlarmThreshold.toHumanString()}) must be under 'maxRecordAge' (${maxRecordAge.toHumanString()}): the alarm should fire before records expire unprocessed`,
    )

  return {
    batchSize: props.batchSize ?? 100,
    parallelizationFactor,
    retryAttempts: props.retryAttempts ?? 10,
    maxRecordAge,
    iteratorAgeAlarmThreshold,
  }
}
