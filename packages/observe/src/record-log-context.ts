/**
 * `recordLogContext({ logger })`: while a record's handler runs, every line a Powertools `Logger`
 * writes carries the record's coordinates (shard, sequence number, sub-sequence number,
 * partition key), with no argument from the user; `currentRecord()` gives them to any other
 * logger. Right when records of different keys run at once (`'partitionKey'`, `'none'`), as the
 * record loop keeps each record's context apart (core's record observers), and gone after it.
 */
import type { MiddlewareObj } from '@middy/core'
import {
  checkOptions,
  currentCoordinates,
  type KinesisStreamEvent,
  type OptionRules,
  observeRecords,
  type RecordCoordinates,
  type RecordObserver,
  unobserveRecords,
} from '@shardwise/core'
import { pkg } from './package.js'

/**
 * What `recordLogContext` needs of a Powertools `Logger` (`@aws-lambda-powertools/logger`).
 * It hooks the method that builds each log item (`createAndPopulateLogItem`), which the type
 * keeps protected, so it is checked when the middleware is built.
 */
export interface PowertoolsLogger {
  info(message: string): void
  createChild(): unknown
}

export interface RecordLogContextOptions {
  /**
   * A Powertools `Logger` whose lines, inside a record handler, carry the record's `shardId`,
   * `sequenceNumber`, `subSequenceNumber` (KPL sub-records) and `partitionKey`; and the loggers
   * its `createChild()` makes from then on. Without it, only `currentRecord()` answers.
   */
  logger?: PowertoolsLogger
}

/**
 * The coordinates of the record whose handler is running here, or `undefined` outside one: as
 * the record was decoded, whatever the handler wrote over it.
 */
export function currentRecord(): RecordCoordinates | undefined {
  return currentCoordinates()
}

const optionRules: OptionRules = {
  logger: (logger, name) =>
    typeof (logger as Record<string, unknown> | null)?.createAndPopulateLogItem === 'function' &&
    typeof (logger as Record<string, unknown>).createChild === 'function'
      ? undefined
      : `Option '${name}' must be a Powertools Logger (@aws-lambda-powertools/logger 2); for another logger, read currentRecord() in its hooks`,
}

/** Asks the record loop to keep each record's context; it needs nothing else of the records. */
const keepRecordContext: RecordObserver = {}

/**
 * @example
 * const logger = new Logger({ serviceName: 'orders' })
 * export const handler = middy(eachRecord(async (record) => logger.info('saving')))
 *   .use(kinesisDecode())
 *   .use(recordLogContext({ logger }))
 *   .use(partialFailures({ logger }))
 */
export function recordLogContext(
  options?: RecordLogContextOptions,
): MiddlewareObj<KinesisStreamEvent, unknown> {
  const { logger } = checkOptions(pkg, optionRules, options)
  if (logger !== undefined) withRecordKeys(logger as unknown as HookedLogger)
  return {
    before(request) {
      observeRecords(request.event, keepRecordContext)
    },
    after(request) {
      unobserveRecords(request.event, keepRecordContext)
    },
    onError(request) {
      unobserveRecords(request.event, keepRecordContext)
    },
  }
}

type LogItemMaker = (level: number, input: unknown, extraInput: unknown[]) => unknown

interface HookedLogger {
  createAndPopulateLogItem: LogItemMaker
  createChild: (...args: unknown[]) => unknown
  [HOOKED]?: true
}

const HOOKED: unique symbol = Symbol.for('@shardwise/observe/record-keys') as never

/**
 * Adds the running record's coordinates to each item the logger builds, before the extra
 * arguments of the call, so that keys the user passes win. The logger's level check comes
 * first, so a line that is not written costs nothing more.
 */
function withRecordKeys(logger: HookedLogger): void {
  if (logger[HOOKED]) return
  logger[HOOKED] = true
  const makeItem = logger.createAndPopulateLogItem
  logger.createAndPopulateLogItem = function (this: unknown, level, input, extraInput) {
    const at = currentCoordinates()
    if (at === undefined) return makeItem.call(this, level, input, extraInput)
    return makeItem.call(this, level, input, [at, ...extraInput])
  }
  const createChild = logger.createChild
  logger.createChild = function (this: unknown, ...args) {
    const child = createChild.apply(this, args) as HookedLogger
    if (typeof child?.createAndPopulateLogItem === 'function') withRecordKeys(child)
    return child
  }
}
