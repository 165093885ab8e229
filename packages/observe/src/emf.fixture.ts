/**
 * Test helpers: what a Powertools `Metrics` prints, read back and checked against CloudWatch's
 * Embedded Metric Format specification; and KPL aggregates written from the format in DESIGN.md
 * section 3.
 */
import { hash } from 'node:crypto'
import { vi } from 'vitest'

export interface EmfLine {
  _aws: {
    Timestamp: number
    CloudWatchMetrics: Array<{
      Namespace: string
      Dimensions: string[][]
      Metrics: Array<{ Name: string; Unit?: string; StorageResolution?: number }>
    }>
  }
  [key: string]: unknown
}

/** The units CloudWatch accepts (MetricDatum's StandardUnit). */
const UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
])

/**
 * The problems of one EMF document by the specification (CloudWatch User Guide, "Embedded metric
 * format specification"); empty when it conforms.
 */
export function emfProblems(document: unknown): string[] {
  const problems: string[] = []
  const root = document as Record<string, unknown>
  const aws = root?._aws as Record<string, unknown> | undefined
  if (typeof aws !== 'object' || aws === null) return ['no _aws object']
  if (!Number.isInteger(aws.Timestamp) || (aws.Timestamp as number) < 0) {
    problems.push('_aws.Timestamp is not a non-negative integer of epoch milliseconds')
  }
  const directives = aws.CloudWatchMetrics
  if (!Array.isArray(directives) || directives.length === 0) {
    return [...problems, '_aws.CloudWatchMetrics is not a non-empty array']
  }
  for (const directive of directives as Array<Record<string, unknown>>) {
    const namespace = directive.Namespace
    if (typeof namespace !== 'string' || namespace.length < 1 || namespace.length > 255) {
      problems.push('Namespace is not a string of 1 to 255 characters')
    }
    const dimensions = directive.Dimensions
    if (!Array.isArray(dimensions)) problems.push('Dimensions is not an array')
    for (const set of (dimensions ?? []) as unknown[]) {
      if (!Array.isArray(set)) {
        problems.push('a dimension set is not an array')
        continue
      }
      if (set.length > 30) problems.push(`a dimension set has ${set.length} dimensions, over 30`)
      for (const name of set) {
        if (typeof root[name] !== 'string')
          problems.push(`dimension ${name} is not a string member`)
      }
    }
    const metrics = directive.Metrics
    if (!Array.isArray(metrics)) {
      problems.push('Metrics is not an array')
      continue
    }
    if (metrics.length > 100) problems.push(`${metrics.length} metrics, over 100`)
    for (const metric of metrics as Array<Record<string, unknown>>) {
      const name = metric.Name
      if (typeof name !== 'string' || name.length < 1 || name.length > 1024) {
        problems.push('a metric Name is not a string of 1 to 1024 characters')
        continue
      }
      if (metric.Unit !== undefined && !UNITS.has(metric.Unit as string)) {
        problems.push(`metric ${name} has unit ${String(metric.Unit)}`)
      }
      const value = root[name]
      const values = Array.isArray(value) ? value : [value]
      if (values.length === 0 || values.length > 100 || !values.every(Number.isFinite)) {
        problems.push(`metric ${name} has no member of 1 to 100 numbers (${String(value)})`)
      }
    }
  }
  return problems
}

/** Captures what is written to stdout (where a Powertools `Metrics` prints) as JSON lines. */
export function captureStdout() {
  const lines: string[] = []
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    lines.push(...String(chunk).split('\n').filter(Boolean))
    return true
  })
  return {
    lines,
    emf: () => lines.map((line) => JSON.parse(line) as EmfLine).filter((line) => '_aws' in line),
    restore: () => spy.mockRestore(),
  }
}

/** A KPL aggregate of `records`: magic, AggregatedRecord protobuf, MD5 of the protobuf. */
export function kplAggregate(records: ReadonlyArray<{ partitionKey: string; data: Uint8Array }>) {
  const keys = [...new Set(records.map((record) => record.partitionKey))]
  const body: number[] = []
  for (const key of keys) field(body, 1, Buffer.from(key))
  for (const record of records) {
    const inner: number[] = []
    inner.push(1 << 3)
    varint(inner, keys.indexOf(record.partitionKey))
    field(inner, 3, record.data)
    field(body, 3, Uint8Array.from(inner))
  }
  const protobuf = Uint8Array.from(body)
  const md5 = hash('md5', protobuf, 'buffer')
  return Buffer.concat([Buffer.from([0xf3, 0x89, 0x9a, 0xc2]), protobuf, md5])
}

function field(out: number[], number: number, bytes: Uint8Array): void {
  out.push((number << 3) | 2)
  varint(out, bytes.length)
  out.push(...bytes)
}

function varint(out: number[], value: number): void {
  let left = value
  while (left > 0x7f) {
    out.push((left & 0x7f) | 0x80)
    left >>>= 7
  }
  out.push(left)
}
