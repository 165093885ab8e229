/**
 * The embedded stream service: kinesalite, in this process and in memory. It speaks the Kinesis
 * API, so the poller reads it exactly as it reads AWS.
 */
import type { AddressInfo } from 'node:net'
import { CreateStreamCommand, KinesisClient, waitUntilStreamExists } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import kinesalite from 'kinesalite'

/**
 * The clients and endpoints of the kinesalite servers this package started, so the mapping
 * knows when it reads one: kinesalite 3.3.3 never answers a GetShardIterator AT_TIMESTAMP on a
 * shard without a record at or after the timestamp, so the mapping reads such a shard from
 * TRIM_HORIZON and skips the older records itself.
 */
const localClients = new WeakSet<KinesisClient>()
const localEndpoints = new Set<string>()

export function isLocalKinesis(client: KinesisClient | undefined, endpoint: string | undefined) {
  if (client !== undefined && localClients.has(client)) return true
  return endpoint !== undefined && localEndpoints.has(endpoint.replace(/\/+$/, ''))
}

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
  const server = withRegion(region, () =>
    kinesalite({
      createStreamMs: 0,
      deleteStreamMs: 0,
      updateStreamMs: 0,
      shardLimit: 100,
    }),
  )
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
  localClients.add(client)
  localEndpoints.add(endpoint)
  return {
    endpoint,
    region,
    client,
    async createStream(name, shardCount) {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }))
      await waitUntilStreamExists({ client, maxWaitTime: 30, minDelay: 1 }, { StreamName: name })
    },
    async close() {
      localEndpoints.delete(endpoint)
      client.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * Runs `start` with `AWS_REGION` set to `region`: kinesalite takes the region of its ARNs from
 * there when it is created, and has no option for it. Synchronous, so nothing else sees it.
 */
function withRegion<T>(region: string, start: () => T): T {
  const before = process.env.AWS_REGION
  process.env.AWS_REGION = region
  try {
    return start()
  } finally {
    if (before === undefined) delete process.env.AWS_REGION
    else process.env.AWS_REGION = before
  }
}
