import { gzipSync } from 'node:zlib'
import type { CloudWatchLogsDecodedData, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda'
import { beforeEach, describe, expect, it } from 'vitest'
import { forwarded, handler } from './cloudwatch-logs.js'
import { lambdaContext } from './lambda-context.js'

let sequence = 49590338271490256608559692538361571095921575989136588898n

/** A Kinesis record as a CloudWatch Logs subscription writes it: the gzipped JSON payload. */
function subscriptionRecord(payload: CloudWatchLogsDecodedData | Uint8Array): KinesisStreamRecord {
  const sequenceNumber = String(sequence++)
  const bytes = payload instanceof Uint8Array ? payload : gzipSync(JSON.stringify(payload))
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: 'a3b1c2d4e5f60718293a4b5c6d7e8f90',
      sequenceNumber,
      data: Buffer.from(bytes).toString('base64'),
      approximateArrivalTimestamp: 1764072000.123,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `shardId-000000000000:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: 'arn:aws:iam::123456789012:role/lambda-role',
    awsRegion: 'eu-west-1',
    eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/log-stream',
  }
}

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
    const event: KinesisStreamEvent = {
      Records: [
        subscriptionRecord(control),
        subscriptionRecord(logs('stream-1', 'START RequestId: 1', 'ERROR order 7 lost', 'END')),
        subscriptionRecord(logs('stream-2', 'ERROR timeout', 'INFO retried')),
      ],
    }
    const response = await handler(event, lambdaContext('cloudwatch-logs'))
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
    const bad = subscriptionRecord(corrupt)
    const event: KinesisStreamEvent = {
      Records: [
        subscriptionRecord(logs('stream-1', 'ERROR first')),
        bad,
        subscriptionRecord(logs('stream-2', 'ERROR after the bad one')),
      ],
    }
    const response = await handler(event, lambdaContext('cloudwatch-logs'))
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: bad.kinesis.sequenceNumber }],
    })
    expect(forwarded.map((line) => line.message)).toEqual(['ERROR first'])
  })
})
