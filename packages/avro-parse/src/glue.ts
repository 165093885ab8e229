/**
 * `glueSchemaRegistry({ client?, timeout?, maxBatchInflatedBytes? })`: payloads in the AWS Glue Schema Registry wire format (byte 0
 * = 3, the header version; byte 1 = 0 for none or 5 for zlib compression; bytes 2-17 = the
 * schema version's UUID; then the Avro datum, deflated with zlib when byte 1 is 5), with writer
 * schemas from Glue's `GetSchemaVersion`.
 */

import { inflateSync } from 'node:zlib'
import {
  ConfigurationError,
  checkOptions,
  DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES,
  MAX_DEFLATE_RATIO,
  MAX_TIMER_MS,
  messageOf,
  type OptionRules,
  option,
  overBatchBudget,
} from '@shardwise/core'
import {
  FinalAnswerError,
  type Frame,
  type FrameBatch,
  type FrameRefusal,
  hex,
  noAnswerWithin,
  type SchemaId,
  type SchemaRegistry,
  schemaJson,
  sharedLookUp,
  type WriterSchema,
} from './registry.js'

const pkg = '@shardwise/avro-parse'

/**
 * The part of a `GlueClient` (from `@aws-sdk/client-glue`) this package uses. Typed by shape so
 * that users who never read Glue frames need not install the SDK to compile.
 */
export interface GlueClientLike {
  send(command: never, ...rest: never[]): Promise<unknown>
}

export interface GlueSchemaRegistryOptions {
  /**
   * A `GlueClient` from `@aws-sdk/client-glue`, for its region, credentials or endpoint. Default:
   * `new GlueClient()`, which takes the region and credentials of the Lambda function.
   */
  client?: GlueClientLike
  /**
   * How long one look-up may take, the SDK's retries included, in milliseconds. Default 5000.
   * A Lambda function in a VPC with no route to Glue would otherwise wait until it times out,
   * and the whole batch with it.
   */
  timeout?: number
  /**
   * The most bytes zlib-compressed datums may inflate to in one invocation, kept or not (a
   * datum that fails to inflate is charged the most its bytes could produce, 1032 per byte):
   * this bounds the memory and the time a batch of zlib bombs takes. Default 256 MiB, as
   * kinesisDecode's maxBatchDecompressedBytes. A record that does not fit fails alone with a
   * `DecodeError`, retryable when records before its Kinesis record spent part of the budget.
   */
  maxBatchInflatedBytes?: number
}

// Node's largest Buffer.
const MAX_BUFFER_LENGTH = process.getBuiltinModule('node:buffer').constants.MAX_LENGTH

const optionRules: OptionRules = {
  client: option.object,
  timeout: option.integer(1, MAX_TIMER_MS),
  maxBatchInflatedBytes: option.integer(1, MAX_BUFFER_LENGTH),
}

const HEADER_VERSION = 3
const COMPRESSION_NONE = 0
const COMPRESSION_ZLIB = 5
const HEADER_LENGTH = 18
/**
 * A few bytes of zlib can inflate to gigabytes; past this size a record fails alone instead of
 * taking the function's memory and with it the whole batch.
 */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024

type GlueModule = typeof import('@aws-sdk/client-glue')

function sends(client: GlueClientLike): boolean {
  try {
    return typeof client.send === 'function'
  } catch (error) {
    // A getter or a Proxy trap that throws.
    throw new ConfigurationError(
      `${pkg}: glueSchemaRegistry's client cannot be read: ${messageOf(error)}`,
      { cause: error },
    )
  }
}

/**
 * @example
 * avroParse({ registry: glueSchemaRegistry(), readerSchema: orderSchema })
 */
export function glueSchemaRegistry(options?: GlueSchemaRegistryOptions): SchemaRegistry {
  const {
    client,
    timeout = 5000,
    maxBatchInflatedBytes = DEFAULT_MAX_BATCH_DECOMPRESSED_BYTES,
  } = checkOptions(`${pkg}: glueSchemaRegistry()`, optionRules, options)
  if (client !== undefined && !sends(client)) {
    throw new ConfigurationError(`${pkg}: glueSchemaRegistry's client must be a GlueClient`)
  }
  // Loaded on the first look-up, so that the SDK is needed only by those who read Glue frames.
  let sdk: Promise<{ glue: GlueModule; client: GlueClientLike }> | undefined
  const connect = () => {
    sdk ??= import('@aws-sdk/client-glue').then(
      (glue) => ({ glue, client: client ?? new glue.GlueClient({}) }),
      (error: unknown) => {
        sdk = undefined
        throw new Error(`cannot load @aws-sdk/client-glue; install it: ${messageOf(error)}`, {
          cause: error,
        })
      },
    )
    return sdk
  }

  const lookUp = sharedLookUp(async (id: SchemaId): Promise<WriterSchema> => {
    const { glue, client: glueClient } = await connect()
    const command = new glue.GetSchemaVersionCommand({ SchemaVersionId: uuidOf(id as string) })
    const signal = AbortSignal.timeout(timeout)
    let answer: { DataFormat?: string; SchemaDefinition?: string }
    try {
      const sendOptions = { abortSignal: signal } as never
      answer = (await glueClient.send(command as never, sendOptions)) as typeof answer
    } catch (error) {
      const why = signal.aborted ? noAnswerWithin(timeout) : whatGlueSaid(error)
      throw new Error(`GetSchemaVersion ${why}`, { cause: error })
    }
    if (answer.DataFormat !== undefined && answer.DataFormat !== 'AVRO') {
      throw new FinalAnswerError(`it is a ${answer.DataFormat} schema, not Avro`)
    }
    if (typeof answer.SchemaDefinition !== 'string') {
      throw new Error('GetSchemaVersion answered without a SchemaDefinition')
    }
    return {
      definition: schemaJson(answer.SchemaDefinition, 'its SchemaDefinition'),
      references: [],
    }
  })

  return {
    readFrame(payload: Buffer, batch: FrameBatch): Frame | string | FrameRefusal {
      if (payload.length < HEADER_LENGTH) {
        return `is too short for the Glue Schema Registry wire format: ${payload.length} bytes, where the header alone takes ${HEADER_LENGTH}`
      }
      if (payload[0] !== HEADER_VERSION) {
        return `is not in the Glue Schema Registry wire format: it starts with byte ${hex(payload[0] as number)}, not the header version 0x03`
      }
      const compression = payload[1] as number
      const id = payload.toString('hex', 2, HEADER_LENGTH)
      if (compression === COMPRESSION_NONE) return { id, bytes: payload, start: HEADER_LENGTH }
      if (compression !== COMPRESSION_ZLIB) {
        return `has compression byte ${hex(compression)} in its Glue Schema Registry header; only 0x00 (none) and 0x05 (zlib) exist`
      }
      const inflated = inflate(
        payload.subarray(HEADER_LENGTH),
        budgetOf(batch, maxBatchInflatedBytes),
      )
      return Buffer.isBuffer(inflated) ? { id, bytes: inflated, start: 0 } : inflated
    },
    lookUp,
    describe: (id: SchemaId) =>
      `schema version ${uuidOf(id as string)} of the AWS Glue Schema Registry`,
  }
}

/** What is left of a batch's `maxBatchInflatedBytes`, kept on its `FrameBatch`. */
interface InflationBudget {
  readonly limit: number
  left: number
  /** The Kinesis record the last inflated datum came in, and `left` when it began. */
  sequenceNumber: string | undefined
  leftAtKinesisRecord: number
  /** What that Kinesis record's datums that failed to inflate were charged. */
  failedAtKinesisRecord: number
}

/**
 * A zlib datum, inflated within the per-datum limit and what is left of the batch's budget, or
 * why it is not. The budget pays for every byte inflating produces, kept or not: a datum stopped
 * at a limit produced that limit, and one that fails is charged the most its bytes could have
 * produced (zlib hands back nothing of it), so a batch of bombs or corrupt datums costs at most
 * the budget in memory and in time.
 */
function inflate(body: Buffer, budget: InflationBudget): Buffer | string | FrameRefusal {
  const perDatumLimitBinds = MAX_INFLATED_BYTES <= budget.left
  const limit = perDatumLimitBinds ? MAX_INFLATED_BYTES : budget.left
  try {
    // zlib takes no limit below 1; a datum that inflates to nothing fits any budget.
    const bytes = inflateSync(body, { maxOutputLength: Math.max(limit, 1) })
    if (bytes.length <= budget.left) {
      budget.left -= bytes.length
      return bytes
    }
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_BUFFER_TOO_LARGE') {
      const charged = Math.min(limit, body.length * MAX_DEFLATE_RATIO)
      budget.left = Math.max(budget.left - charged, 0)
      budget.failedAtKinesisRecord += charged
      return `has a zlib-compressed body that does not inflate: ${messageOf(error)}`
    }
    if (perDatumLimitBinds) {
      budget.left -= limit
      return `has a zlib-compressed body that inflates to more than ${MAX_INFLATED_BYTES / 1024 / 1024} MiB, the most a datum may take`
    }
  }
  budget.left = 0
  const { message, retryable } = overBatchBudget(
    {
      subject: 'its zlib-compressed Glue datum',
      option: 'maxBatchInflatedBytes',
      limit: budget.limit,
      verb: 'inflate',
      verbs: 'inflates',
    },
    budget,
  )
  return { refused: message, retryable }
}

/** The batch's budget, at the Kinesis record `batch` is at now. */
function budgetOf(batch: FrameBatch, limit: number): InflationBudget {
  let budget = batch.state as InflationBudget | undefined
  if (budget === undefined) {
    budget = {
      limit,
      left: limit,
      sequenceNumber: undefined,
      leftAtKinesisRecord: limit,
      failedAtKinesisRecord: 0,
    }
    batch.state = budget
  }
  if (budget.sequenceNumber !== batch.sequenceNumber) {
    budget.sequenceNumber = batch.sequenceNumber
    budget.leftAtKinesisRecord = budget.left
    budget.failedAtKinesisRecord = 0
  }
  return budget
}

/**
 * An SDK error as a person can act on it: the HTTP status and the exception's name
 * (`AccessDeniedException`), which the SDK keeps out of its message. The SDK's own words for an
 * answer it cannot read are a JSON SyntaxError or "UnknownError".
 */
function whatGlueSaid(error: unknown): string {
  const { name, $metadata } = (error ?? {}) as {
    name?: unknown
    $metadata?: { httpStatusCode?: unknown }
  }
  const status = $metadata?.httpStatusCode
  if (typeof status !== 'number') return `failed: ${messageOf(error)}`
  if (name === 'SyntaxError') return `answered HTTP ${status} with a body that is not JSON`
  if (name === 'Unknown' || typeof name !== 'string') {
    return `answered HTTP ${status} with no error in its body`
  }
  return `answered HTTP ${status}: ${name}: ${messageOf(error)}`
}

/** 32 hex digits as the 8-4-4-4-12 UUID Glue names schema versions by. */
function uuidOf(hexDigits: string): string {
  return `${hexDigits.slice(0, 8)}-${hexDigits.slice(8, 12)}-${hexDigits.slice(12, 16)}-${hexDigits.slice(16, 20)}-${hexDigits.slice(20)}`
}
