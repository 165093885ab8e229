import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda'

/** Where a compared path hands each decoded user record: the user's code, as far as the bench is concerned. */
export type Sink = (value: unknown) => void

/** A Lambda handler for Kinesis events, as each compared path builds it. */
export type BenchHandler = (
  event: KinesisStreamEvent,
  context: Context,
) => Promise<KinesisStreamBatchResponse | undefined>

/**
 * A file `src/handlers/<format>.<path>.ts` exports these two. The file with path `hand` is the
 * reference of its format: every other path must give the same output on the same event.
 */
export interface HandlerModule {
  /** The row's name in the tables. */
  label: string
  make(sink: Sink): BenchHandler
  /** Set when the path hands a payload it cannot read to the record handler instead of failing it: how. */
  lenient?: string
  /** Set when the module holds bench scaffolding that a deployed handler would not: why it has no cold-start row. */
  noColdStart?: string
}
