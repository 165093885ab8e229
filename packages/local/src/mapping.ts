/**
 * `runMapping()`: the event source mapping. It reads every shard of a stream through
 * `@aws-sdk/client-kinesis` (shards in parallel; a child shard after its parents, as Lambda
 * does after a reshard), splits each shard into `ParallelizationFactor` lanes by partition key,
 * and runs each lane's batches one at a time through the function with Lambda's rules (`Lane`).
 * The same code reads kinesalite, LocalStack or AWS: only the client's options differ.
 */

import { access, constants } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { setImmediate, setTimeout as sleepFor } from 'node:timers/promises'
import type { _Record, KinesisClient, Shard } from '@aws-sdk/client-kinesis'
import type { STSClient } from '@aws-sdk/client-sts'
import {
  ConfigurationError,
  compareSequenceNumbers,
  MAX_TIMER_MS,
  messageOf,
} from '@shardwise/core'
import { ignoredFailures, judge } from '@shardwise/testing'
import { CheckpointFile, type ShardCheckpoint } from './checkpoints.js'
import {
  type Destination,
  type InvocationRecord,
  invocationRecord,
  jsonLinesDestination,
} from './destination.js'
import { buildEvent, type PendingRecord, type RecordSource, toPendingRecord } from './event.js'
import { matchesFilterCriteria } from './filter.js'
import { type FunctionAccount, functionAccount, stsClient } from './identity.js'
import {
  type FunctionIdentity,
  functionArn,
  invoke,
  type KinesisHandler,
  loadHandler,
} from './invoke.js'
import { isLocalKinesis } from './kinesalite.js'
import { type Batch, type Discard, Lane, type LaneRules, retryDelayMs } from './lane.js'
import { type MappingSettings, type ResolvedSettings, resolveSettings } from './settings.js'
import {
  kinesisClient,
  MAX_GET_RECORDS,
  type ShardEnd,
  type ShardPosition,
  StreamReader,
} from './shards.js'

export interface RunOptions {
  /** The stream's name. */
  stream: string
  /** The function, or `<module>[:<export>]` to import it from (export `handler` by default). */
  handler: KinesisHandler | string
  /** The event source mapping's settings, named as in `CreateEventSourceMapping`. */
  mapping?: MappingSettings
  /** Kinesis endpoint (kinesalite, LocalStack); omitted, the AWS endpoint of `region`. */
  endpoint?: string
  /**
   * The stream's region, and the region of the event's `awsRegion` and ARNs. Default: the
   * client's region when `client` is given; otherwise `AWS_REGION`, then `us-east-1`.
   */
  region?: string
  /** A ready client; `endpoint` is then ignored. */
  client?: KinesisClient
  /** A JSON-lines file, or any `Destination`, for the metadata of discarded batches. */
  onFailure?: string | Destination
  /** The function's timeout in seconds: 1 to 900. Default 3, as in Lambda. */
  timeoutSeconds?: number
  /** Stop once nothing was read or invoked for this long and nothing waits. Default: never. */
  exitWhenIdleSeconds?: number
  /**
   * Stops the mapping: nothing new starts, and an invocation in flight gets up to
   * `STOP_WITHIN_MS` (5 s) to finish; then it is abandoned, its records not checkpointed.
   */
  signal?: AbortSignal
  /**
   * The time the mapping's rules go by (record age, batching window, tumbling windows) and the
   * wait before a retry. Default: the system clock. Tests pass one that moves only when asked.
   */
  clock?: MappingClock
  /** How long a shard that returned nothing waits before reading again. Default 1000 (Lambda's base rate). */
  pollIntervalMs?: number
  /** Called every `progressIntervalMs` with the counters so far. */
  onProgress?: (stats: MappingStats) => void
  /** Default 5000. */
  progressIntervalMs?: number
  /** `info`: each failed invocation; `warn`: each discarded batch. `console` fits. */
  logger?: { info(message: string): void; warn(message: string): void }
  /**
   * The function's ARN, in the context (`invokedFunctionArn`), the destination's `functionArn`,
   * and, by its account, the event's `invokeIdentityArn`. Default: on AWS, the function named
   * `functionName` in the account of the caller's credentials (STS GetCallerIdentity); against
   * a local endpoint, account 000000000000.
   */
  functionArn?: string
  /** A ready STS client for the caller's account (a local endpoint then asks it too). */
  sts?: STSClient
  /** The name in the context and the destination's `functionArn`. Default `local-function`. */
  functionName?: string
  /**
   * How long one Kinesis request may go unanswered before the run fails with an error that
   * names the call and the shard, rather than waiting for ever. Default 30000.
   */
  requestTimeoutMs?: number
  /**
   * How long a Kinesis request that fails transiently (refused connection, throttling, 5xx, a
   * restarting endpoint) is tried again, with backoff from 0.1 s doubling to 5 s, before the run
   * fails. Default 60.
   */
  outageToleranceSeconds?: number
  /**
   * How often the shards are listed again, to find those a reshard made while a parent is still
   * being read (a parent read to its end finds its children at once). Default 10000.
   */
  listShardsIntervalMs?: number
  /**
   * A JSON file that keeps each shard's checkpoint and open tumbling windows, written
   * atomically after each settled batch: a new run with the same file resumes where this one
   * stopped, whatever the starting position. Default: none, progress is not kept.
   */
  checkpointFile?: string
}

export interface MappingClock {
  now(): number
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

const systemClock: MappingClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, { signal }).catch(() => undefined),
}

const LIST_SHARDS_INTERVAL_MS = 10_000

/** How long a stop waits for the invocations in flight before it abandons them. */
export const STOP_WITHIN_MS = 5000

export interface MappingStats {
  shards: number
  recordsRead: number
  /** Records read that matched no filter of `filterCriteria`: never invoked, checkpointed past. */
  recordsFilteredOut: number
  invocations: number
  /** Records checkpointed after a successful (or partly successful) invocation. */
  recordsSucceeded: number
  /**
   * Records the function reported failed in `batchItemFailures` while `ReportBatchItemFailures`
   * is off: Lambda takes any answer as a success, so it checkpoints past them and never retries
   * them. Counted in `recordsSucceeded` too, as Lambda counts them.
   */
  recordsDroppedUnreported: number
  /** Failed or partly failed invocations whose records were invoked again. */
  retries: number
  /** Time spent waiting before retries (Lambda's backoff), in all lanes together. */
  retryWaitMs: number
  /** Invocations still running when a stop gave up waiting for them (`STOP_WITHIN_MS`). */
  invocationsAbandoned: number
  bisects: number
  /** Records discarded and reported to the on-failure destination. */
  recordsToDestination: number
  /** Documents sent to the on-failure destination. */
  destinationMessages: number
  elapsedMs: number
  /** `recordsSucceeded` per second, until the last read or invocation. */
  recordsPerSecond: number
  /** Each shard read so far: where it stands and how far behind. */
  shardLag: ShardLag[]
}

export interface ShardLag {
  shardId: string
  /**
   * The sequence number of the last record done (checkpointed, discarded to the on-failure
   * destination, or filtered out) before which every record read is done: where Lambda would resume.
   * `undefined` before the first.
   */
  checkpoint: string | undefined
  /** `MillisBehindLatest` of the shard's last `GetRecords`: how far its reading is from the tip. */
  millisBehindLatest: number | undefined
  /**
   * The age of the oldest record read and not yet done, on the mapping's clock: what Lambda's
   * `IteratorAge` metric shows for a shard held up by failures. `undefined` when none waits.
   */
  iteratorAgeMs: number | undefined
}

/** The on-failure file is found wanting before any record is read, not at the first discard. */
async function checkWritable(path: string, option: string): Promise<void> {
  try {
    await access(dirname(resolve(path)), constants.W_OK)
  } catch (error) {
    throw new ConfigurationError(`${option}: cannot write ${path}: ${messageOf(error)}`, {
      cause: error,
    })
  }
}

export async function runMapping(options: RunOptions): Promise<MappingStats> {
  const settings = resolveSettings(options.mapping)
  const timeoutSeconds = options.timeoutSeconds ?? 3
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 900) {
    throw new ConfigurationError(
      `timeoutSeconds must be a whole number of seconds from 1 to 900, as Lambda's, got ${timeoutSeconds}`,
    )
  }
  for (const name of [
    'exitWhenIdleSeconds',
    'pollIntervalMs',
    'progressIntervalMs',
    'requestTimeoutMs',
    'outageToleranceSeconds',
    'listShardsIntervalMs',
  ] as const) {
    const value = options[name]
    // Each feeds a timer, which Node would run after 1 ms past its longest delay.
    const seconds = name === 'exitWhenIdleSeconds' || name === 'outageToleranceSeconds'
    const ms = seconds ? (value ?? 0) * 1000 : value
    if (
      value !== undefined &&
      !(Number.isFinite(value) && value > 0 && (ms as number) <= MAX_TIMER_MS)
    ) {
      const most = seconds ? MAX_TIMER_MS / 1000 : MAX_TIMER_MS
      throw new ConfigurationError(
        `${name} must be a number above 0 and at most ${most}, got ${value}`,
      )
    }
  }
  if (typeof options.stream !== 'string' || options.stream === '') {
    throw new ConfigurationError('the stream name is missing')
  }
  const handler =
    typeof options.handler === 'string' ? await loadHandler(options.handler) : options.handler
  if (typeof handler !== 'function') throw new ConfigurationError('handler must be a function')

  const region =
    options.region ??
    (options.client !== undefined ? await options.client.config.region() : undefined) ??
    process.env.AWS_REGION ??
    'us-east-1'
  const client = options.client ?? kinesisClient(options.endpoint, region)
  if (typeof options.onFailure === 'string') await checkWritable(options.onFailure, 'onFailure')
  if (options.checkpointFile !== undefined) {
    await checkWritable(options.checkpointFile, 'checkpointFile')
  }
  const destination =
    typeof options.onFailure === 'string'
      ? jsonLinesDestination(options.onFailure)
      : options.onFailure
  // On AWS the events carry the caller's account; a local endpoint keeps the placeholders.
  const fromAws = options.endpoint === undefined && options.client === undefined
  const sts =
    options.sts ?? (fromAws && options.functionArn === undefined ? stsClient(region) : undefined)
  let account: FunctionAccount
  try {
    account = await functionAccount({
      functionName: options.functionName,
      functionArn: options.functionArn,
      region,
      sts,
    })
  } catch (error) {
    if (options.client === undefined) client.destroy()
    throw error
  } finally {
    if (options.sts === undefined) sts?.destroy()
  }
  const identity: FunctionIdentity = {
    ...account,
    region,
    timeoutMs: timeoutSeconds * 1000,
    memoryLimitInMB: 128,
  }
  const run = new MappingRun(client, handler, settings, identity, destination, options)
  try {
    return await run.start()
  } finally {
    if (options.client === undefined) client.destroy()
  }
}

/** One run of the mapping: its counters, its stop switch, and its shards. */
class MappingRun {
  private readonly stats: MappingStats = {
    shards: 0,
    recordsRead: 0,
    recordsFilteredOut: 0,
    invocations: 0,
    recordsSucceeded: 0,
    recordsDroppedUnreported: 0,
    retries: 0,
    retryWaitMs: 0,
    invocationsAbandoned: 0,
    bisects: 0,
    recordsToDestination: 0,
    destinationMessages: 0,
    elapsedMs: 0,
    recordsPerSecond: 0,
    shardLag: [],
  }
  private readonly startedMs = Date.now()
  private lastActivityMs = Date.now()
  private stopping = false
  /** Aborts on stop: ends a retry's wait at once. */
  private readonly stopSignal = new AbortController()
  private readonly clock: MappingClock
  /** Lanes wait here for records; the reader of a full shard waits for a settled batch. */
  private readonly wake = new Wake()
  private readonly settled = new Wake()
  /** The reader of a caught-up shard waits here until its next read, or a stop. */
  private readonly stopped = new Wake()
  private readonly lanes: Lane[] = []
  /** Each shard's lanes, what its last read said and its last record filtered out, for the lag. */
  private readonly shardStates = new Map<string, ShardState>()
  /** Each shard's reading, from its start (after its parents) to its last settled batch. */
  private readonly shardRuns = new Map<string, Promise<void>>()
  /** The ListShards in flight, and the one to start once it answers. */
  private discovering: Promise<void> | undefined
  private discoverAgain: Promise<void> | undefined
  private checkpoints: CheckpointFile | undefined
  private discoveryError: { error: unknown } | undefined
  private readonly rules: LaneRules
  private streamArn = ''
  private readonly reader: StreamReader

  constructor(
    client: KinesisClient,
    private readonly handler: KinesisHandler,
    private readonly settings: ResolvedSettings,
    private readonly identity: FunctionIdentity,
    private readonly destination: Destination | undefined,
    private readonly options: RunOptions,
  ) {
    this.rules = {
      batchSize: settings.batchSize,
      maximumBatchingWindowMs: settings.maximumBatchingWindowInSeconds * 1000,
      bisectBatchOnFunctionError: settings.bisectBatchOnFunctionError,
      maximumRetryAttempts: settings.maximumRetryAttempts,
      maximumRecordAgeMs:
        settings.maximumRecordAgeInSeconds < 0 ? -1 : settings.maximumRecordAgeInSeconds * 1000,
      tumblingWindowMs: settings.tumblingWindowInSeconds * 1000,
    }
    this.clock = options.clock ?? systemClock
    this.reader = new StreamReader(client, {
      stream: options.stream,
      startingPosition: settings.startingPosition,
      startingPositionTimestamp: settings.startingPositionTimestamp,
      builtInKinesalite: isLocalKinesis(client, options.endpoint),
      requestTimeoutMs: options.requestTimeoutMs,
      pollIntervalMs: options.pollIntervalMs,
      endpoint: options.client === undefined ? options.endpoint : undefined,
      region: identity.region,
      retryForMs:
        options.outageToleranceSeconds === undefined
          ? undefined
          : options.outageToleranceSeconds * 1000,
      clock: this.clock,
      signal: this.stopSignal.signal,
      logger: options.logger,
    })
  }

  async start(): Promise<MappingStats> {
    const { signal } = this.options
    const stop = () => {
      const running = this.lanes.filter((lane) => lane.busy).length
      if (running > 0) {
        this.options.logger?.warn(
          `waiting for ${running} invocation(s) in flight, ${STOP_WITHIN_MS / 1000} s at most`,
        )
      }
      this.stop()
    }
    signal?.addEventListener('abort', stop, { once: true })
    const timers: NodeJS.Timeout[] = []
    try {
      this.streamArn = inRegion(await this.reader.streamArn(), this.identity.region)
      if (this.options.checkpointFile !== undefined) {
        this.checkpoints = await CheckpointFile.open(this.options.checkpointFile, this.streamArn)
      }
      this.addShards(await this.reader.listShards())
      if (signal?.aborted) this.stop()

      const { onProgress, exitWhenIdleSeconds } = this.options
      if (onProgress !== undefined) {
        const every = this.options.progressIntervalMs ?? 5000
        timers.push(setInterval(() => onProgress(this.snapshot()), every))
      }
      if (exitWhenIdleSeconds !== undefined) {
        const idleMs = exitWhenIdleSeconds * 1000
        timers.push(setInterval(() => this.stopWhenIdle(idleMs), Math.min(100, idleMs)))
      }
      // A reshard is seen when a parent is read to its end, and between ends by listing again.
      const discoverEvery = this.options.listShardsIntervalMs ?? LIST_SHARDS_INTERVAL_MS
      timers.push(setInterval(() => void this.discover([]), discoverEvery))

      // Every shard winds down before the first error is thrown, so none is left reading. A
      // stop waits STOP_WITHIN_MS at most: an invocation (up to 900 s) or a request still
      // running then is abandoned, and what was done is summed up.
      const results = await Promise.race([this.shardsSettled(), this.gaveUp])
      if (results === undefined) {
        for (const lane of this.lanes) if (lane.busy) this.stats.invocationsAbandoned++
        this.options.logger?.warn(
          `stopped after ${STOP_WITHIN_MS / 1000} s with ${this.stats.invocationsAbandoned} invocation(s) still running: ` +
            'abandoned, their records not checkpointed',
        )
        return this.snapshot()
      }
      for (const result of results) if (result.status === 'rejected') throw result.reason
      if (this.discoveryError !== undefined) throw this.discoveryError.error
      return this.snapshot()
    } finally {
      for (const timer of timers) clearInterval(timer)
      clearTimeout(this.giveUpTimer)
      signal?.removeEventListener('abort', stop)
    }
  }

  private giveUpTimer: NodeJS.Timeout | undefined
  private giveUp: () => void = () => {}
  /** Resolves `STOP_WITHIN_MS` after the stop. */
  private readonly gaveUp = new Promise<undefined>((done) => {
    this.giveUp = () => done(undefined)
  })

  private stop(): void {
    if (!this.stopping) this.giveUpTimer = setTimeout(this.giveUp, STOP_WITHIN_MS)
    this.stopping = true
    this.stopSignal.abort()
    this.wake.notify()
    this.settled.notify()
    this.stopped.notify()
  }

  private stopWhenIdle(idleMs: number): void {
    // A read in flight is not idleness: on a busy machine the first read of a large shard
    // alone can take longer than the idle time.
    if (this.reader.readsInFlight > 0) return
    for (const lane of this.lanes) if (lane.waiting > 0 || lane.busy) return
    if (Date.now() - this.lastActivityMs >= idleMs) this.stop()
  }

  private snapshot(): MappingStats {
    const now = Date.now()
    // Idle time (waiting for records, or for --exit-when-idle) is not throughput.
    const busyMs = this.lastActivityMs - this.startedMs
    return {
      ...this.stats,
      elapsedMs: now - this.startedMs,
      recordsPerSecond: busyMs > 0 ? (this.stats.recordsSucceeded * 1000) / busyMs : 0,
      shardLag: [...this.shardStates].map(([shardId, state]) => lagOf(shardId, state, this.clock)),
    }
  }

  /**
   * Starts reading each shard not seen yet; a child shard starts once its parents (those still
   * in the stream) are read to their end and their batches settled, keeping order per key
   * across a split or a merge, as Lambda does.
   */
  private addShards(shards: Shard[]): void {
    const listed = new Map<string, Shard>()
    for (const shard of shards) listed.set(shard.ShardId as string, shard)
    const add = (shard: Shard): Promise<void> => {
      const id = shard.ShardId as string
      const known = this.shardRuns.get(id)
      if (known !== undefined) return known
      const parents: Promise<void>[] = []
      for (const parentId of [shard.ParentShardId, shard.AdjacentParentShardId]) {
        if (parentId === undefined) continue
        const parent = this.shardRuns.get(parentId) ?? listed.get(parentId)
        if (parent !== undefined) parents.push(parent instanceof Promise ? parent : add(parent))
      }
      const run = Promise.all(parents).then(() => this.readShard(shard))
      this.shardRuns.set(id, run)
      this.stats.shards++
      return run
    }
    for (const shard of shards) add(shard)
  }

  /**
   * Lists the shards again (or takes the children GetRecords named) and reads the new ones. A
   * listing in flight may have been answered before the reshard the caller looks for (a shard
   * read to its end, whose run must not end before its children are known): the caller then
   * waits for one more listing, started once that one answered, which callers share.
   */
  private discover(children: Shard[]): Promise<void> {
    if (this.stopping) return Promise.resolve()
    if (children.length > 0) {
      this.addShards(children)
      return Promise.resolve()
    }
    if (this.discovering !== undefined) {
      this.discoverAgain ??= this.discovering.then(() => {
        this.discoverAgain = undefined
        return this.discover([])
      })
      return this.discoverAgain
    }
    this.discovering = this.reader
      .listShards()
      .then(
        (shards) => {
          if (!this.stopping) this.addShards(shards)
        },
        (error: unknown) => {
          // A stop ends a listing that waited on an outage: not an error of the run.
          if (this.stopping) return
          this.discoveryError ??= { error }
          this.stop()
        },
      )
      .finally(() => {
        this.discovering = undefined
      })
    return this.discovering
  }

  /** Every shard's outcome, once no shard is left reading, new ones included. */
  private async shardsSettled(): Promise<PromiseSettledResult<void>[]> {
    for (;;) {
      const runs = [...this.shardRuns.values()]
      const results = await Promise.allSettled(runs)
      if (this.shardRuns.size === runs.length) return results
    }
  }

  private async readShard(shard: Shard): Promise<void> {
    if (this.stopping) return
    const shardId = shard.ShardId as string
    const source: RecordSource = {
      shardId,
      streamArn: this.streamArn,
      region: this.identity.region,
      invokeIdentityArn: `arn:aws:iam::${this.identity.account ?? '000000000000'}:role/${this.identity.functionName}-role`,
    }
    const lanes: Lane[] = []
    for (let i = 0; i < this.settings.parallelizationFactor; i++) lanes.push(new Lane(this.rules))
    this.lanes.push(...lanes)
    this.shardStates.set(shardId, {
      lanes,
      millisBehindLatest: undefined,
      lastFilteredOut: undefined,
    })
    const from = await this.resumeAt(shardId, lanes)

    const reading = { closed: false, ended: false }
    // A lane that fails (its on-failure destination cannot be written) stops the mapping, and
    // its error is thrown once the shard has wound down, not left as an unhandled rejection.
    let laneError: { error: unknown } | undefined
    const laneRuns = lanes.map((lane) =>
      this.runLane(lane, source, reading).catch((error: unknown) => {
        laneError ??= { error }
        this.stop()
      }),
    )
    let end: ShardEnd | undefined
    try {
      end = await this.readRecords(shardId, lanes, source, from)
    } catch (error) {
      this.stop()
      throw error
    } finally {
      if (end !== undefined) {
        reading.ended = true
        for (const lane of lanes) lane.endShard()
      }
      reading.closed = true
      this.wake.notify()
      await Promise.all(laneRuns)
    }
    if (laneError !== undefined) throw laneError.error
    // Its children are found before this shard's run is over, so none is missed at the end.
    if (end !== undefined) await this.discover(end.children)
  }

  /**
   * Where a shard resumes from the checkpoint file, its lanes given back their open windows; a
   * shard first read from LATEST keeps the time it started, so that a new run reads what was put
   * while none was reading.
   */
  private async resumeAt(shardId: string, lanes: Lane[]): Promise<ShardPosition | undefined> {
    const checkpoints = this.checkpoints
    if (checkpoints === undefined) return undefined
    const kept = checkpoints.shard(shardId)
    kept?.windows?.forEach((window, i) => {
      if (window !== null) lanes[i]?.restoreWindow(window, window.state)
    })
    if (kept?.sequenceNumber !== undefined) return { after: kept.sequenceNumber }
    if (kept?.sinceMs !== undefined) return { atMs: kept.sinceMs }
    if (this.settings.startingPosition === 'LATEST') {
      await this.keep(shardId, { sinceMs: Date.now() })
    }
    return undefined
  }

  /** Writes a shard's checkpoint and open windows, once its lanes settled a batch. */
  private async keepCheckpoint(shardId: string): Promise<void> {
    const checkpoints = this.checkpoints
    const state = this.shardStates.get(shardId)
    if (checkpoints === undefined || state === undefined) return
    const kept = checkpoints.shard(shardId)
    const next: ShardCheckpoint = {}
    const sequenceNumber = lagOf(shardId, state, this.clock).checkpoint ?? kept?.sequenceNumber
    if (sequenceNumber !== undefined) next.sequenceNumber = sequenceNumber
    else if (kept?.sinceMs !== undefined) next.sinceMs = kept.sinceMs
    if (this.settings.tumblingWindowInSeconds > 0) {
      next.windows = state.lanes.map((lane) => {
        const open = lane.openWindow
        return open === undefined ? null : { ...open.window, state: open.state }
      })
    }
    await this.keep(shardId, next)
  }

  private async keep(shardId: string, checkpoint: ShardCheckpoint): Promise<void> {
    const checkpoints = this.checkpoints as CheckpointFile
    try {
      await checkpoints.set(shardId, checkpoint)
    } catch (error) {
      throw new Error(
        `${shardId}: cannot write the checkpoint file ${checkpoints.path}: ${messageOf(error)}`,
        { cause: error },
      )
    }
  }

  /** Gives a shard's records to its lanes, by partition key, and paces its reading. */
  private readRecords(
    shardId: string,
    lanes: Lane[],
    source: RecordSource,
    from: ShardPosition | undefined,
  ): Promise<ShardEnd | undefined> {
    // Reading stops while this many records wait, so a slow function does not fill the memory.
    const highWater = Math.max(MAX_GET_RECORDS, this.settings.batchSize * 2 * lanes.length)
    const filter = this.settings.filterCriteria
    return this.reader.read(
      shardId,
      {
        stopping: () => this.stopping,
        full: () => {
          let waiting = 0
          for (const lane of lanes) waiting += lane.waiting
          return waiting >= highWater
        },
        waitForRoom: () => this.settled.wait(1000),
        pause: (ms) => this.stopped.wait(ms),
        take: (records: _Record[], now: number) => {
          // Read at the time the rules go by, which the batching window counts from.
          const readMs = this.clock.now()
          let filteredOut: string | undefined
          for (const record of records) {
            const pending = toPendingRecord(record, source, readMs)
            if (filter !== undefined && !matchesFilterCriteria(filter, pending.lambda)) {
              // Lambda never invokes a record that matches no filter, and checkpoints past it.
              this.stats.recordsFilteredOut++
              filteredOut = pending.sequenceNumber
              continue
            }
            const lane =
              lanes.length === 1 ? lanes[0] : lanes[laneOf(pending.partitionKey, lanes.length)]
            ;(lane as Lane).push(pending)
          }
          this.stats.recordsRead += records.length
          this.lastActivityMs = now
          this.wake.notify()
          if (filteredOut === undefined) return
          const state = this.shardStates.get(shardId)
          if (state !== undefined) state.lastFilteredOut = filteredOut
          // No batch may follow them (a shard's tail filtered out): the file is written now, or
          // a new run would read them again.
          return this.keepCheckpoint(shardId)
        },
        behind: (millisBehindLatest) => {
          const state = this.shardStates.get(shardId)
          if (state !== undefined) state.millisBehindLatest = millisBehindLatest
        },
      },
      from,
    )
  }

  private async runLane(
    lane: Lane,
    source: RecordSource,
    reading: { closed: boolean; ended: boolean },
  ) {
    const windowed = this.settings.tumblingWindowInSeconds > 0
    const rules = {
      reportBatchItemFailures: this.settings.reportBatchItemFailures,
      tumblingWindow: windowed,
    }
    // Retries in a row of the lane's head records, for the backoff.
    let retrying = 0
    for (;;) {
      // Lets timers and sockets run between invocations (progress lines, a kinesalite in this
      // process): a handler that fails at once would otherwise hold the event loop.
      await setImmediate()
      // A stop lets the batch in flight finish (this loop is past it) and starts no other.
      if (this.stopping) return
      const now = this.clock.now()
      const expired = lane.expire(now)
      for (const discard of expired) await this.discard(discard, source, undefined)
      if (expired.length > 0) await this.keepCheckpoint(source.shardId)
      const batch = lane.next(now)
      if (batch === undefined) {
        // At a shard's end, its open window still gets its final invocation.
        if (reading.closed && lane.waiting === 0 && !(reading.ended && lane.windowOpen)) return
        await this.wake.wait(this.readyCheckMs())
        continue
      }
      const event = buildEvent(
        batch.records,
        windowed ? windowProperties(batch, source) : undefined,
      )
      const { answer, requestId } = await invoke(this.handler, event, this.identity)
      this.stats.invocations++
      this.lastActivityMs = Date.now()
      const ignored = ignoredFailures(answer, batch.records, rules)
      if (ignored !== undefined) {
        // Said for every such batch: each one loses records on Lambda.
        this.stats.recordsDroppedUnreported += ignored.count
        const from = batch.records[ignored.from] as PendingRecord
        this.options.logger?.warn(
          `${source.shardId}: the function reported ${ignored.count} record(s) failed from ${from.sequenceNumber}, ` +
            'but ReportBatchItemFailures is off: Lambda ignores batchItemFailures, checkpoints the whole batch ' +
            'and drops them (add --function-response-types ReportBatchItemFailures)',
        )
      }
      const verdict = judge(answer, batch.records, rules)
      const settlement = lane.settle(batch, verdict)
      this.stats.recordsSucceeded += settlement.succeeded
      if (settlement.bisected) this.stats.bisects++
      if (settlement.retry && !settlement.bisected) this.stats.retries++
      if (verdict.kind === 'failure') {
        this.options.logger?.info(
          `${source.shardId}: invocation ${requestId} of ${describeBatch(batch)} failed: ${verdict.reason}`,
        )
      }
      if (settlement.discarded !== undefined) {
        await this.discard(settlement.discarded, source, requestId)
      }
      await this.keepCheckpoint(source.shardId)
      this.settled.notify()
      if (!settlement.retry) retrying = 0
      else if (!settlement.bisected) {
        // Past a checkpoint, the rest is a new batch failing for the first time.
        retrying = settlement.succeeded > 0 ? 1 : retrying + 1
        // The time waited, which a stop cuts short.
        const before = this.clock.now()
        await this.clock.sleep(retryDelayMs(retrying), this.stopSignal.signal)
        this.stats.retryWaitMs += this.clock.now() - before
      }
    }
  }

  /** How often a lane with nothing ready looks again: soon enough for windows to close on time. */
  private readyCheckMs(): number {
    return this.settings.maximumBatchingWindowInSeconds > 0 ||
      this.settings.tumblingWindowInSeconds > 0
      ? 50
      : 250
  }

  private async discard(discard: Discard, source: RecordSource, requestId: string | undefined) {
    this.stats.recordsToDestination += discard.records.length
    const record: InvocationRecord = invocationRecord(discard, {
      shardId: source.shardId,
      streamArn: source.streamArn,
      functionArn: functionArn(this.identity),
      requestId: requestId ?? crypto.randomUUID(),
      nowMs: this.clock.now(),
    })
    const info = record.KinesisBatchInfo
    const which =
      info.batchSize === 1
        ? `1 record, ${info.startSequenceNumber}`
        : `${info.batchSize} records, ${info.startSequenceNumber} to ${info.endSequenceNumber}`
    this.options.logger?.warn(`${source.shardId}: ${discard.condition}: discarded ${which}`)
    if (this.destination !== undefined) {
      try {
        await this.destination.send(record)
      } catch (error) {
        throw new Error(
          `${source.shardId}: the on-failure destination did not take the document of ${which}: ${messageOf(error)}`,
          { cause: error },
        )
      }
      this.stats.destinationMessages++
    }
  }
}

function windowProperties(batch: Batch, source: RecordSource) {
  const window = batch.window ?? { startMs: 0, endMs: 0 }
  return {
    // Whole seconds, written as AWS' sample writes them: 2020-12-09T07:04:00Z.
    window: {
      start: new Date(window.startMs).toISOString().replace('.000Z', 'Z'),
      end: new Date(window.endMs).toISOString().replace('.000Z', 'Z'),
    },
    state: batch.state,
    shardId: source.shardId,
    eventSourceARN: source.streamArn,
    isFinalInvokeForWindow: batch.isFinalInvokeForWindow,
    isWindowTerminatedEarly: batch.isWindowTerminatedEarly,
  }
}

interface ShardState {
  lanes: Lane[]
  millisBehindLatest: number | undefined
  /** The last record read that matched no filter: done, as Lambda checkpoints past it. */
  lastFilteredOut: string | undefined
}

function lagOf(shardId: string, state: ShardState, clock: MappingClock): ShardLag {
  // Lanes split a shard by partition key: its oldest record not done is the lowest of theirs,
  // and its checkpoint the last record done before that one, in whichever lane.
  let oldest: PendingRecord | undefined
  for (const lane of state.lanes) {
    const record = lane.oldestUndone
    if (
      record !== undefined &&
      (oldest === undefined ||
        compareSequenceNumbers(record.sequenceNumber, oldest.sequenceNumber) < 0)
    ) {
      oldest = record
    }
  }
  let checkpoint: string | undefined
  for (const lane of state.lanes) {
    const done = lane.lastDoneBefore(oldest?.sequenceNumber)
    if (
      done !== undefined &&
      (checkpoint === undefined || compareSequenceNumbers(done, checkpoint) > 0)
    ) {
      checkpoint = done
    }
  }
  // A record filtered out is done too, when no record read before it still waits. (One that a
  // waiting record comes before is passed once that record is done and a later one is.)
  const filtered = state.lastFilteredOut
  if (
    filtered !== undefined &&
    (oldest === undefined || compareSequenceNumbers(filtered, oldest.sequenceNumber) < 0) &&
    (checkpoint === undefined || compareSequenceNumbers(filtered, checkpoint) > 0)
  ) {
    checkpoint = filtered
  }
  return {
    shardId,
    checkpoint,
    millisBehindLatest: state.millisBehindLatest,
    iteratorAgeMs: oldest === undefined ? undefined : Math.max(0, clock.now() - oldest.arrivalMs),
  }
}

function describeBatch(batch: Batch): string {
  const n = batch.records.length
  if (n === 0) return 'the final invocation of a window'
  const first = batch.records[0] as PendingRecord
  const last = batch.records[n - 1] as PendingRecord
  return `${n} record(s) ${first.sequenceNumber}..${last.sequenceNumber}`
}

/**
 * The stream's ARN in the region the run was asked for. AWS answers with that region anyway; a
 * local endpoint (kinesalite) answers with the one it was started in, which the user did not ask
 * for and which would disagree with `awsRegion`.
 */
function inRegion(arn: string, region: string): string {
  const parts = arn.split(':')
  if (parts.length < 6 || parts[3] === region) return arn
  parts[3] = region
  return parts.join(':')
}

/** FNV-1a of the partition key: the same key always lands in the same lane. */
function laneOf(partitionKey: string, lanes: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < partitionKey.length; i++) {
    hash ^= partitionKey.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % lanes
}

/** Wakes every waiter at once: new records, a settled batch, or a stop. */
class Wake {
  private readonly waiters = new Set<() => void>()

  notify(): void {
    for (const done of this.waiters) done()
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.waiters.add(done)
    })
  }
}
