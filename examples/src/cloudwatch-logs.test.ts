import { gzipSync } from 'node:zlib'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import type { CloudWatchLogsDecodedData } from 'aws-lambda'
import { beforeEach, describe, expect, it } from 'vitest'
import { forwarded, handler } from './cloudwatch-logs.js'

/** What a CloudWatch Logs subscription writes to the stream: the gzipped JSON payload. */
const subscription = (payload: CloudWatchLogsDecodedData | Uint8Array) => ({
  data: payload instanceof Uint8Array ? payload : gzipSync(JSON.stringify(payload)),
  partitionKey: 'a3b1c2d4e5f60718293a4b5c6d7e8f90',
})

const control: CloudWatchLogsDecodedData = {
  messageType: 'CONTROL_MESSAGE',
  owner: 'CloudwatchLogs',
  logGroup: '',
  logStream: '',
  subscriptionFilters: [],
  logEvents: [
    {
      id: '',
      timestamp: 1764072000000,
      message: 'CWL CONTROL MESSAGE: Checking health of destination Kinesis stream.',
    },
  ],
}

function logs(logStream: string, ...messages: string[]): CloudWatchLogsDecodedData {
  return {
    messageType: 'DATA_MESSAGE',
    owner: '123456789012',
    logGroup: '/aws/lambda/orders',
    logStream,
    subscriptionFilters: ['orders-to-kinesis'],
    logEvents: messages.map((message, i) => ({
      id: `3795${i}`,
      timestamp: 1764072000000 + i,
      message,
    })),
  }
}

describe('the CloudWatch Logs handler', () => {
  beforeEach(() => {
    forwarded.length = 0
  })

  it('gunzips the subscription payloads, skips the control message and forwards error lines', async () => {
    const event = kinesisEvent([
      subscription(control),
      subscription(logs('stream-1', 'START RequestId: 1', 'ERROR order 7 lost', 'END')),
      subscription(logs('stream-2', 'ERROR timeout', 'INFO retried')),
    ])
    const response = await handler(event, lambdaContext(60_000, 'cloudwatch-logs'))
    expect(response).toEqual({ batchItemFailures: [] })
    expect(forwarded).toEqual([
      {
        logGroup: '/aws/lambda/orders',
        logStream: 'stream-1',
        id: '37951',
        timestamp: 1764072000001,
        message: 'ERROR order 7 lost',
      },
      {
        logGroup: '/aws/lambda/orders',
        logStream: 'stream-2',
        id: '37950',
        timestamp: 1764072000000,
        message: 'ERROR timeout',
      },
    ])
  })

  it('reports a payload whose gzip is corrupt, after handling the records before it', async () => {
    const corrupt = gzipSync(JSON.stringify(logs('stream-3', 'ERROR never seen'))).subarray(0, 20)
    const event = kinesisEvent([
      subscription(logs('stream-1', 'ERROR first')),
      subscription(corrupt),
      subscription(logs('stream-2', 'ERROR after the bad one')),
    ])
    const bad = event.Records[1]?.kinesis.sequenceNumber
    const response = await handler(event, lambdaContext(60_000, 'cloudwatch-logs'))
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: bad }],
    })
    expect(forwarded.map((line) => line.message)).toEqual(['ERROR first'])
  })
})
