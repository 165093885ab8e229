// Bundled by the construct's test: an error class whose name must survive minification, and an
// import of @shardwise/local that must stay out of the bundle.
import { ConfigurationError } from '@shardwise/core'
import { startLocalKinesis } from '@shardwise/local'

export class OrderRejectedError extends Error {}

export const handler = async (event: { Records: unknown[] }) => {
  if (event.Records.length === 0) throw new ConfigurationError(typeof startLocalKinesis)
  return { batchItemFailures: [], rejected: new OrderRejectedError('x').constructor.name }
}
