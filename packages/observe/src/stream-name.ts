/** `arn:aws:kinesis:us-east-2:123456789012:stream/orders` is stream `orders`. */
export function streamNameOf(arn: unknown): string | undefined {
  if (typeof arn !== 'string') return undefined
  const at = arn.indexOf(':stream/')
  if (at === -1) return undefined
  const name = arn.slice(at + ':stream/'.length)
  // An ARN of a consumer (enhanced fan-out) goes on: stream/orders/consumer/...
  const slash = name.indexOf('/')
  return slash === -1 ? name : name.slice(0, slash)
}
