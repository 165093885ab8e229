/**
 * `confluentSchemaRegistry({ url })`: payloads in the Confluent wire format (byte 0 = 0, then the
 * schema id as a 4-byte big-endian integer, then the Avro datum), with writer schemas from a
 * Confluent-compatible registry (`GET {url}/schemas/ids/{id}`).
 */

import {
  ConfigurationError,
  checkOptions,
  MAX_TIMER_MS,
  messageOf,
  type OptionRules,
  option,
} from '@shardwise/core'
import {
  FinalAnswerError,
  type Frame,
  hex,
  noAnswerWithin,
  type SchemaId,
  type SchemaRegistry,
  schemaJson,
  sharedLookUp,
  type WriterSchema,
} from './registry.js'

const pkg = '@shardwise/avro-parse'

export interface ConfluentSchemaRegistryOptions {
  /** The registry's base URL, e.g. `https://psrc-123.us-east-2.aws.confluent.cloud`. */
  url: string
  /** Basic auth: a Confluent Cloud API key and secret, or a user and password. */
  auth?: { username: string; password: string }
  /** More request headers, e.g. `{ authorization: 'Bearer ...' }`. */
  headers?: Record<string, string>
  /** How long one request may take, in milliseconds. Default 5000. */
  timeout?: number
}

const optionRules: OptionRules = {
  url: option.matching(/^https?:\/\//, 'an http:// or https:// URL'),
  auth: option.shape({ username: option.string, password: option.string }, [
    'username',
    'password',
  ]),
  headers: option.recordOf(option.string),
  timeout: option.integer(1, MAX_TIMER_MS),
}

const HEADER_LENGTH = 5

/**
 * @example
 * avroParse({ registry: confluentSchemaRegistry({ url: process.env.SCHEMA_REGISTRY_URL! }) })
 */
export function confluentSchemaRegistry(options: ConfluentSchemaRegistryOptions): SchemaRegistry {
  const {
    url,
    auth,
    headers,
    timeout = 5000,
  } = checkOptions(`${pkg}: confluentSchemaRegistry()`, optionRules, options, ['url'])
  const { base, credentials } = splitCredentials(url, auth)
  const requestHeaders: Record<string, string> = {
    accept: 'application/vnd.schemaregistry.v1+json, application/json',
    ...headers,
  }
  if (credentials !== undefined) {
    const token = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')
    requestHeaders.authorization = `Basic ${token}`
  }
  // fetch would refuse a bad header on every request and so fail every record. The message
  // names the header, never its value, which may be a token.
  for (const [name, value] of Object.entries(requestHeaders)) {
    try {
      new Headers([[name, value]])
    } catch {
      throw new ConfigurationError(
        `${pkg}: confluentSchemaRegistry(): Option 'headers' cannot be sent: header ${JSON.stringify(name)} has a name or value that HTTP does not allow (a line break, a control character, a space in the name)`,
      )
    }
  }

  async function get(path: string): Promise<Record<string, unknown>> {
    let response: Response
    let text: string
    try {
      response = await fetch(`${base}${path}`, {
        headers: requestHeaders,
        signal: AbortSignal.timeout(timeout),
      })
      text = await response.text()
    } catch (error) {
      throw new Error(`GET ${path} ${whyNoAnswer(error, timeout)}`, { cause: error })
    }
    if (!response.ok) {
      const message = `GET ${path} answered HTTP ${response.status}: ${registryMessage(text)}`
      // The registry itself says the schema does not exist (40403): no retry will change that,
      // so the record may go to a poison sink. Any other 404 may be a wrong URL: retry it.
      if (errorCodeOf(text) === SCHEMA_NOT_FOUND) throw new FinalAnswerError(message)
      throw new Error(message)
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      // A proxy's sign-in page or a wrong URL's web page: it may be gone next time.
      throw new Error(
        `GET ${path} answered HTTP ${response.status} with a body that is not JSON: ${shown(text)}`,
      )
    }
    if (
      typeof body !== 'object' ||
      body === null ||
      typeof (body as { schema?: unknown }).schema !== 'string'
    ) {
      throw new Error(`GET ${path} answered without a schema`)
    }
    return body as Record<string, unknown>
  }

  /** Fetches a schema's references, depth first, so each comes before the ones that use it. */
  async function withReferences(body: Record<string, unknown>, seen: Set<string>, out: unknown[]) {
    if (body.schemaType !== undefined && body.schemaType !== 'AVRO') {
      throw new FinalAnswerError(`it is a ${String(body.schemaType)} schema, not Avro`)
    }
    const references = Array.isArray(body.references) ? body.references : []
    for (const reference of references as Array<{
      name?: unknown
      subject?: unknown
      version?: unknown
    }>) {
      const path = `/subjects/${encodeURIComponent(String(reference.subject))}/versions/${encodeURIComponent(String(reference.version))}`
      if (seen.has(path)) continue
      seen.add(path)
      const referenced = await referencedVersion(path)
      await withReferences(referenced, seen, out)
      const whose = `the schema it refers to as ${String(reference.name)} (subject ${String(reference.subject)}, version ${String(reference.version)})`
      out.push(schemaJson(referenced.schema as string, whose))
    }
  }

  // Many schemas may refer to one subject version (a common envelope): it is fetched once.
  const referencedVersion = sharedLookUp(get)

  const lookUp = sharedLookUp(async (id: SchemaId): Promise<WriterSchema> => {
    const body = await get(`/schemas/ids/${id}`)
    const references: unknown[] = []
    await withReferences(body, new Set(), references)
    return { definition: schemaJson(body.schema as string, 'its schema'), references }
  })

  return {
    readFrame(payload: Buffer): Frame | string {
      if (payload.length < HEADER_LENGTH) {
        return `is too short for the Confluent wire format: ${payload.length} bytes, where the header alone takes ${HEADER_LENGTH}`
      }
      if (payload[0] !== 0) {
        return `is not in the Confluent wire format: it starts with byte ${hex(payload[0] as number)}, not the magic byte 0x00`
      }
      return { id: payload.readUInt32BE(1), bytes: payload, start: HEADER_LENGTH }
    },
    lookUp,
    describe: (id: SchemaId) => `schema ${id} of the Confluent Schema Registry at ${base}`,
  }
}

/**
 * The base URL without credentials, and the credentials: `https://key:secret@host` is how
 * Confluent's own clients take basic auth (`basic.auth.credentials.source=URL`). fetch refuses
 * such a URL, and messages show the base, so the secret must not stay in it.
 */
function splitCredentials(
  url: string,
  auth: ConfluentSchemaRegistryOptions['auth'],
): { base: string; credentials: ConfluentSchemaRegistryOptions['auth'] } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigurationError(`${pkg}: confluentSchemaRegistry(): Option 'url' must be a URL`)
  }
  if (parsed.username === '' && parsed.password === '') {
    return { base: url.replace(/\/+$/, ''), credentials: auth }
  }
  if (auth !== undefined) {
    throw new ConfigurationError(
      `${pkg}: confluentSchemaRegistry(): give the credentials in the url or as auth, not both`,
    )
  }
  const credentials = {
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  }
  parsed.username = ''
  parsed.password = ''
  return { base: parsed.href.replace(/\/+$/, ''), credentials }
}

/** Confluent's error body is `{ error_code, message }`; anything else is shown as it came. */
const SCHEMA_NOT_FOUND = 40403

function errorCodeOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { error_code?: unknown } | null)?.error_code
  } catch {
    return undefined
  }
}

function registryMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error_code?: unknown; message?: unknown }
    if (typeof body.message === 'string') {
      return body.error_code === undefined
        ? body.message
        : `${body.message} (error ${body.error_code})`
    }
  } catch {
    // not JSON: a proxy's or load balancer's page
  }
  return shown(text)
}

/** A body as a message shows it: its first 200 characters. */
function shown(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text || '(empty body)'
}

/**
 * Why a request got no answer. undici's own message is only "fetch failed"; what went wrong
 * (connection refused, a name that does not resolve, a TLS error) is in its cause.
 */
function whyNoAnswer(error: unknown, timeout: number): string {
  if ((error as { name?: unknown } | null)?.name === 'TimeoutError') {
    return noAnswerWithin(timeout)
  }
  let cause = (error as { cause?: unknown } | null)?.cause ?? error
  // Several addresses tried at once (IPv4 and IPv6) fail together in an AggregateError.
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0]
  return `failed: ${messageOf(cause)}`
}
