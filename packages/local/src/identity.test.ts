import { mkdtemp, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { STSClient } from '@aws-sdk/client-sts'
import type { Context } from '@shardwise/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InvocationRecord } from './destination.js'
import type { MappingEvent } from './event.js'
import { type LocalKinesis, startLocalKinesis } from './kinesalite.js'
import { runMapping } from './mapping.js'
import { produce } from './produce.js'

let kinesis: LocalKinesis
let sts: Server
let stsEndpoint: string
const stsBodies: string[] = []
let dir: string
let streams = 0

/** A stand-in for STS on 127.0.0.1: GetCallerIdentity answers account 123456789012. */
beforeAll(async () => {
  kinesis = await startLocalKinesis()
  dir = await mkdtemp(join(tmpdir(), 'shardwise-identity-'))
  sts = createServer(async (request, response) => {
    let body = ''
    for await (const chunk of request) body += String(chunk)
    stsBodies.push(body)
    response.writeHead(200, { 'content-type': 'text/xml' }).end(
      `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/developer/dev</Arn>
    <UserId>AROAEXAMPLE:dev</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`,
    )
  })
  await new Promise<void>((resolve) => sts.listen(0, '127.0.0.1', resolve))
  stsEndpoint = `http://127.0.0.1:${(sts.address() as AddressInfo).port}`
})
afterAll(async () => {
  await kinesis.close()
  sts.closeAllConnections()
  await new Promise((r) => sts.close(r))
})

async function stream(): Promise<string> {
  const name = `identity${++streams}`
  await kinesis.createStream(name, 1)
  await produce({ client: kinesis.client, stream: name }, [
    { partitionKey: 'k', data: new TextEncoder().encode('x') },
  ])
  return name
}

/** Runs one failing record to the on-failure file; returns the event, context and document. */
async function runOnce(options: { functionArn?: string; sts?: STSClient; functionName?: string }) {
  const name = await stream()
  const onFailure = join(dir, `${name}.jsonl`)
  let event: MappingEvent | undefined
  let context: Context | undefined
  await runMapping({
    ...options,
    stream: name,
    client: kinesis.client,
    pollIntervalMs: 50,
    exitWhenIdleSeconds: 0.3,
    onFailure,
    mapping: { maximumRetryAttempts: 0 },
    handler: async (e, c) => {
      event = e
      context = c
      throw new Error('fails once, to the destination')
    },
  })
  const document = JSON.parse(await readFile(onFailure, 'utf8')) as InvocationRecord
  return { event, context, document }
}

describe('the identity in the events', { timeout: 60_000 }, () => {
  it("carries the caller's account from STS GetCallerIdentity, and the function ARN in it", async () => {
    stsBodies.length = 0
    const client = new STSClient({
      endpoint: stsEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    })
    try {
      const { event, context, document } = await runOnce({ sts: client, functionName: 'orders' })
      expect(stsBodies).toHaveLength(1)
      expect(stsBodies[0]).toContain('Action=GetCallerIdentity')
      const arn = 'arn:aws:lambda:us-east-1:123456789012:function:orders'
      expect(event?.Records[0]?.invokeIdentityArn).toBe(
        'arn:aws:iam::123456789012:role/orders-role',
      )
      expect(context?.invokedFunctionArn).toBe(arn)
      expect(document.requestContext.functionArn).toBe(arn)
    } finally {
      client.destroy()
    }
  })

  it('takes the function ARN, its account and name, from functionArn (--function-arn)', async () => {
    const arn = 'arn:aws:lambda:eu-west-1:210987654321:function:billing:live'
    const { event, context, document } = await runOnce({ functionArn: arn })
    expect(event?.Records[0]?.invokeIdentityArn).toBe('arn:aws:iam::210987654321:role/billing-role')
    expect(context?.invokedFunctionArn).toBe(arn)
    expect(context?.functionName).toBe('billing')
    expect(document.requestContext.functionArn).toBe(arn)
  })

  it("keeps a local run's placeholders against a local endpoint", async () => {
    const { event, document } = await runOnce({})
    expect(event?.Records[0]?.invokeIdentityArn).toBe(
      'arn:aws:iam::000000000000:role/local-function-role',
    )
    expect(document.requestContext.functionArn).toBe(
      'arn:aws:lambda:us-east-1:000000000000:function:local-function',
    )
  })

  it('refuses a functionArn that is not a Lambda function ARN, naming it', async () => {
    await expect(
      runMapping({
        stream: 'any',
        client: kinesis.client,
        functionArn: 'arn:aws:iam::123456789012:role/x',
        handler: async () => {},
      }),
    ).rejects.toThrow(
      'functionArn: arn:aws:iam::123456789012:role/x is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)',
    )
  })
})
