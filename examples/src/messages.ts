/**
 * The smallest useful Kinesis consumer: decode each record, hand it to a record handler, and let
 * Lambda checkpoint at the first record that failed. Deployed with `ReportBatchItemFailures`.
 */
import { Logger } from '@aws-lambda-powertools/logger'
import middy from '@middy/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import { eachRecord, partialFailures } from '@shardwise/partial-failures'

const logger = new Logger({ serviceName: 'messages' })
const utf8 = new TextDecoder()

/** Where the messages go; a module-level array so the test and the demo can look at it. */
export const received: string[] = []

async function save(message: string): Promise<void> {
  if (message.startsWith('fail')) throw new Error(`cannot save ${JSON.stringify(message)}`)
  received.push(message)
}

export const handler = middy(eachRecord(async (record) => save(utf8.decode(record.data))))
  .use(kinesisDecode())
  .use(partialFailures({ logger }))
