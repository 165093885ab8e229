/** The progress line and the summary a run prints, shared by `shardwise run` and `shardwise demo`. */
import type { MappingStats, ShardLag } from './mapping.js'

/** The counters on one line, then one line per shard with its checkpoint and lag. */
export function progressLine(s: MappingStats): string {
  const shards = s.shardLag.map((l) => `\n  ${l.shardId}  ${lagText(l)}`).join('')
  return (
    `[${(s.elapsedMs / 1000).toFixed(1)}s] read ${s.recordsRead}, done ${s.recordsSucceeded}, ` +
    `invocations ${s.invocations}, retries ${s.retries}, bisects ${s.bisects}, ` +
    `to destination ${s.recordsToDestination}, ${Math.round(s.recordsPerSecond)} records/s${shards}`
  )
}

/** Where a shard stands: its checkpoint, how far its reading is behind, how old its backlog. */
function lagText(l: ShardLag): string {
  const checkpoint = l.checkpoint === undefined ? 'no checkpoint yet' : `checkpoint ${l.checkpoint}`
  const behind =
    l.millisBehindLatest === undefined ? 'not read yet' : `${l.millisBehindLatest} ms behind latest`
  const age =
    l.iteratorAgeMs === undefined
      ? 'no record waiting'
      : `oldest record not done ${(l.iteratorAgeMs / 1000).toFixed(1)} s old`
  return `${checkpoint}, ${behind}, ${age}`
}

export function summary(s: MappingStats): string {
  const rows: Array<[string, string]> = [
    ['shards', String(s.shards)],
    ['records read', String(s.recordsRead)],
    ['records filtered out', String(s.recordsFilteredOut)],
    ['records succeeded', String(s.recordsSucceeded)],
    ['records dropped, failures ignored', String(s.recordsDroppedUnreported)],
    ['invocations', String(s.invocations)],
    ['retries', String(s.retries)],
    ['waited before retries', `${(s.retryWaitMs / 1000).toFixed(1)} s`],
    ['bisects', String(s.bisects)],
    [
      'records to on-failure destination',
      `${s.recordsToDestination} (${s.destinationMessages} batch(es))`,
    ],
    ['invocations abandoned at stop', String(s.invocationsAbandoned)],
    ['elapsed', `${(s.elapsedMs / 1000).toFixed(1)} s`],
    ['records per second', String(Math.round(s.recordsPerSecond))],
  ]
  const shards = s.shardLag.map((l) => [l.shardId, lagText(l)] as const)
  return table('Summary', rows) + (shards.length > 0 ? table('Shards', shards) : '')
}

/** A title, then one indented row per line with the values aligned. */
export function table(title: string, rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length))
  return `${title}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`
}
