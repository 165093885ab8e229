/**
 * CloudWatch Logs through Kinesis: a subscription filter sends a log group's events to a stream,
 * and this function forwards the error lines. CloudWatch Logs gzips every payload, and
 * `kinesisDecode` (decompress 'auto') gunzips it; the payload is then one JSON document per
 * record: `{ messageType, owner, logGroup, logStream, subscriptionFilters, logEvents }`.
 *
 * When the subscription is created, CloudWatch Logs also writes a `CONTROL_MESSAGE` to check
 * that it can reach the stream; it carries no log events of the log group and is skipped.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'
import type { CloudWatchLogsDecodedData } from 'aws-lambda'

const logger = new Logger({ serviceName: 'cloudwatch-logs' })
const utf8 = new TextDecoder()

export interface ErrorLine {
  logGroup: string
  logStream: string
  id: string
  timestamp: number
  message: string
}

/** Where the error lines go; a module-level array so that the test can look at it. */
export const forwarded: ErrorLine[] = []

async function forward(line: ErrorLine): Promise<void> {
  forwarded.push(line)
}

export const handler = middy(
  eachRecord(async (record) => {
    const logs = JSON.parse(utf8.decode(record.data)) as CloudWatchLogsDecodedData
    if (logs.messageType === 'CONTROL_MESSAGE') return
    const { logGroup, logStream } = logs
    for (const { id, timestamp, message } of logs.logEvents) {
      if (message.includes('ERROR')) {
        await forward({ logGroup, logStream, id, timestamp, message })
      }
    }
  }),
)
  .use(kinesisDecode())
  .use(partialFailures({ logger }))
