/**
 * `eachRecord(handler)`: the batch handler that hands each decoded record to the user's record
 * handler, keeps each failure with its record, and starts nothing after the first failure
 * (Lambda will redeliver everything from there, so running it would only repeat side effects).
 */
import {
  batchResponse,
  ConfigurationError,
  type Context,
  checkOptions,
  failRecord,
  firstFailed,
  getBatch,
  type KinesisRecord,
  type KinesisStreamBatchResponse,
  type KinesisStreamEvent,
  type OptionSchema,
  type RecordBatch,
  RecordHandlerError,
  RecordStatus,
} from '@shardwise/core'

const pkg = '@shardwise/partial-failures'

/**
 * - `'shard'`: one record at a time, in batch order (Kinesis' own ordering guarantee).
 * - `'partitionKey'`: records of different keys run concurrently; each key's in batch order.
 * - `'none'`: any records run concurrently, started in batch order.
 */
export type Ordering = 'shard' | 'partitionKey' | 'none'

export interface EachRecordOptions {
  /** Default `'shard'`. */
  ordering?: Ordering
  /** Records in flight at most, for `'partitionKey'` and `'none'`. Default 10. */
  concurrency?: number
}

export interface RecordHandlerOptions {
  /** Aborted when the invocation is about to end (middy's signal). */
  signal: AbortSignal | undefined
}

export type RecordHandler<T> = (
  record: KinesisRecord<T>,
  context: Context,
  options: RecordHandlerOptions,
) => Promise<unknown> | unknown

/**
 * The batch handler `eachRecord` returns, ready for `middy(...)`. It takes the event Lambda
 * sends; `kinesisDecode` attaches the decoded records to it before the handler runs.
 */
export type BatchHandler = (
  event: KinesisStreamEvent,
  context: Context,
  options?: { signal?: AbortSignal },
) => Promise<KinesisStreamBatchResponse>

const optionSchema: OptionSchema = {
  type: 'object',
  properties: {
    ordering: { enum: ['shard', 'partitionKey', 'none'] },
    concurrency: { type: 'integer', minimum: 1 },
  },
  additionalProperties: false,
}

/**
 * @example
 * export const handler = middy(eachRecord(async (record) => save(record.data)))
 *   .use(kinesisDecode())
 *   .use(partialFailures())
 */
export function eachRecord<T = Uint8Array>(
  handler: RecordHandler<T>,
  options?: EachRecordOptions,
): BatchHandler {
  if (typeof handler !== 'function') {
    throw new ConfigurationError(`${pkg}: eachRecord needs a record handler function`)
  }
  const { ordering = 'shard', concurrency = 10 } = checkOptions(pkg, optionSchema, options)
  const run = ordering === 'shard' ? runInOrder : ordering === 'none' ? runUnordered : runByKey

  return async (event, context, middyOptions) => {
    const batch = getBatch<T>(event)
    if (batch === undefined) {
      throw new ConfigurationError(
        `${pkg}: the event has no decoded records; add .use(kinesisDecode()) to the middy chain`,
      )
    }
    const failedAt = firstFailed(batch)
    const state: Run<T> = {
      batch,
      handler,
      context,
      options: { signal: middyOptions?.signal },
      limit: failedAt === -1 ? batch.records.length : failedAt,
    }
    await run(state as Run<unknown>, concurrency)
    return batchResponse(batch)
  }
}

/** One invocation's run over its batch. */
interface Run<T> {
  readonly batch: RecordBatch<T>
  readonly handler: RecordHandler<T>
  readonly context: Context
  readonly options: RecordHandlerOptions
  /** No record at or after this position may start: the first failure, which only moves down. */
  limit: number
}

/**
 * Runs one record; resolves `true` when it succeeded, never rejects. A failure lowers the
 * limit in the same step that observes it, so no other worker can start a later record first.
 */
async function handle(run: Run<unknown>, index: number): Promise<boolean> {
  const record = run.batch.records[index] as KinesisRecord<unknown>
  try {
    await run.handler(record, run.context, run.options)
    run.batch.status[index] = RecordStatus.Succeeded
    return true
  } catch (thrown) {
    failRecord(run.batch, index, new RecordHandlerError(record, thrown))
    if (index < run.limit) run.limit = index
    return false
  }
}

async function runInOrder(run: Run<unknown>): Promise<void> {
  for (let i = 0; i < run.limit; i++) {
    if (!(await handle(run, i))) return
  }
}

/** Workers take the next record in batch order; every record before the limit starts. */
async function runUnordered(run: Run<unknown>, concurrency: number): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < run.limit) await handle(run, next++)
  }
  await startWorkers(worker, Math.min(concurrency, run.limit))
}

/**
 * Each partition key is a queue in batch order; a key is ready when none of its records is in
 * flight. Workers take the ready key whose next record comes first in the batch (a min-heap of
 * positions), so the batch advances in order as far as the keys allow.
 */
async function runByKey(run: Run<unknown>, concurrency: number): Promise<void> {
  const { records } = run.batch
  const size = run.limit

  // nextOfKey[i]: the next position with the same partition key as i, or -1.
  const nextOfKey = new Int32Array(size).fill(-1)
  const lastOfKey = new Map<string, number>()
  const ready = new MinHeap(size)
  for (let i = 0; i < size; i++) {
    const key = (records[i] as KinesisRecord<unknown>).partitionKey
    const last = lastOfKey.get(key)
    if (last === undefined) ready.push(i)
    else nextOfKey[last] = i
    lastOfKey.set(key, i)
  }

  // A worker with nothing ready waits until a record in flight finishes and frees its key.
  let running = 0
  let progress: Promise<void> | undefined
  let signalProgress: (() => void) | undefined
  const waitForProgress = () => {
    progress ??= new Promise<void>((resolve) => {
      signalProgress = resolve
    })
    return progress
  }

  const worker = async () => {
    for (;;) {
      if (ready.size > 0 && ready.peek() < run.limit) {
        const index = ready.pop()
        running++
        const succeeded = await handle(run, index)
        running--
        const after = nextOfKey[index] as number
        if (succeeded && after !== -1) ready.push(after)
        const wake = signalProgress
        progress = signalProgress = undefined
        wake?.()
      } else if (running > 0) {
        await waitForProgress()
      } else {
        return
      }
    }
  }
  await startWorkers(worker, Math.min(concurrency, size))
}

async function startWorkers(worker: () => Promise<void>, count: number): Promise<void> {
  const workers: Promise<void>[] = []
  for (let w = 0; w < count; w++) workers.push(worker())
  await Promise.all(workers)
}

/** A binary min-heap of record positions with a fixed capacity. */
class MinHeap {
  private readonly items: Int32Array
  size = 0

  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(capacity, 1))
  }

  peek(): number {
    return this.items[0] as number
  }

  push(value: number): void {
    const items = this.items
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = items[parent] as number
      if (p <= value) break
      items[i] = p
      i = parent
    }
    items[i] = value
  }

  pop(): number {
    const items = this.items
    const top = items[0] as number
    const last = items[--this.size] as number
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= this.size) break
      const right = left + 1
      const child =
        right < this.size && (items[right] as number) < (items[left] as number) ? right : left
      if ((items[child] as number) >= last) break
      items[i] = items[child] as number
      i = child
    }
    items[i] = last
    return top
  }
}
