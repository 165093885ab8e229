/**
 * The main job in one run: the AWS sample Kinesis event through the messages handler, then
 * again with its second record failing, printing what Lambda would receive each time.
 */
import { readFileSync } from 'node:fs'
import { lambdaContext } from '@shardwise/testing'
import type { KinesisStreamEvent } from 'aws-lambda'
import { handler, received } from './messages.js'

const sample = (): KinesisStreamEvent =>
  JSON.parse(readFileSync(new URL('../events/kinesis-sample.json', import.meta.url), 'utf8'))

const ok = await handler(sample(), lambdaContext(60_000, 'messages'))
console.log('saved:', received)
console.log('answer to Lambda:', JSON.stringify(ok))

received.length = 0
const failing = sample()
const second = failing.Records[1]
if (second) second.kinesis.data = Buffer.from('fail: the disk is full').toString('base64')
const partial = await handler(failing, lambdaContext(60_000, 'messages'))
console.log('saved:', received)
console.log('answer to Lambda:', JSON.stringify(partial))
