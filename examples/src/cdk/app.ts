/**
 * The smallest deployment of a Shardwise consumer: one stack, one construct, one handler file.
 * The construct creates the stream, the function bundled from orders-dlq.ts, the mapping with
 * ReportBatchItemFailures, bisect, bounded retries and an on-failure queue, the poison queue the
 * handler's sqsPoisonSink() sends to, and the alarms.
 *
 *   npx -y pnpm@12.4.2 --filter @shardwise/examples build
 *   cd examples && npx aws-cdk synth     (cdk.json runs dist/cdk/app.js)
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { KinesisConsumer } from '@shardwise/cdk'
import { App, Stack, type StackProps } from 'aws-cdk-lib'

// From src/cdk/app.ts and from dist/cdk/app.js alike: esbuild bundles the TypeScript source.
const entry = fileURLToPath(new URL('../../src/orders-dlq.ts', import.meta.url))

export function ordersStack(app: App, props?: StackProps): Stack {
  const stack = new Stack(app, 'ShardwiseOrders', props)
  new KinesisConsumer(stack, 'Orders', { entry, poisonQueue: true })
  return stack
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const app = new App()
  ordersStack(app)
  app.synth()
}
