/**
 * What `avroParse` asks of a schema registry, and what both registries share: the look-up cache
 * and the way they word a schema that is not JSON and a request that got no answer.
 */

import { messageOf } from '@shardwise/core'

/** A writer schema's id as the frame carries it: a number (Confluent) or a hex string (Glue). */
export type SchemaId = number | string

/**
 * One payload's frame, read: which writer schema, and where the Avro datum is: `bytes` from
 * `start` to the end. `bytes` is the payload itself when the datum follows the header as it
 * is, so that no per-record slice is made.
 */
export interface Frame {
  id: SchemaId
  bytes: Buffer
  start: number
}

/**
 * The batch a payload is read in: `avroParse` hands one per batch to every `readFrame` of it.
 */
export interface FrameBatch {
  /** The sequence number of the Kinesis record the payload came in (KPL sub-records share it). */
  sequenceNumber: string
  /** What the registry keeps for this batch alone (Glue's inflation budget); starts undefined. */
  state: unknown
}

/** A frame whose datum this batch cannot take (it passes the batch's budget). */
export interface FrameRefusal {
  readonly refused: string
  /** True when a later delivery, with a batch of its own, can read it. */
  readonly retryable: boolean
}

/** A writer schema as the registry holds it: Avro schema JSON, and the schemas it refers to. */
export interface WriterSchema {
  definition: unknown
  /** Schemas that define named types `definition` uses, each before the ones that use it. */
  references: unknown[]
}

/**
 * A schema registry whose framing `avroParse` reads. `confluentSchemaRegistry()` and
 * `glueSchemaRegistry()` make one; any object of this shape works.
 */
export interface SchemaRegistry {
  /**
   * Reads one payload's frame; a string says why it can never be read, a `FrameRefusal` why it
   * cannot be read in this batch. Called once per record, in batch order. Should not throw: a
   * throw fails its record alone, retryable unless what was thrown says `retryable: false`.
   */
  readFrame(payload: Buffer, batch: FrameBatch): Frame | string | FrameRefusal
  /**
   * The writer schema with this id. Rejects with an error whose `retryable` is false when the
   * answer is final (the schema is not Avro), and with any other error when retrying may help.
   */
  lookUp(id: SchemaId): Promise<WriterSchema>
  /** How a message names a schema: `schema 42 of the Confluent Schema Registry at ...`. */
  describe(id: SchemaId): string
}

/** The registry answered, and retrying will not change the answer. */
export class FinalAnswerError extends Error {
  override name = 'FinalAnswerError'
  readonly retryable = false
}

/**
 * Wraps a look-up so that each key is fetched once for the life of the container and concurrent
 * calls for one key share a single request. A failure is forgotten, so the next batch asks again.
 */
export function sharedLookUp<K, V>(load: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const answers = new Map<K, Promise<V>>()
  return (key) => {
    let answer = answers.get(key)
    if (answer === undefined) {
      answer = load(key)
      answers.set(key, answer)
      const settled = answer
      settled.catch(() => {
        if (answers.get(key) === settled) answers.delete(key)
      })
    }
    return answer
  }
}

/** A byte as a message shows it: `0x7b`. */
export function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`
}

/** A registry's schemas never change, so a schema that is not JSON will never be read. */
export function schemaJson(text: string, whose: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new FinalAnswerError(`${whose} is not JSON: ${messageOf(error)}`, { cause: error })
  }
}

/** Why a request the `timeout` option cut short has no answer. */
export function noAnswerWithin(timeout: number): string {
  return `got no answer within ${timeout} ms (the timeout option)`
}
