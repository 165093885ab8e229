/** What each path does to a payload by hand, shared so every path does exactly the same work. */
import { gunzipSync, zstdDecompressSync } from 'node:zlib'

export const jsonOfBase64 = (data: string): unknown =>
  JSON.parse(Buffer.from(data, 'base64').toString('utf8'))

/** UTF-8 text of bytes without copying them. */
export const textOf = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')

export const jsonOfBytes = (bytes: Uint8Array): unknown => JSON.parse(textOf(bytes))

export const gunzipJsonOfBase64 = (data: string): unknown =>
  JSON.parse(gunzipSync(Buffer.from(data, 'base64')).toString('utf8'))

/** `event-normalizer` hands on the raw text when JSON.parse fails: the handler must check. */
export function parsedOrThrow(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) throw new Error('the payload is not JSON')
  return value
}

export const zstdJsonOfBase64 = (data: string): unknown =>
  JSON.parse(zstdDecompressSync(Buffer.from(data, 'base64')).toString('utf8'))
