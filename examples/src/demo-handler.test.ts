import { gzipSync } from 'node:zlib'
import { kinesisEvent, kplAggregate, lambdaContext } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { deadLetters, handler, report, saved } from './demo-handler.js'

const json = (key: string, n: number, format = 'json') =>
  new TextEncoder().encode(JSON.stringify({ key, n, format }))

describe('the demo handler', () => {
  it('saves JSON, gzip and KPL-aggregated messages, and diverts the poison record', async () => {
    const event = kinesisEvent([
      { data: json('a', 0), partitionKey: 'a' },
      { data: gzipSync(json('a', 10, 'gzip')), partitionKey: 'a' },
      kplAggregate([
        { partitionKey: 'b', data: json('b', 0, 'kpl') },
        { partitionKey: 'b', data: json('b', 1, 'kpl') },
      ]),
      { data: '{not json', partitionKey: 'p' },
      { data: json('a', 20), partitionKey: 'a' },
    ])
    const poison = event.Records[3]?.kinesis.sequenceNumber
    const answer = await handler(event, lambdaContext())
    expect(answer).toEqual({ batchItemFailures: [] })
    expect(saved.get('a')).toEqual([0, 10, 20])
    expect(saved.get('b')).toEqual([0, 1])
    expect(deadLetters).toEqual([`shardId-000000000006 ${poison}: ParseError`])
    expect(report()).toContain('poison records sent to the dead-letter sink: 1')
  })

  it('fails a message once (a flaky database), then saves it when retried', async () => {
    // md5("i/6")[0] is 7: the first save of this message fails.
    const event = kinesisEvent([{ data: json('i', 6), partitionKey: 'i' }])
    const first = await handler(event, lambdaContext())
    expect(first.batchItemFailures).toHaveLength(1)
    expect(await handler(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(saved.get('i')).toEqual([6])
  })
})
