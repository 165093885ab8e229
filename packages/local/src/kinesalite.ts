/**
 * The embedded stream service: kinesalite, in this process and in memory. It speaks the Kinesis
 * API, so the poller reads it exactly as it reads AWS.
 */
import type { AddressInfo } from 'node:net'
import { CreateStreamCommand, KinesisClient, waitUntilStreamExists } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import kinesalite from 'kinesalite'

export interface LocalKinesis {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  region: string
  /** A client for this endpoint; closed by `close()`. */
  client: KinesisClient
  createStream(name: string, shardCount: number): Promise<void>
  close(): Promise<void>
}

/** Starts kinesalite on 127.0.0.1 and a free port. */
export async function startLocalKinesis(options?: { region?: string }): Promise<LocalKinesis> {
  const region = options?.region ?? 'us-east-1'
  const server = kinesalite({
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    shardLimit: 100,
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  const endpoint = `http://127.0.0.1:${port}`
  const client = new KinesisClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: new NodeHttpHandler(),
  })
  return {
    endpoint,
    region,
    client,
    async createStream(name, shardCount) {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }))
      await waitUntilStreamExists({ client, maxWaitTime: 30, minDelay: 1 }, { StreamName: name })
    },
    async close() {
      client.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
