import { readFileSync } from 'node:fs'
import { lambdaContext } from '@shardwise/testing'
import type { KinesisStreamEvent } from 'aws-lambda'
import { beforeEach, describe, expect, it } from 'vitest'
import { handler, received } from './messages.js'

const sample = (): KinesisStreamEvent =>
  JSON.parse(readFileSync(new URL('../events/kinesis-sample.json', import.meta.url), 'utf8'))

const base64 = (text: string) => Buffer.from(text).toString('base64')

describe('the messages handler', () => {
  beforeEach(() => {
    received.length = 0
  })

  it('saves both records of the AWS sample event and reports nothing', async () => {
    const response = await handler(sample(), lambdaContext(60_000, 'messages'))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(received).toEqual(['Hello, this is a test.', 'This is only a test.'])
  })

  it('reports the record it could not save, and saves the one before it', async () => {
    const event = sample()
    const second = event.Records[1]
    if (second === undefined) throw new Error('the sample has two records')
    second.kinesis.data = base64('fail: no room')
    const response = await handler(event, lambdaContext(60_000, 'messages'))
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: second.kinesis.sequenceNumber }],
    })
    expect(received).toEqual(['Hello, this is a test.'])
  })
})
