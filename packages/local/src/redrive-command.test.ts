import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from './command.js'
import type { InvocationRecord } from './destination.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { produce } from './produce.js'
import { parseDocuments } from './redrive.js'
import { capture } from './test-helpers.js'

let kinesis: LocalKinesis
beforeAll(async () => {
  kinesis = await startLocalKinesis()
})
afterAll(async () => {
  await kinesis?.close()
})

const text = (s: string) => new TextEncoder().encode(s)

/** A handler module that logs every payload it is given, and fails those `fails` names. */
async function handlerModule(dir: string, fails: string[] = []) {
  const log = join(dir, `seen-${Math.random().toString(36).slice(2)}.jsonl`)
  const module = join(dir, `handler-${Math.random().toString(36).slice(2)}.mjs`)
  await writeFile(
    module,
    `import { appendFileSync } from 'node:fs'
    const fails = new Set(${JSON.stringify(fails)})
    export const handler = async (event) => {
      const failed = []
      for (const r of event.Records) {
        const payload = Buffer.from(r.kinesis.data, 'base64').toString()
        appendFileSync(${JSON.stringify(log)}, JSON.stringify(payload) + '\\n')
        if (fails.has(payload)) failed.push({ itemIdentifier: r.kinesis.sequenceNumber })
      }
      return { batchItemFailures: failed.slice(0, 1) }
    }\n`,
  )
  const seen = async () =>
    (await readFile(log, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string)
  return { module, seen }
}

/**
 * A run whose handler fails every record whose payload starts with "bad", with no retry: each
 * failing batch goes to the on-failure file. Returns the file and the documents.
 */
async function failedRun(stream: string, dir: string) {
  await kinesis.createStream(stream, 2)
  const records = []
  for (let i = 0; i < 12; i++) {
    records.push({ partitionKey: `key-${i % 4}`, data: text(i % 5 === 2 ? `bad ${i}` : `ok ${i}`) })
  }
  await produce({ client: kinesis.client, stream }, records)
  const handler = await handlerModule(
    dir,
    records.map((r) => new TextDecoder().decode(r.data)).filter((p) => p.startsWith('bad')),
  )
  const onFailure = join(dir, 'failed.jsonl')
  const io = capture()
  const args = [
    'run',
    '--handler',
    handler.module,
    '--stream',
    stream,
    '--endpoint',
    kinesis.endpoint,
  ]
  args.push('--function-response-types', 'ReportBatchItemFailures', '--maximum-retry-attempts', '0')
  args.push('--batch-size', '3', '--on-failure', onFailure)
  args.push('--exit-when-idle', '0.5', '--poll-interval-ms', '50', '--progress-interval', '0')
  expect(await main(args)).toBe(0)
  vi.restoreAllMocks()
  const documents = (await readFile(onFailure, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as InvocationRecord)
  const discarded = documents.reduce((n, d) => n + d.KinesisBatchInfo.batchSize, 0)
  return { onFailure, documents, discarded, io }
}

describe('shardwise redrive', { timeout: 60_000 }, () => {
  it('reads back every record the on-failure file names and runs each through the handler once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const { onFailure, documents, discarded } = await failedRun('redrive-handler', dir)
    expect(documents.length).toBeGreaterThan(0)
    // The file again, with its first line twice: a document received twice names its records
    // twice, and they still run once.
    const content = await readFile(onFailure, 'utf8')
    const twice = join(dir, 'twice.jsonl')
    await writeFile(twice, `${content.split('\n')[0]}\n${content}`)
    const fixed = await handlerModule(dir)
    const io = capture()
    const code = await main([
      'redrive',
      '--from',
      twice,
      '--handler',
      fixed.module,
      '--endpoint',
      kinesis.endpoint,
    ])
    expect(io.err()).toBe('')
    expect(code).toBe(0)
    const seen = await fixed.seen()
    expect(seen).toHaveLength(discarded)
    expect(new Set(seen).size).toBe(discarded)
    expect(seen.filter((p) => p.startsWith('bad')).sort()).toEqual(['bad 2', 'bad 7'])
    const first = documents[0]?.KinesisBatchInfo.batchSize
    const out = io.out()
    expect(out).toMatch(new RegExp(`documents\\s+${documents.length + 1}\\n`))
    expect(out).toMatch(new RegExp(`records named\\s+${discarded + (first ?? 0)}\\n`))
    expect(out).toMatch(new RegExp(`records already run\\s+${first} \\(named by an earlier`))
    expect(out).toMatch(/records expired\s+0 /)
    expect(out).toMatch(new RegExp(`records succeeded\\s+${discarded}\\n`))
    expect(out).toMatch(/records failed again\s+0\n/)
  })

  it('reads SQS messages (direct and through SNS), reports what has expired, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const { documents } = await failedRun('redrive-sqs', dir)
    const [doc, ...others] = documents as [InvocationRecord, ...InvocationRecord[]]
    const gone = structuredClone(doc)
    gone.KinesisBatchInfo.shardId = 'shardId-000000000009'
    const foreign = structuredClone(doc)
    // A sequence number of another stream: kinesalite refuses it, as AWS refuses one past the
    // retention of the stream.
    foreign.KinesisBatchInfo.startSequenceNumber =
      '49590338271490256608559692538361571095921575989136588898'
    const sns = {
      Type: 'Notification',
      MessageId: 'm',
      TopicArn: 'arn:aws:sns:us-east-1:000000000000:failures',
      Message: JSON.stringify(doc),
    }
    const messages = {
      Messages: [
        { MessageId: '1', ReceiptHandle: 'r1', Body: JSON.stringify(doc) },
        { MessageId: '2', ReceiptHandle: 'r2', Body: JSON.stringify(sns) },
        ...others.map((d, i) => ({ MessageId: `o${i}`, Body: JSON.stringify(d) })),
        { MessageId: '3', ReceiptHandle: 'r3', Body: JSON.stringify(gone) },
        { MessageId: '4', ReceiptHandle: 'r4', Body: JSON.stringify(foreign) },
      ],
    }
    const file = join(dir, 'messages.json')
    await writeFile(file, JSON.stringify(messages))
    const fixed = await handlerModule(dir)
    const io = capture()
    const args = ['redrive', '--from', file, '--handler', fixed.module]
    args.push('--endpoint', kinesis.endpoint)
    expect(await main(args)).toBe(1)
    const size = doc.KinesisBatchInfo.batchSize
    const out = io.out()
    expect(out).toContain(`${file} Messages[1]: `)
    expect(out).toContain(`${size} already run in this redrive`)
    expect(out).toMatch(
      /shardId-000000000009 .*found 0, \d+ expired \(redrive-sqs\/shardId-000000000009 does not exist/,
    )
    expect(out).toMatch(/found 0, \d+ expired \(not in redrive-sqs\/shardId-00000000000\d any more/)
    expect(out).toMatch(new RegExp(`records expired\\s+${2 * size} \\(no longer in the stream\\)`))
    const discarded = documents.reduce((n, d) => n + d.KinesisBatchInfo.batchSize, 0)
    expect(await fixed.seen()).toHaveLength(discarded)
  })

  it('says which records fail again, and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const { onFailure, discarded } = await failedRun('redrive-again', dir)
    const still = await handlerModule(dir, ['bad 7'])
    const io = capture()
    const args = ['redrive', '--from', onFailure, '--handler', still.module]
    args.push(
      '--endpoint',
      kinesis.endpoint,
      '--function-response-types',
      'ReportBatchItemFailures',
    )
    expect(await main(args)).toBe(1)
    expect(io.out()).toMatch(
      /invoked: \d+ succeeded, \d+ failed again from \d+ \(reported in batchItemFailures\)/,
    )
    const failed = Number(/records failed again\s+(\d+)/.exec(io.out())?.[1])
    const succeeded = Number(/records succeeded\s+(\d+)/.exec(io.out())?.[1])
    expect(failed).toBeGreaterThan(0)
    expect(failed + succeeded).toBe(discarded)
  })

  it('invokes as the function the document names: its ARN in the context, its account in the event', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const { documents } = await failedRun('redrive-identity', dir)
    const doc = documents[0] as InvocationRecord
    doc.requestContext.functionArn = 'arn:aws:lambda:us-east-1:123456789012:function:orders'
    const file = join(dir, 'one.json')
    await writeFile(file, JSON.stringify(doc))
    const seen = join(dir, 'identity.json')
    const module = join(dir, 'identity.mjs')
    await writeFile(
      module,
      `import { writeFileSync } from 'node:fs'
      export const handler = async (event, context) => {
        writeFileSync(${JSON.stringify(seen)}, JSON.stringify([event.Records[0].invokeIdentityArn, context.invokedFunctionArn]))
      }\n`,
    )
    const io = capture()
    expect(
      await main(['redrive', '--from', file, '--handler', module, '--endpoint', kinesis.endpoint]),
    ).toBe(0)
    expect(io.err()).toBe('')
    expect(JSON.parse(await readFile(seen, 'utf8'))).toEqual([
      'arn:aws:iam::123456789012:role/local-function-role',
      'arn:aws:lambda:us-east-1:123456789012:function:orders',
    ])
  })

  it('puts the records on another stream, in order, each once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const { onFailure, discarded } = await failedRun('redrive-source', dir)
    await kinesis.createStream('redrive-target', 1)
    const io = capture()
    const args = ['redrive', '--from', onFailure, '--to-stream', 'redrive-target']
    args.push('--endpoint', kinesis.endpoint)
    expect(await main(args)).toBe(0)
    expect(io.out()).toMatch(new RegExp(`records put on redrive-target\\s+${discarded}\\n`))
    const iterator = await kinesis.client.send(
      new GetShardIteratorCommand({
        StreamName: 'redrive-target',
        ShardId: 'shardId-000000000000',
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    )
    const out = await kinesis.client.send(
      new GetRecordsCommand({ ShardIterator: iterator.ShardIterator }),
    )
    const put = (out.Records ?? []).map((r) => ({
      key: r.PartitionKey,
      data: new TextDecoder().decode(r.Data),
    }))
    expect(put).toHaveLength(discarded)
    expect(new Set(put.map((p) => p.data)).size).toBe(discarded)
    // Per key, the numbers in the payloads still rise.
    for (const key of new Set(put.map((p) => p.key))) {
      const numbers = put.filter((p) => p.key === key).map((p) => Number(p.data.split(' ')[1]))
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b))
    }
  })

  it('names the line that is no on-failure document, and asks for one target', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shardwise-redrive-'))
    const file = join(dir, 'bad.jsonl')
    await writeFile(
      file,
      '{"KinesisBatchInfo":{"shardId":"s","startSequenceNumber":"1","endSequenceNumber":"2","streamArn":"arn:aws:kinesis:us-east-1:0:stream/x"}}\n{"hello":1}\n',
    )
    const io = capture()
    expect(await main(['redrive', '--from', file, '--to-stream', 'x'])).toBe(2)
    expect(io.err()).toContain(`--from: ${file}:2: no KinesisBatchInfo`)
    expect(await main(['redrive', '--from', file])).toBe(2)
    expect(io.err()).toContain('give one of --handler')
  })
})

describe('parseDocuments', () => {
  it('takes one document, an array, JSON lines, and receive-message output or its Messages', () => {
    const doc = {
      requestContext: { condition: 'RetryAttemptsExhausted' },
      KinesisBatchInfo: {
        shardId: 'shardId-000000000000',
        startSequenceNumber: '1',
        endSequenceNumber: '2',
        batchSize: 2,
        streamArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s',
      },
    }
    const line = JSON.stringify(doc)
    const one = parseDocuments(JSON.stringify(doc, null, 2), 'f')
    expect(one.map((d) => [d.where, d.condition])).toEqual([['f', 'RetryAttemptsExhausted']])
    expect(parseDocuments(`[${line},${line}]`, 'f').map((d) => d.where)).toEqual(['f [0]', 'f [1]'])
    expect(parseDocuments(`${line}\n\n${line}\n`, 'f').map((d) => d.where)).toEqual(['f:1', 'f:3'])
    const messages = [{ Body: line }]
    expect(parseDocuments(JSON.stringify(messages), 'f')).toHaveLength(1)
    expect(parseDocuments(JSON.stringify({ Messages: messages }), 'f')[0]?.where).toBe(
      'f Messages[0]',
    )
    expect(() => parseDocuments(`${line}\n{oops`, 'f')).toThrow('f:2: not JSON')
    expect(() => parseDocuments(JSON.stringify({ Messages: [{ Body: '{}' }] }), 'f')).toThrow(
      'f Messages[0]: no KinesisBatchInfo',
    )
  })
})
