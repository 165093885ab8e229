/**
 * Kinesis events and Lambda contexts shaped exactly as Lambda builds them (DESIGN.md section 1),
 * for tests and examples.
 */
import { createHash, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Context, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda'

export interface RecordSpec {
  /** The payload: text or bytes are base64-encoded; `{ base64 }` is used as it is. */
  data: string | Uint8Array | { base64: string }
  partitionKey?: string
  sequenceNumber?: string
  approximateArrivalTimestamp?: number
}

export const STREAM_ARN = 'arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream'

/** Sequence numbers shaped like real ones: 56 digits, increasing with `position`. */
export function sequenceNumber(position: number): string {
  return `4959033827149025660855969253836157109592157598913${String(position).padStart(7, '0')}`
}

export function kinesisEvent(
  records: ReadonlyArray<RecordSpec>,
  shardId = 'shardId-000000000006',
): KinesisStreamEvent {
  return { Records: records.map((spec, i) => kinesisRecord(spec, i, shardId)) }
}

export function kinesisRecord(
  spec: RecordSpec,
  position: number,
  shardId = 'shardId-000000000006',
): KinesisStreamRecord {
  const seq = spec.sequenceNumber ?? sequenceNumber(position)
  const data =
    typeof spec.data === 'string'
      ? Buffer.from(spec.data).toString('base64')
      : spec.data instanceof Uint8Array
        ? Buffer.from(spec.data).toString('base64')
        : spec.data.base64
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: spec.partitionKey ?? '1',
      sequenceNumber: seq,
      data,
      approximateArrivalTimestamp: spec.approximateArrivalTimestamp ?? 1545084650.987,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${shardId}:${seq}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'us-east-2',
    eventSourceARN: STREAM_ARN,
  }
}

/** A Lambda context whose remaining time counts down from `timeoutMs`. */
export function lambdaContext(timeoutMs = 60_000, functionName = 'test'): Context {
  const deadline = Date.now() + timeoutMs
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-2:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}

/** A logger that keeps what it is told, for asserting on logs. */
export function recordingLogger() {
  const lines: Array<{
    level: 'error' | 'warn' | 'info' | 'debug'
    message: string
    details: unknown[]
  }> = []
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, ...details: unknown[]) => {
      lines.push({ level, message, details })
    }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

/** What `printMedians` reads of a tinybench `Bench`. */
export interface BenchTasks {
  tasks: ReadonlyArray<{ name: string; result?: unknown }>
}

/**
 * Prints a tinybench run of the per-package perf files: each task's median time per batch, and
 * per `unit` (`perBatch` of them in a batch).
 */
export function printMedians(bench: BenchTasks, perBatch: number, unit = 'record'): void {
  console.table(
    bench.tasks.map((task) => {
      const median =
        (task.result as { latency?: { p50?: number } } | undefined)?.latency?.p50 ?? Number.NaN
      return {
        task: task.name,
        'ms per batch (median)': median.toFixed(2),
        [`ns per ${unit}`]: Math.round((median * 1e6) / perBatch),
      }
    }),
  )
}

/**
 * Values a hostile or careless handler, sink, schema or reviver may throw, each made fresh: every
 * question the library might ask of them (`retryable`, `message`, `name`, `cause`, `instanceof`,
 * `JSON.stringify`, `String`) throws for at least one of them. The library must fail the record
 * with its own error, never throw itself.
 */
export const hostileThrownValues: ReadonlyArray<readonly [string, () => unknown]> = [
  [
    'an Error whose retryable getter throws',
    () =>
      Object.defineProperty(new Error('retryable getter'), 'retryable', {
        get() {
          throw new Error('no retryable for you')
        },
      }),
  ],
  [
    'an Error whose message and name getters throw',
    () => {
      const error = new Error('hidden')
      for (const key of ['message', 'name', 'stack']) {
        Object.defineProperty(error, key, {
          get() {
            throw new Error(`no ${key} for you`)
          },
        })
      }
      return error
    },
  ],
  [
    'an Error whose cause getter throws',
    () =>
      Object.defineProperty(new Error('cause getter'), 'cause', {
        get() {
          throw new Error('no cause for you')
        },
      }),
  ],
  [
    'an Error whose cause chain loops',
    () => {
      const error = new Error('loop') as Error & { cause: unknown }
      error.cause = error
      return error
    },
  ],
  [
    'a Proxy whose every trap throws',
    () =>
      new Proxy(
        {},
        new Proxy(
          {},
          {
            get(_target, trap) {
              return () => {
                throw new Error(`trap ${String(trap)}`)
              }
            },
          },
        ),
      ),
  ],
  [
    'a revoked Proxy',
    () => {
      const { proxy, revoke } = Proxy.revocable(new Error('revoked'), {})
      revoke()
      return proxy
    },
  ],
  [
    'an object whose toJSON and toString both throw',
    () => ({
      toJSON() {
        throw new Error('no JSON')
      },
      toString() {
        throw new Error('no string')
      },
    }),
  ],
  ['a Symbol', () => Symbol('thrown')],
  ['a BigInt', () => 10n ** 30n],
  ['null', () => null],
  ['undefined', () => undefined],
  ['a number', () => 42],
  ['a string', () => 'plain text'],
]

/** The `i`-th of `hostileThrownValues`, in turn, made fresh: for a property test's cases. */
export function hostileThrownValue(i: number): unknown {
  const [, make] = hostileThrownValues[i % hostileThrownValues.length] as readonly [
    string,
    () => unknown,
  ]
  return make()
}

/** A message SendMessage put on the fake SQS, as the SDK sent it (SQS's JSON protocol). */
export interface SentSqsMessage {
  QueueUrl: string
  MessageBody: string
  MessageGroupId?: string
  MessageDeduplicationId?: string
}

/**
 * The part of SQS's JSON protocol that SendMessage uses, on 127.0.0.1: point an `SQSClient`'s
 * `endpoint` at `url`. While `down` is true, every call answers 500 (SQS unavailable).
 */
export async function startFakeSqs() {
  const received: SentSqsMessage[] = []
  const state = { down: false }
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      response.setHeader('content-type', 'application/x-amz-json-1.0')
      if (request.headers['x-amz-target'] !== 'AmazonSQS.SendMessage' || state.down) {
        response.statusCode = 500
        response.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InternalError', message: 'down' }))
        return
      }
      const input = JSON.parse(body) as SentSqsMessage
      received.push(input)
      const md5 = createHash('md5').update(input.MessageBody).digest('hex')
      response.end(JSON.stringify({ MessageId: randomUUID(), MD5OfMessageBody: md5 }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** What `settleOnFakeClock` needs of a fake clock: vitest's `vi`, or anything alike. */
export interface FakeClock {
  getTimerCount(): number
  advanceTimersByTimeAsync(ms: number): Promise<unknown>
  advanceTimersToNextTimerAsync(): Promise<unknown>
}

/**
 * Runs a fake clock's timers, one at a time, until `invocation` settles (or no timer is left),
 * then returns it: for tests where time is the subject, so that a busy machine changes nothing.
 */
export async function settleOnFakeClock<T>(clock: FakeClock, invocation: Promise<T>): Promise<T> {
  let settled = false
  const done = () => {
    settled = true
  }
  invocation.then(done, done)
  await clock.advanceTimersByTimeAsync(0)
  while (!settled && clock.getTimerCount() > 0) await clock.advanceTimersToNextTimerAsync()
  return invocation
}

/**
 * A Kinesis event of a tumbling window (`TumblingWindowInSeconds`), as Lambda sends it: the
 * records, the window from 10:00 to 10:05 on 2026-11-25, the state carried from the window's
 * last invocation, and whether this is its final one.
 */
export function windowEvent(
  records: ReadonlyArray<RecordSpec>,
  state: unknown,
  final = false,
): KinesisStreamEvent {
  return {
    ...kinesisEvent(records),
    window: { start: '2026-11-25T10:00:00Z', end: '2026-11-25T10:05:00Z' },
    state,
    shardId: 'shardId-000000000006',
    eventSourceARN: STREAM_ARN,
    isFinalInvokeForWindow: final,
    isWindowTerminatedEarly: false,
  } as KinesisStreamEvent
}
