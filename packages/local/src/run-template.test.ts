import { mkdtempSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from './command.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { produce } from './produce.js'
import { capture } from './test-helpers.js'

afterEach(() => {
  vi.restoreAllMocks()
})

let kinesis: LocalKinesis
const dir = mkdtempSync(join(tmpdir(), 'shardwise-run-template-'))

beforeAll(async () => {
  kinesis = await startLocalKinesis()
})

afterAll(async () => {
  await kinesis.close()
})

/** A SAM template whose mapping reads `stream` with small batches, no retry, and a filter. */
function samTemplate(stream: string): string {
  return `Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 7
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties: { Name: ${stream}, ShardCount: 1 }
  Dlq:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Events:
        Stream:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: TRIM_HORIZON
            BatchSize: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
            BisectBatchOnFunctionError: false
            MaximumRetryAttempts: 0
            FilterCriteria:
              Filters:
                - Pattern: '{"data":{"kind":["order"]}}'
            DestinationConfig:
              OnFailure: { Type: SQS, Destination: !GetAtt Dlq.Arn }
`
}

/** Appends each invocation (its payloads and the time it was given) to a file; fails "bad". */
async function handlerModule(): Promise<{ module: string; calls: () => Promise<Call[]> }> {
  const log = join(dir, `calls-${Math.random().toString(36).slice(2)}.jsonl`)
  const module = join(dir, `handler-${Math.random().toString(36).slice(2)}.mjs`)
  await writeFile(
    module,
    `import { appendFileSync } from 'node:fs'
    export const handler = async (event, context) => {
      const orders = event.Records.map((r) => JSON.parse(Buffer.from(r.kinesis.data, 'base64').toString()))
      appendFileSync(${JSON.stringify(log)}, JSON.stringify({ ids: orders.map((o) => o.id), remainingMs: context.getRemainingTimeInMillis() }) + '\\n')
      return { batchItemFailures: event.Records.filter((r, i) => orders[i].bad).map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) }
    }\n`,
  )
  const calls = async () =>
    (await readFile(log, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Call)
  return { module, calls }
}

interface Call {
  ids: number[]
  remainingMs: number
}

async function putOrders(stream: string): Promise<void> {
  await kinesis.createStream(stream, 1)
  const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))
  await produce({ client: kinesis.client, stream }, [
    { partitionKey: 'a', data: json({ kind: 'order', id: 1 }) },
    { partitionKey: 'a', data: json({ kind: 'order', id: 2 }) },
    { partitionKey: 'a', data: json({ kind: 'refund', id: 3 }) },
    { partitionKey: 'a', data: json({ kind: 'order', id: 4, bad: true }) },
    { partitionKey: 'a', data: json({ kind: 'order', id: 5 }) },
    { partitionKey: 'a', data: json({ kind: 'order', id: 6 }) },
  ])
}

const RUN = ['--exit-when-idle', '0.5', '--poll-interval-ms', '50', '--progress-interval', '0']

describe('shardwise run --template', () => {
  it("runs the template's mapping: its batch size, filter, retries, timeout and stream, and says where each came from", async () => {
    await putOrders('from-template')
    const template = join(dir, 'template.yaml')
    await writeFile(template, samTemplate('from-template'))
    const handler = await handlerModule()
    const onFailure = join(dir, 'failed.jsonl')
    const io = capture()
    const code = await main([
      'run',
      '--handler',
      handler.module,
      '--template',
      template,
      '--function',
      'Consumer',
      '--endpoint',
      kinesis.endpoint,
      '--on-failure',
      onFailure,
      ...RUN,
    ])
    expect(code).toBe(0)
    const calls = await handler.calls()
    // Batches of 2 (not Lambda's default of 100); the refund filtered out; order 4 fails and,
    // with no retry, its batch (4 and 5) is discarded at once; order 6 comes last.
    expect(calls.map((c) => c.ids)).toEqual([[1, 2], [4, 5], [6]])
    // The function's timeout is the template's 7 s (Globals), not the CLI's default of 3.
    for (const call of calls) {
      expect(call.remainingMs).toBeGreaterThan(3000)
      expect(call.remainingMs).toBeLessThanOrEqual(7000)
    }
    const documents = (await readFile(onFailure, 'utf8')).trim().split('\n')
    expect(documents).toHaveLength(1)
    expect(JSON.parse(documents[0] as string).KinesisBatchInfo.batchSize).toBe(2)
    expect(io.out()).toMatch(/records filtered out\s+1\n/)
    const at = 'Resources.Consumer.Properties.Events.Stream.Properties'
    expect(io.err()).toContain(
      [
        `mapping of Consumer from ${template} Resources.Consumer.Properties.Events.Stream`,
        '  stream                    from-template (the stream resource or ARN)',
        `  batch size                2 (${at}.BatchSize)`,
        "  batching window           0 s (Lambda's default)",
        `  starting position         TRIM_HORIZON (${at}.StartingPosition)`,
        `  ReportBatchItemFailures   on (${at}.FunctionResponseTypes)`,
        `  bisect on function error  off (${at}.BisectBatchOnFunctionError)`,
        `  maximum retry attempts    0 (${at}.MaximumRetryAttempts)`,
        "  maximum record age        -1 (infinite) (Lambda's default)",
        "  parallelization factor    1 (Lambda's default)",
        "  tumbling window           off (Lambda's default)",
        `  filter criteria           1 filter(s) (${at}.FilterCriteria)`,
        '  function timeout          7 s (Globals.Function.Timeout)',
        `  on-failure destination    ${onFailure} (--on-failure, for !GetAtt Dlq.Arn)`,
        '',
      ].join('\n'),
    )
  })

  it('flags given as well override the template, and the start line says so', async () => {
    await putOrders('overridden')
    const template = join(dir, 'override.yaml')
    await writeFile(template, samTemplate('overridden'))
    const handler = await handlerModule()
    const io = capture()
    const code = await main([
      'run',
      '--handler',
      handler.module,
      '--template',
      template,
      '--endpoint',
      kinesis.endpoint,
      '--batch-size',
      '10',
      '--maximum-retry-attempts',
      '1',
      '--timeout',
      '2',
      '--stream',
      'overridden',
      ...RUN,
    ])
    expect(code).toBe(0)
    const calls = await handler.calls()
    // One batch of the five orders; order 4 fails, is retried once from the checkpoint, and
    // then that batch (4 to 6) is discarded: nothing is kept locally without --on-failure.
    expect(calls.map((c) => c.ids)).toEqual([
      [1, 2, 4, 5, 6],
      [4, 5, 6],
    ])
    for (const call of calls) expect(call.remainingMs).toBeLessThanOrEqual(2000)
    const err = io.err()
    expect(err).toContain('  stream                    overridden (--stream)\n')
    expect(err).toContain('  batch size                10 (--batch-size)\n')
    expect(err).toContain('  maximum retry attempts    1 (--maximum-retry-attempts)\n')
    expect(err).toContain('  function timeout          2 s (--timeout)\n')
    expect(err).toContain(
      '  on-failure destination    none kept locally (the template sends to !GetAtt Dlq.Arn: pass --on-failure <file> to keep what would go there)\n',
    )
  })

  describe('says what is wrong, exit 2', () => {
    const cases: Array<[string, () => Promise<string[]>, string]> = [
      [
        '--function without --template',
        async () => ['--stream', 's', '--function', 'Consumer'],
        'shardwise: --function goes with --template <file>\n',
      ],
      [
        'a template that is not there',
        async () => ['--template', join(dir, 'missing.yaml')],
        `shardwise: --template: cannot read the template ${join(dir, 'missing.yaml')}: ENOENT`,
      ],
      [
        'a function the template does not hold',
        async () => {
          const path = join(dir, 'nofn.yaml')
          await writeFile(path, samTemplate('x'))
          return ['--template', path, '--function', 'Other']
        },
        `shardwise: --template: ${join(dir, 'nofn.yaml')} has no function Other (functions: Consumer)\n`,
      ],
      [
        'a stream whose name the template leaves to the deploy, and no --stream',
        async () => {
          const path = join(dir, 'noname.yaml')
          await writeFile(path, samTemplate('x').replace('Name: x, ', ''))
          return ['--template', path]
        },
        `shardwise: --stream is required: ${join(dir, 'noname.yaml')} does not name the stream of Consumer (!GetAtt Orders.Arn), so its name is only known once deployed\n`,
      ],
      [
        'a template with two mappings and no --function',
        async () => {
          const path = join(dir, 'two.yaml')
          const second = `  Other:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Clicks:
          Type: Kinesis
          Properties: { Stream: arn:aws:kinesis:us-east-1:123456789012:stream/clicks, StartingPosition: LATEST }
`
          await writeFile(path, samTemplate('orders') + second)
          return ['--template', path]
        },
        `shardwise: ${join(dir, 'two.yaml')} has 2 Kinesis mappings (Consumer <- orders, Other <- clicks): choose one with --function <id>\n`,
      ],
    ]
    for (const [name, args, message] of cases) {
      it(name, async () => {
        const io = capture()
        expect(await main(['run', '--handler', 'h.mjs', ...(await args())])).toBe(2)
        expect(io.err()).toContain(message)
        expect(io.err()).toContain('Run shardwise run --help for the options.\n')
      })
    }
  })
})
