/** What the runner's AWS clients (Kinesis for runs and redrive, Lambda for check-mapping) share. */
import { ConfigurationError } from '@shardwise/core'
import { NodeHttpHandler } from '@smithy/node-http-handler'

export interface AwsClientConfig {
  region: string
  requestHandler: NodeHttpHandler
  endpoint?: string
  credentials?: { accessKeyId: string; secretAccessKey: string }
}

/**
 * What every AWS client of the runner starts from (Kinesis here, Lambda in `check-mapping`):
 * Node's HTTP/1 handler, which kinesalite and LocalStack answer (the SDK's default HTTP/2 one
 * fails on kinesalite), and for a local endpoint placeholder keys when none are set, as a local
 * endpoint takes any key and AWS' credential chain would fail on a machine without one.
 */
export function awsClientConfig(endpoint: string | undefined, region: string): AwsClientConfig {
  const config: AwsClientConfig = { region, requestHandler: new NodeHttpHandler() }
  if (endpoint !== undefined) {
    checkEndpoint(endpoint)
    config.endpoint = endpoint
    if (process.env.AWS_ACCESS_KEY_ID === undefined && process.env.AWS_PROFILE === undefined) {
      config.credentials = { accessKeyId: 'local', secretAccessKey: 'local' }
    }
  }
  return config
}

/** `localhost:4567` would reach the SDK as the scheme `localhost:` and fail as `UnknownError`. */
export function checkEndpoint(endpoint: string): void {
  if (!/^https?:\/\/[^/]/i.test(endpoint)) {
    const hint = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)
      ? 'use http:// or https://'
      : `write http://${endpoint} (or https://)`
    throw new ConfigurationError(
      `the endpoint ${endpoint} has no http:// or https:// scheme: ${hint}`,
    )
  }
}
