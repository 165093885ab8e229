import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { checkMapping, type Finding, readDeployedMappings } from './check-mapping.js'
import { main } from './command.js'
import type { DeployedMapping } from './template.js'
import { capture } from './test-helpers.js'

afterEach(() => {
  vi.restoreAllMocks()
})

/** A mapping with the construct's defaults: no problem at all. */
function good(change: Partial<DeployedMapping> = {}): DeployedMapping {
  return {
    origin: 'cloudformation',
    where: 'template.json Resources.Mapping',
    function: 'Consumer',
    eventSource: '!GetAtt Orders.Arn',
    enabled: true,
    settings: {
      batchSize: 100,
      startingPosition: 'TRIM_HORIZON',
      functionResponseTypes: ['ReportBatchItemFailures'],
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 10,
      maximumRecordAgeInSeconds: 86400,
    },
    onFailureDestination: '!GetAtt Dlq.Arn',
    timeoutSeconds: 30,
    sources: {},
    unresolved: {},
    ...change,
  }
}

function withSettings(
  settings: DeployedMapping['settings'],
  change: Partial<DeployedMapping> = {},
) {
  const base = good(change)
  return { ...base, settings: { ...base.settings, ...settings } }
}

const checks = (findings: Finding[]) => findings.map((f) => `${f.severity} ${f.check}`)

describe('checkMapping', () => {
  it("finds nothing wrong with the construct's defaults", () => {
    expect(checkMapping(good())).toEqual([])
  })

  it('ReportBatchItemFailures off is an error: the records after a failure are dropped', () => {
    const [finding, ...rest] = checkMapping(withSettings({ functionResponseTypes: [] }))
    expect(rest).toEqual([])
    expect(finding).toEqual({
      severity: 'error',
      check: 'report-batch-item-failures',
      problem: 'ReportBatchItemFailures is off',
      why: expect.stringContaining('every invocation that returns counts as a complete success'),
      fix: 'set FunctionResponseTypes: [ReportBatchItemFailures] on the mapping',
    })
    // Left out of the template: Lambda's default, none.
    const none = good()
    delete none.settings.functionResponseTypes
    expect(checks(checkMapping(none))).toEqual(['error report-batch-item-failures'])
  })

  it('bounded retries or age without an on-failure destination is an error: records are discarded without a trace', () => {
    const noDestination = good()
    delete noDestination.onFailureDestination
    const [finding] = checkMapping(noDestination)
    expect(finding).toMatchObject({
      severity: 'error',
      check: 'discard-without-destination',
      problem:
        'MaximumRetryAttempts is 10 and MaximumRecordAgeInSeconds is 86400, with no on-failure destination',
      why: expect.stringContaining('nothing says which records were skipped'),
    })
    const ageOnly = withSettings({ maximumRetryAttempts: -1 })
    delete ageOnly.onFailureDestination
    expect(checkMapping(ageOnly)[0]?.problem).toBe(
      'MaximumRecordAgeInSeconds is 86400, with no on-failure destination',
    )
  })

  it('unbounded retries and age are an error: a failing batch stalls its shard until its records expire', () => {
    const findings = checkMapping(
      withSettings({ maximumRetryAttempts: -1, maximumRecordAgeInSeconds: -1 }),
    )
    expect(checks(findings)).toEqual(['error unbounded-retries'])
    expect(findings[0]?.problem).toBe(
      'retries are unbounded: MaximumRetryAttempts and MaximumRecordAgeInSeconds are both -1 (infinite, the default)',
    )
    expect(findings[0]?.why).toContain('the records behind it expire unread')
    // Lambda's defaults say the same, and a destination does not help.
    expect(
      checks(
        checkMapping(
          good({
            settings: {
              functionResponseTypes: ['ReportBatchItemFailures'],
              bisectBatchOnFunctionError: true,
            },
          }),
        ),
      ),
    ).toEqual(['error unbounded-retries'])
  })

  it('bisect off is a warning', () => {
    const [finding] = checkMapping(withSettings({ bisectBatchOnFunctionError: false }))
    expect(finding).toMatchObject({
      severity: 'warning',
      check: 'bisect-off',
      problem: 'BisectBatchOnFunctionError is off',
      fix: 'set BisectBatchOnFunctionError: true on the mapping',
    })
  })

  it('a batch over 6 MB at the typical record size is a warning, with the batch size that fits', () => {
    expect(checkMapping(withSettings({ batchSize: 3000 }))).toEqual([])
    const [finding] = checkMapping(withSettings({ batchSize: 10_000 }))
    expect(finding).toMatchObject({ severity: 'warning', check: 'batch-over-6mb' })
    // 1,024 bytes are 1,368 in base64, and the record's envelope (eventID, ARNs, key, ...)
    // adds 562: 1,931 bytes a record with its comma, 3,258 of them in 6 MB.
    expect(finding?.problem).toBe(
      "BatchSize 10000 of 1 KiB records makes an event of about 18.4 MB, over Lambda's 6 MB invocation limit (about 3258 such records fit)",
    )
    const fits = Number(/about (\d+) such/.exec(finding?.problem ?? '')?.[1])
    expect(checkMapping(withSettings({ batchSize: fits }))).toEqual([])
    expect(checkMapping(withSettings({ batchSize: fits + 1 }))).toHaveLength(1)
    expect(finding?.fix).toBe(
      `set BatchSize to at most ${fits} on the mapping, or check with the real --record-size`,
    )
    // The record size moves it: 100 records of 64 KiB are 8.5 MB of event.
    expect(checks(checkMapping(good(), { recordSizeBytes: 64 * 1024 }))).toEqual([
      'warning batch-over-6mb',
    ])
  })

  it('a record too large for any invocation is an error', () => {
    const findings = checkMapping(good(), { recordSizeBytes: 5 * 1024 * 1024 })
    expect(checks(findings)).toEqual(['error record-over-6mb'])
    expect(findings[0]?.problem).toBe(
      "a record of 5 MB makes an event of 6.7 MB alone, over Lambda's 6 MB invocation limit",
    )
  })

  it("a timeout not longer than the handler's timeoutMarginMs is an error; one that leaves less than the margin is a warning", () => {
    const [error] = checkMapping(good({ timeoutSeconds: 1 }))
    expect(error).toMatchObject({
      severity: 'error',
      check: 'timeout-margin',
      problem:
        "the function's timeout (1 s) is not longer than the handler's timeoutMarginMs (1000 ms)",
      fix: 'set Timeout: 3 on the function, or a smaller timeoutMarginMs',
    })
    expect(error?.why).toContain('the shard never moves')
    const [warning] = checkMapping(good({ timeoutSeconds: 3 }), { timeoutMarginMs: 2000 })
    expect(warning).toMatchObject({
      severity: 'warning',
      check: 'timeout-margin',
      problem:
        "the function's timeout (3 s) leaves 1000 ms for records after the handler's timeoutMarginMs (2000 ms)",
      fix: 'set Timeout: 6 on the function, or a smaller timeoutMarginMs',
    })
    // Lambda's default of 3 s with partialFailures' default of 1 s is fine; no guard, no check.
    expect(checkMapping(good({ timeoutSeconds: 3 }))).toEqual([])
    expect(checkMapping(good({ timeoutSeconds: 1 }), { timeoutMarginMs: 0 })).toEqual([])
    // A function the template does not hold: nothing to judge.
    expect(checkMapping(good({ timeoutSeconds: undefined }))).toEqual([])
  })

  it('a tumbling window with a parallelization factor above 1 is an error', () => {
    const findings = checkMapping(
      withSettings({ tumblingWindowInSeconds: 60, parallelizationFactor: 2 }),
    )
    expect(checks(findings)).toEqual(['error tumbling-window-parallel'])
    expect(findings[0]?.problem).toBe('a tumbling window (60 s) with ParallelizationFactor 2')
    expect(checkMapping(withSettings({ tumblingWindowInSeconds: 60 }))).toEqual([])
    expect(checkMapping(withSettings({ parallelizationFactor: 10 }))).toEqual([])
  })

  it('a setting Lambda would refuse is an error, and the other checks wait', () => {
    const findings = checkMapping(
      withSettings({ maximumRecordAgeInSeconds: 30, functionResponseTypes: [] }),
    )
    expect(findings).toEqual([
      expect.objectContaining({
        severity: 'error',
        check: 'invalid-setting',
        problem:
          'a setting Lambda would refuse: maximumRecordAgeInSeconds must be -1 (infinite) or 60 to 604800, got 30',
      }),
    ])
    expect(checkMapping(withSettings({ batchSize: 20_000 }))[0]?.problem).toBe(
      "a setting Lambda would refuse: Option 'batchSize' must be <= 10000",
    )
  })

  it('a setting only known at deploy time is a warning, and the checks that need it are skipped', () => {
    const mapping = good({
      unresolved: {
        functionResponseTypes:
          'Resources.M.Properties.FunctionResponseTypes is !Ref Types, a parameter without a default',
      },
    })
    delete mapping.settings.functionResponseTypes
    const findings = checkMapping(mapping)
    expect(findings).toEqual([
      expect.objectContaining({
        severity: 'warning',
        check: 'unresolved',
        problem:
          'functionResponseTypes cannot be checked: Resources.M.Properties.FunctionResponseTypes is !Ref Types, a parameter without a default',
      }),
    ])
  })

  it('says each fix in the words of the tool that wrote the mapping', () => {
    const bad = { functionResponseTypes: [], bisectBatchOnFunctionError: false } as const
    const fixes = (origin: DeployedMapping['origin']) =>
      checkMapping(withSettings({ ...bad }, { origin })).map((f) => f.fix)
    expect(fixes('serverless')).toEqual([
      'set functionResponseType: ReportBatchItemFailures on the stream event',
      'set bisectBatchOnFunctionError: true on the stream event',
    ])
    expect(fixes('cdk')[0]).toContain('reportBatchItemFailures: true on the KinesisEventSource')
    expect(fixes('aws')).toEqual([
      'aws lambda update-event-source-mapping --uuid <uuid> --function-response-types ReportBatchItemFailures (and in the code that deploys it)',
      'aws lambda update-event-source-mapping --uuid <uuid> --bisect-batch-on-function-error',
    ])
    expect(checkMapping(good({ origin: 'sam', timeoutSeconds: 1 }))[0]?.fix).toBe(
      'set Timeout: 3 on the function (or in Globals.Function), or a smaller timeoutMarginMs',
    )
  })
})

const dir = mkdtempSync(join(tmpdir(), 'shardwise-check-'))
function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

const GOOD_SAM = `Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties: { ShardCount: 1 }
  Dlq:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 30
      Events:
        Stream:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: TRIM_HORIZON
            FunctionResponseTypes: [ReportBatchItemFailures]
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 10
            MaximumRecordAgeInSeconds: 86400
            DestinationConfig:
              OnFailure:
                Type: SQS
                Destination: !GetAtt Dlq.Arn
`

const BAD_SAM = `Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Kinesis::Stream
    Properties: { ShardCount: 1 }
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Stream:
          Type: Kinesis
          Properties:
            Stream: !GetAtt Orders.Arn
            StartingPosition: LATEST
`

describe('shardwise check-mapping --template', () => {
  it('exits 0 on a good template and prints the mapping with "no problem found"', async () => {
    const path = file('good.yaml', GOOD_SAM)
    const io = capture()
    expect(await main(['check-mapping', '--template', path])).toBe(0)
    expect(io.out()).toBe(
      [
        `Checked 1 Kinesis event source mapping(s) of ${path} (records of 1024 B, timeoutMarginMs 1000)`,
        '',
        'Consumer <- !GetAtt Orders.Arn',
        `  ${path} Resources.Consumer.Properties.Events.Stream`,
        '  batch size 100, ReportBatchItemFailures, bisect on, at most 10 retries, records up to 86400 s old, on failure to !GetAtt Dlq.Arn, from TRIM_HORIZON, timeout 30 s',
        '  ok: no problem found',
        '',
        'no problem found',
        '',
      ].join('\n'),
    )
    expect(io.err()).toBe('')
  })

  it('exits 1 on errors, each with why and fix; warnings alone exit 0', async () => {
    const path = file('bad.yaml', BAD_SAM)
    const io = capture()
    expect(await main(['check-mapping', '--template', path, '--function', 'Consumer'])).toBe(1)
    const out = io.out()
    expect(out).toContain(
      '  error: ReportBatchItemFailures is off\n    why: Lambda then reads no answer',
    )
    expect(out).toContain(
      "    fix: set FunctionResponseTypes: [ReportBatchItemFailures] on the function's Kinesis event\n",
    )
    expect(out).toContain('  error: retries are unbounded')
    expect(out).toContain('  warning: BisectBatchOnFunctionError is off')
    expect(out).toMatch(/\n2 error\(s\), 1 warning\(s\): this mapping loses or stalls records\n$/)

    const warnOnly = file(
      'warn.yaml',
      GOOD_SAM.replace('BisectBatchOnFunctionError: true', 'BisectBatchOnFunctionError: false'),
    )
    vi.restoreAllMocks()
    const io2 = capture()
    expect(await main(['check-mapping', '--template', warnOnly])).toBe(0)
    expect(io2.out()).toMatch(/\nno error, 1 warning\(s\)\n$/)
  })

  it('--json prints the mappings, their settings and findings for tools', async () => {
    const path = file('bad2.yaml', BAD_SAM)
    const io = capture()
    expect(
      await main(['check-mapping', '--template', path, '--json', '--record-size', '2048']),
    ).toBe(1)
    const out = JSON.parse(io.out())
    expect(out).toMatchObject({
      source: path,
      recordSizeBytes: 2048,
      timeoutMarginMs: 1000,
      errors: 2,
      warnings: 1,
      mappings: [
        {
          origin: 'sam',
          function: 'Consumer',
          settings: { startingPosition: 'LATEST' },
          timeoutSeconds: 3,
          sources: { timeoutSeconds: "Lambda's default" },
        },
      ],
    })
    expect(out.mappings[0].findings.map((f: Finding) => f.check)).toEqual([
      'report-batch-item-failures',
      'unbounded-retries',
      'bisect-off',
    ])
  })

  it("--timeout-margin-ms judges the timeout against the handler's margin", async () => {
    const path = file('margin.yaml', GOOD_SAM)
    const io = capture()
    expect(await main(['check-mapping', '--template', path, '--timeout-margin-ms', '30000'])).toBe(
      1,
    )
    expect(io.out()).toContain(
      "  error: the function's timeout (30 s) is not longer than the handler's timeoutMarginMs (30000 ms)",
    )
  })

  it('exits 3 when the template cannot be read, saying why on stderr (and in --json)', async () => {
    const io = capture()
    const missing = join(dir, 'missing.yaml')
    expect(await main(['check-mapping', '--template', missing])).toBe(3)
    expect(io.err()).toMatch(new RegExp(`^shardwise: cannot read the template ${missing}: ENOENT`))
    expect(io.out()).toBe('')
    const path = file('good2.yaml', GOOD_SAM)
    expect(await main(['check-mapping', '--template', path, '--function', 'Nope', '--json'])).toBe(
      3,
    )
    expect(io.err()).toContain(`shardwise: ${path} has no function Nope (functions: Consumer)\n`)
    expect(JSON.parse(io.out())).toEqual({
      error: `${path} has no function Nope (functions: Consumer)`,
    })
  })

  describe('exits 2 on a usage mistake, naming it', () => {
    const cases: Array<[string[], string]> = [
      [[], 'shardwise: check-mapping needs --template <file> or --function <name>\n'],
      [
        ['--template', 't.yaml', '--region', 'eu-west-1'],
        'shardwise: --region goes with a function in AWS, not with --template\n',
      ],
      [
        ['--template', 't.yaml', '--endpoint', 'http://127.0.0.1:1'],
        'shardwise: --endpoint goes with a function in AWS, not with --template\n',
      ],
      [
        ['--template', 't.yaml', '--record-size', '0'],
        "shardwise: --record-size takes whole bytes from 1 to 10485760 (10 MiB, Kinesis' largest record), got 0\n",
      ],
      [
        ['--template', 't.yaml', '--record-size', 'big'],
        'shardwise: --record-size takes a number, got "big"\n',
      ],
      [
        ['--template', 't.yaml', '--timeout-margin-ms', '-5'],
        'shardwise: --timeout-margin-ms takes whole milliseconds from 0 to 900000, got -5\n',
      ],
      [['--template'], "shardwise: Option '--template <value>' argument missing\n"],
      [
        ['--stream', 's'],
        "shardwise: Unknown option '--stream'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--stream\"\n",
      ],
    ]
    for (const [args, message] of cases) {
      it(args.join(' ') || '(no flag)', async () => {
        const io = capture()
        expect(await main(['check-mapping', ...args])).toBe(2)
        expect(io.err()).toBe(`${message}Run shardwise check-mapping --help for the options.\n`)
      })
    }
  })
})

/**
 * A stand-in of Lambda's REST API on 127.0.0.1: GetFunctionConfiguration and
 * ListEventSourceMappings (two pages), with the errors Lambda answers.
 */
interface StandIn {
  functions: Record<string, { Timeout: number }>
  mappings: Record<string, Array<Record<string, unknown>>>
  /** Answer every call (or only ListEventSourceMappings) with this status and error type. */
  fail?: { status: number; type: string; message: string; onlyList?: boolean }
  requests: string[]
}

const standIn: StandIn = { functions: {}, mappings: {}, requests: [] }
let server: Server
let endpoint: string

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    standIn.requests.push(`${req.method} ${url.pathname}${url.search}`)
    const send = (status: number, body: unknown, type?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (type !== undefined) headers['x-amzn-errortype'] = type
      res.writeHead(status, headers).end(JSON.stringify(body))
    }
    const listing = url.pathname === '/2015-03-31/event-source-mappings'
    if (standIn.fail !== undefined && (listing || standIn.fail.onlyList !== true)) {
      const { status, type, message } = standIn.fail
      return send(status, { Type: 'User', message }, type)
    }
    const config = /^\/2015-03-31\/functions\/([^/]+)\/configuration$/.exec(url.pathname)
    if (config !== null) {
      const name = decodeURIComponent(config[1] as string)
      const fn = standIn.functions[name]
      if (fn === undefined) {
        return send(
          404,
          {
            Type: 'User',
            Message: `Function not found: arn:aws:lambda:eu-west-1:123456789012:function:${name}`,
          },
          'ResourceNotFoundException',
        )
      }
      return send(200, { FunctionName: name, Timeout: fn.Timeout, Runtime: 'nodejs22.x' })
    }
    if (url.pathname === '/2015-03-31/event-source-mappings') {
      const all = standIn.mappings[url.searchParams.get('FunctionName') ?? ''] ?? []
      // One mapping a page, to follow NextMarker.
      const at = Number(url.searchParams.get('Marker') ?? '0')
      const next = at + 1 < all.length ? String(at + 1) : undefined
      return send(200, { EventSourceMappings: all.slice(at, at + 1), NextMarker: next })
    }
    send(404, { message: 'no such route' }, 'UnknownOperationException')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
})

const STREAM = 'arn:aws:kinesis:eu-west-1:123456789012:stream/orders'

function awsMapping(change: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    UUID: '6f1c-good',
    EventSourceArn: STREAM,
    FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders',
    State: 'Enabled',
    BatchSize: 100,
    StartingPosition: 'TRIM_HORIZON',
    MaximumBatchingWindowInSeconds: 0,
    ParallelizationFactor: 1,
    FunctionResponseTypes: ['ReportBatchItemFailures'],
    BisectBatchOnFunctionError: true,
    MaximumRetryAttempts: 10,
    MaximumRecordAgeInSeconds: 86400,
    DestinationConfig: {
      OnFailure: { Destination: 'arn:aws:sqs:eu-west-1:123456789012:orders-dlq' },
    },
    LastModified: 1_764_000_000,
    ...change,
  }
}

describe('shardwise check-mapping --function (Lambda API on 127.0.0.1)', () => {
  const args = (name: string) => [
    'check-mapping',
    '--function',
    name,
    '--endpoint',
    endpoint,
    '--region',
    'eu-west-1',
  ]

  it('reads every page of the mappings and the timeout, and checks the Kinesis ones', async () => {
    standIn.fail = undefined
    standIn.functions.orders = { Timeout: 60 }
    standIn.mappings.orders = [
      awsMapping(),
      awsMapping({ UUID: 'sqs-1', EventSourceArn: 'arn:aws:sqs:eu-west-1:123456789012:q' }),
      awsMapping({
        UUID: '9a2d-bad',
        FunctionResponseTypes: [],
        MaximumRetryAttempts: -1,
        MaximumRecordAgeInSeconds: -1,
        DestinationConfig: { OnFailure: {} },
        StartingPosition: 'AT_TIMESTAMP',
        StartingPositionTimestamp: 1_764_000_000,
      }),
    ]
    standIn.requests = []
    const mappings = await readDeployedMappings({
      functionName: 'orders',
      endpoint,
      region: 'eu-west-1',
    })
    expect(standIn.requests).toEqual([
      'GET /2015-03-31/functions/orders/configuration',
      'GET /2015-03-31/event-source-mappings?FunctionName=orders',
      'GET /2015-03-31/event-source-mappings?FunctionName=orders&Marker=1',
      'GET /2015-03-31/event-source-mappings?FunctionName=orders&Marker=2',
    ])
    expect(mappings.map((m) => m.where)).toEqual([
      'event source mapping 6f1c-good',
      'event source mapping 9a2d-bad',
    ])
    expect(mappings[1]).toMatchObject({
      origin: 'aws',
      function: 'orders',
      streamName: 'orders',
      timeoutSeconds: 60,
      settings: {
        startingPosition: 'AT_TIMESTAMP',
        startingPositionTimestamp: 1_764_000_000,
        functionResponseTypes: [],
      },
    })
    expect(mappings[1]?.onFailureDestination).toBeUndefined()

    const io = capture()
    expect(await main(args('orders'))).toBe(1)
    const out = io.out()
    expect(out).toContain(`Checked 2 Kinesis event source mapping(s) of function orders`)
    expect(out).toContain(`orders <- ${STREAM}\n  event source mapping 6f1c-good\n`)
    expect(out).toContain('  ok: no problem found\n')
    expect(out).toContain(`orders <- ${STREAM}\n  event source mapping 9a2d-bad\n`)
    expect(out).toContain(
      '    fix: aws lambda update-event-source-mapping --uuid <uuid> --function-response-types ReportBatchItemFailures',
    )
    expect(out).toMatch(/\n2 error\(s\), 0 warning\(s\): this mapping loses or stalls records\n$/)
  })

  it('exits 0 when every mapping is right', async () => {
    standIn.fail = undefined
    standIn.functions.fine = { Timeout: 30 }
    standIn.mappings.fine = [awsMapping()]
    const io = capture()
    expect(await main(args('fine'))).toBe(0)
    expect(io.out()).toMatch(/\nno problem found\n$/)
  })

  it.each([
    ['localhost:4566', 'write http://localhost:4566 (or https://)'],
    ['not a url', 'write http://not a url (or https://)'],
    ['ftp://127.0.0.1:4566', 'use http:// or https://'],
  ])('an endpoint without an http(s) scheme, %s, is a usage mistake (2)', async (bad, hint) => {
    const io = capture()
    expect(await main(['check-mapping', '--function', 'orders', '--endpoint', bad])).toBe(2)
    expect(io.err()).toContain(`the endpoint ${bad} has no http:// or https:// scheme: ${hint}`)
  })

  describe('exits 3 when the mappings cannot be read, naming the call, the function and the endpoint', () => {
    it('a function that does not exist', async () => {
      standIn.fail = undefined
      const io = capture()
      expect(await main(args('ghost'))).toBe(3)
      expect(io.err()).toBe(
        `shardwise: GetFunctionConfiguration for function ghost at ${endpoint} failed: ResourceNotFoundException: Function not found: arn:aws:lambda:eu-west-1:123456789012:function:ghost\n`,
      )
    })

    it('a function without a Kinesis mapping', async () => {
      standIn.fail = undefined
      standIn.functions.queue = { Timeout: 30 }
      standIn.mappings.queue = [
        awsMapping({ EventSourceArn: 'arn:aws:sqs:eu-west-1:123456789012:q' }),
      ]
      const io = capture()
      expect(await main(args('queue'))).toBe(3)
      expect(io.err()).toBe(
        `shardwise: function queue at ${endpoint} has no Kinesis event source mapping (1 mapping(s) of other sources)\n`,
      )
    })

    it('access denied', async () => {
      standIn.fail = {
        status: 403,
        type: 'AccessDeniedException',
        message: 'User is not authorized to perform: lambda:GetFunctionConfiguration',
      }
      const io = capture()
      expect(await main(args('orders'))).toBe(3)
      expect(io.err()).toBe(
        `shardwise: GetFunctionConfiguration for function orders at ${endpoint} failed: AccessDeniedException: User is not authorized to perform: lambda:GetFunctionConfiguration\n`,
      )
      standIn.fail = undefined
    })

    it('an error of ListEventSourceMappings, once the function was found', async () => {
      standIn.functions.orders = { Timeout: 60 }
      standIn.fail = {
        status: 403,
        type: 'AccessDeniedException',
        message: 'User is not authorized to perform: lambda:ListEventSourceMappings',
        onlyList: true,
      }
      const io = capture()
      expect(await main([...args('orders'), '--json'])).toBe(3)
      const message = `ListEventSourceMappings for function orders at ${endpoint} failed: AccessDeniedException: User is not authorized to perform: lambda:ListEventSourceMappings`
      expect(io.err()).toBe(`shardwise: ${message}\n`)
      expect(JSON.parse(io.out())).toEqual({ error: message })
      standIn.fail = undefined
    })

    it('nothing listening at the endpoint', async () => {
      const closed = createServer()
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
      const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
      await new Promise((resolve) => closed.close(resolve))
      const io = capture()
      expect(await main(['check-mapping', '--function', 'orders', '--endpoint', dead])).toBe(3)
      expect(io.err()).toMatch(
        new RegExp(
          `^shardwise: GetFunctionConfiguration for function orders at ${dead} failed: .*ECONNREFUSED`,
        ),
      )
    })
  })
})
