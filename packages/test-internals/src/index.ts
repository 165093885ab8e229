/**
 * Helpers for Shardwise's own tests and benchmarks, not published: values a hostile handler may
 * throw, a fake SQS, and the table the per-package perf files print. Tests of a handler use
 * `@shardwise/testing`.
 */
import { createHash, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

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
  // Idle connections stay open until it stops: with Node's 5 s keep-alive timeout, an SQS client
  // with maxAttempts: 1 that reused one as the server closed it would fail with ECONNRESET.
  server.keepAliveTimeout = 0
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
