/**
 * Event filtering as Lambda applies an event source mapping's `FilterCriteria` to Kinesis records
 * (AWS docs, "invocation-eventfiltering" and "with-kinesis-filtering"; the rule language is
 * EventBridge's, "eb-create-pattern-operators"). A record that matches no filter is never
 * invoked: the mapping moves past it.
 *
 * A pattern is matched against the record's metadata (the fields of `kinesis` and of the record
 * around it: `partitionKey`, `sequenceNumber`, `approximateArrivalTimestamp`, `eventSource`, ...)
 * with `data` in place of the base64 text: the payload parsed as JSON. A pattern on `data` never
 * matches a record whose payload is not JSON (a KPL aggregate, gzip, plain text); a pattern
 * without `data` filters such a record on its metadata alone.
 */
import type { KinesisStreamRecord } from '@shardwise/core'
import { ConfigurationError } from '@shardwise/core'

/** What `aws lambda create-event-source-mapping --filter-criteria` takes. */
export interface FilterCriteria {
  Filters?: ReadonlyArray<{ Pattern?: string }>
}

/** Checked criteria, ready to match records: made by `parseFilterCriteria`. */
export interface ParsedFilterCriteria {
  readonly filters: ReadonlyArray<ParsedPattern>
}

export interface ParseFilterOptions {
  /** Lambda's quota of filters per event source mapping: 5 by default, up to 10 on request. */
  maxFilters?: number
}

/** Lambda's default quota of filters per event source mapping. */
export const MAX_FILTERS = 5
/** The longest `Pattern` Lambda takes (API `Filter`, "Length Constraints: Maximum length of 4096"). */
export const MAX_PATTERN_LENGTH = 4096
/** EventBridge's numeric matching covers -5.0e9 to 5.0e9. */
const NUMERIC_BOUND = 5e9

/** A JSON number with its text: Lambda compares numbers as written ("300" is not "300.0"). */
class JsonNumber {
  constructor(
    readonly value: number,
    readonly text: string,
  ) {}
}

type Json = string | boolean | null | JsonNumber | Json[] | { [key: string]: Json }

/** A rule on one value of a field. */
type ValueMatcher =
  | { kind: 'equals'; value: string | boolean | null }
  | { kind: 'number'; text: string }
  | { kind: 'prefix' | 'suffix' | 'equals-ignore-case'; value: string; ignoreCase: boolean }
  | { kind: 'wildcard'; regex: RegExp }
  | { kind: 'numeric'; test: (n: number) => boolean }
  | { kind: 'anything-but'; not: ValueMatcher[] }

/** `exists` is a rule on the field as a whole: whether it has a value at all. */
type Matcher = ValueMatcher | { kind: 'exists'; exists: boolean }

/** Every field rule must hold (and), and each `$or` one of its alternatives. */
interface ParsedPattern {
  readonly fields: ReadonlyArray<{ path: string[]; matchers: Matcher[] }>
  readonly ors: ReadonlyArray<ReadonlyArray<ParsedPattern>>
  /** Whether any rule looks into `data`: such a pattern never matches a non-JSON payload. */
  readonly usesData: boolean
}

const BRAND: unique symbol = Symbol('ParsedFilterCriteria')

/** A `ConfigurationError` whose message says which filter and which field is wrong, and why. */
function invalid(where: string, reason: string): ConfigurationError {
  return new ConfigurationError(`FilterCriteria: ${where}: ${reason}`)
}

/**
 * Checks filter criteria as Lambda does when the mapping is created, and readies them for
 * matching. Takes the object or its JSON text (what `--filter-criteria` takes). `{}` and
 * `{"Filters": []}` filter nothing. Throws a `ConfigurationError` naming the filter, the field
 * and the reason for a pattern Lambda would refuse.
 */
export function parseFilterCriteria(
  input: FilterCriteria | string,
  options: ParseFilterOptions = {},
): ParsedFilterCriteria {
  const maxFilters = options.maxFilters ?? MAX_FILTERS
  let criteria: unknown = input
  if (typeof input === 'string') {
    try {
      criteria = JSON.parse(input)
    } catch (error) {
      throw invalid('the criteria', `not JSON (${(error as Error).message})`)
    }
  }
  if (!isObject(criteria)) {
    throw invalid('the criteria', 'must be an object like {"Filters":[{"Pattern":"{...}"}]}')
  }
  for (const key of Object.keys(criteria)) {
    if (key !== 'Filters') throw invalid('the criteria', `unknown key ${key} (only Filters)`)
  }
  const list = criteria.Filters ?? []
  if (!Array.isArray(list)) throw invalid('Filters', 'must be an array')
  if (list.length > maxFilters) {
    throw invalid(
      'Filters',
      `${list.length} filters, over the quota of ${maxFilters} per event source mapping ` +
        '(5 by default, up to 10 with a quota increase)',
    )
  }
  const filters = list.map((filter: unknown, i) => {
    const where = `Filters[${i}]`
    if (!isObject(filter) || typeof filter.Pattern !== 'string') {
      throw invalid(where, 'must be {"Pattern": "<the pattern as a JSON string>"}')
    }
    const text = filter.Pattern
    if (text.length > MAX_PATTERN_LENGTH) {
      throw invalid(
        `${where}.Pattern`,
        `${text.length} characters, over Lambda's ${MAX_PATTERN_LENGTH}`,
      )
    }
    let pattern: Json
    try {
      pattern = parseJson(text)
    } catch (error) {
      throw invalid(`${where}.Pattern`, `not JSON (${(error as Error).message})`)
    }
    if (!isObject(pattern)) throw invalid(`${where}.Pattern`, 'must be a JSON object')
    return compilePattern(pattern, [], `${where}.Pattern`)
  })
  return Object.assign({ filters }, { [BRAND]: true })
}

/**
 * Whether Lambda would send this record to the function: true when it matches one filter at
 * least (filters are ORed), or when there are none. Takes the record as Lambda delivers it
 * (`event.Records[i]`), and criteria parsed or not (unparsed ones are checked first).
 */
export function matchesFilterCriteria(
  criteria: ParsedFilterCriteria | FilterCriteria | string,
  record: KinesisStreamRecord,
): boolean {
  const parsed = isParsed(criteria) ? criteria : parseFilterCriteria(criteria)
  if (parsed.filters.length === 0) return true
  const document = recordDocument(
    record,
    parsed.filters.some((f) => f.usesData),
  )
  for (const filter of parsed.filters) {
    if (filter.usesData && document.data === undefined) continue
    if (matchesPattern(filter, document as { [key: string]: Json })) return true
  }
  return false
}

function isParsed(value: unknown): value is ParsedFilterCriteria {
  return isObject(value) && (value as { [BRAND]?: boolean })[BRAND] === true
}

/** The record as patterns see it: metadata at the top, `data` parsed when it is JSON. */
function recordDocument(
  record: KinesisStreamRecord,
  withData: boolean,
): { [key: string]: Json | undefined } {
  const document: { [key: string]: Json | undefined } = {}
  const { kinesis, ...around } = record
  for (const [key, value] of Object.entries({ ...around, ...kinesis })) {
    if (key !== 'data') document[key] = toJson(value)
  }
  document.data = withData ? dataAsJson(kinesis.data) : undefined
  return document
}

function toJson(value: unknown): Json {
  if (typeof value === 'number') return new JsonNumber(value, JSON.stringify(value))
  if (Array.isArray(value)) return value.map(toJson)
  if (isObject(value)) {
    const out: { [key: string]: Json } = {}
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v)
    return out
  }
  return value as Json
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The payload as JSON, or undefined when it is not UTF-8 JSON (Lambda then drops the record). */
function dataAsJson(base64: string): Json | undefined {
  try {
    return parseJson(utf8.decode(Buffer.from(base64, 'base64')))
  } catch {
    return undefined
  }
}

/** `JSON.parse` keeping each number's text (Node 22's reviver context). */
function parseJson(text: string): Json {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' ? new JsonNumber(value, context?.source ?? String(value)) : value,
  ) as Json
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof JsonNumber)
  )
}

// --- compiling a pattern -------------------------------------------------------------------

function compilePattern(
  pattern: { [key: string]: Json },
  base: string[],
  where: string,
): ParsedPattern {
  const fields: Array<{ path: string[]; matchers: Matcher[] }> = []
  const ors: Array<ReadonlyArray<ParsedPattern>> = []
  let usesData = false
  const keys = Object.keys(pattern)
  if (keys.length === 0) throw invalid(where, 'an empty object matches nothing: name a field')
  for (const key of keys) {
    const value = pattern[key] as Json
    const path = [...base, key]
    const at = `${where} ${path.join('.')}`
    if (key === '$or') {
      if (!Array.isArray(value) || value.length < 2 || !value.every(isObject)) {
        throw invalid(at, '$or takes an array of two patterns or more')
      }
      const alternatives = value.map((v, i) =>
        compilePattern(v as { [key: string]: Json }, base, `${where} $or[${i}]`),
      )
      if (alternatives.some((a) => a.usesData)) usesData = true
      ors.push(alternatives)
      continue
    }
    if (base.length === 0 && key === 'data' && !isObject(value)) {
      // "Lambda throws an exception at the time of the event source mapping creation".
      throw invalid(at, 'a pattern on data must be a JSON object of fields, as the payload is JSON')
    }
    if (isObject(value)) {
      const nested = compilePattern(value as { [key: string]: Json }, path, where)
      fields.push(...nested.fields)
      ors.push(...nested.ors)
      if (path[0] === 'data') usesData = true
      continue
    }
    if (!Array.isArray(value)) {
      throw invalid(at, 'must be an array of values or matchers, e.g. ["a", {"prefix": "b"}]')
    }
    // Lambda refuses it: "Invalid filter pattern definition" (aws-cdk#31458, #31701).
    if (value.length === 0) throw invalid(at, 'an empty array matches nothing')
    fields.push({ path, matchers: value.map((m) => compileMatcher(m, at)) })
    if (path[0] === 'data') usesData = true
  }
  return { fields, ors, usesData }
}

const OPERATORS = [
  'prefix',
  'suffix',
  'equals-ignore-case',
  'wildcard',
  'anything-but',
  'numeric',
  'exists',
]

function compileMatcher(rule: Json, at: string): Matcher {
  if (rule === null || typeof rule === 'string' || typeof rule === 'boolean') {
    return { kind: 'equals', value: rule }
  }
  if (rule instanceof JsonNumber) return { kind: 'number', text: rule.text }
  if (Array.isArray(rule)) throw invalid(at, 'a value in the array cannot be an array')
  const keys = Object.keys(rule)
  if (keys.length !== 1) {
    throw invalid(
      at,
      `a matcher has one operator, got ${keys.length === 0 ? 'none' : keys.join(', ')}`,
    )
  }
  const op = keys[0] as string
  const arg = rule[op] as Json
  switch (op) {
    case 'prefix':
    case 'suffix':
      return affix(op, arg, at)
    case 'equals-ignore-case':
      return { kind: op, value: text(arg, at, op), ignoreCase: true }
    case 'wildcard':
      return { kind: 'wildcard', regex: wildcard(text(arg, at, op), at) }
    case 'exists':
      if (typeof arg !== 'boolean') throw invalid(at, 'exists takes true or false')
      return { kind: 'exists', exists: arg }
    case 'numeric':
      return { kind: 'numeric', test: numeric(arg, at) }
    case 'anything-but':
      return { kind: 'anything-but', not: anythingBut(arg, at) }
    default:
      throw invalid(at, `unknown operator ${op} (Lambda knows ${OPERATORS.join(', ')})`)
  }
}

function text(arg: Json, at: string, op: string): string {
  if (typeof arg !== 'string') throw invalid(at, `${op} takes a string`)
  return arg
}

/** `{"prefix": "us-"}` or `{"prefix": {"equals-ignore-case": "US-"}}`, and the same for suffix. */
function affix(op: 'prefix' | 'suffix', arg: Json, at: string): Matcher {
  if (typeof arg === 'string') return { kind: op, value: arg, ignoreCase: false }
  if (isObject(arg)) {
    const keys = Object.keys(arg)
    const inner = arg['equals-ignore-case']
    if (keys.length === 1 && typeof inner === 'string') {
      return { kind: op, value: inner, ignoreCase: true }
    }
  }
  throw invalid(at, `${op} takes a string, or {"equals-ignore-case": "<string>"}`)
}

/** `*` stands for any characters, `\*` for a star, `\\` for a backslash; `**` is refused. */
function wildcard(pattern: string, at: string): RegExp {
  let source = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '\\') {
      const next = pattern[i + 1]
      if (next !== '*' && next !== '\\') {
        throw invalid(at, `wildcard: a backslash escapes only * or \\ (at ${i})`)
      }
      source += `\\${next}`
      i++
    } else if (c === '*') {
      if (pattern[i + 1] === '*') {
        throw invalid(at, `wildcard: consecutive wildcard characters (at ${i})`)
      }
      source += '[\\s\\S]*'
    } else {
      source += c.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')
    }
  }
  return new RegExp(`^${source}$`)
}

/** `["=", 5]`, `[">", 0]`, `[">", 0, "<=", 5]`: a bounded comparison or range. */
function numeric(arg: Json, at: string): (n: number) => boolean {
  const usage = 'numeric takes ["<op>", <number>] or [">"|">=", <number>, "<"|"<=", <number>]'
  if (!Array.isArray(arg) || (arg.length !== 2 && arg.length !== 4)) throw invalid(at, usage)
  const tests: Array<(n: number) => boolean> = []
  const bounds: number[] = []
  for (let i = 0; i < arg.length; i += 2) {
    const op = arg[i]
    const bound = arg[i + 1]
    if (!(bound instanceof JsonNumber))
      throw invalid(at, `${usage}: ${JSON.stringify(bound)} is no number`)
    const v = bound.value
    if (v < -NUMERIC_BOUND || v > NUMERIC_BOUND) {
      throw invalid(at, `numeric: ${bound.text} is outside -5e9 to 5e9, the range Lambda compares`)
    }
    bounds.push(v)
    if (op === '=' && arg.length === 2) tests.push((n) => n === v)
    else if (op === '<') tests.push((n) => n < v)
    else if (op === '<=') tests.push((n) => n <= v)
    else if (op === '>') tests.push((n) => n > v)
    else if (op === '>=') tests.push((n) => n >= v)
    else throw invalid(at, `${usage}: unexpected operator ${JSON.stringify(op)}`)
  }
  if (arg.length === 4) {
    const [low, high] = [arg[0], arg[2]]
    if ((low !== '>' && low !== '>=') || (high !== '<' && high !== '<=')) {
      throw invalid(at, `${usage}: a range is a lower bound then an upper bound`)
    }
    if ((bounds[0] as number) >= (bounds[1] as number)) {
      throw invalid(at, 'numeric: the lower bound must be below the upper bound')
    }
  }
  return (n) => tests.every((t) => t(n))
}

/**
 * `"x"`, `5`, `["x", "y"]`, `[1, 2]`, `{"prefix": "x"}`, `{"suffix": "x"}`,
 * `{"equals-ignore-case": "x" | [...]}`, `{"wildcard": "x*" | [...]}`.
 */
function anythingBut(arg: Json, at: string): ValueMatcher[] {
  const literal = (v: Json): ValueMatcher => {
    if (typeof v === 'string') return { kind: 'equals', value: v }
    if (v instanceof JsonNumber) return { kind: 'number', text: v.text }
    throw invalid(at, 'anything-but takes strings or numbers')
  }
  if (Array.isArray(arg)) {
    if (arg.length === 0) throw invalid(at, 'anything-but: an empty array excludes nothing')
    return arg.map(literal)
  }
  if (!isObject(arg)) return [literal(arg)]
  const keys = Object.keys(arg)
  const op = keys[0]
  const inner = arg[op as string] as Json
  const each = (make: (s: string) => ValueMatcher): ValueMatcher[] => {
    const list = Array.isArray(inner) ? inner : [inner]
    if (list.length === 0 || !list.every((s) => typeof s === 'string')) {
      throw invalid(at, `anything-but: ${op} takes a string or an array of strings`)
    }
    return (list as string[]).map(make)
  }
  if (keys.length === 1 && (op === 'prefix' || op === 'suffix') && typeof inner === 'string') {
    return [{ kind: op, value: inner, ignoreCase: false }]
  }
  if (keys.length === 1 && op === 'equals-ignore-case') {
    return each((s) => ({ kind: 'equals-ignore-case', value: s, ignoreCase: true }))
  }
  if (keys.length === 1 && op === 'wildcard') {
    return each((s) => ({ kind: 'wildcard', regex: wildcard(s, at) }))
  }
  throw invalid(
    at,
    'anything-but takes a value, an array of values, or one of {"prefix"}, {"suffix"}, ' +
      '{"equals-ignore-case"}, {"wildcard"}',
  )
}

// --- matching -------------------------------------------------------------------------------

function matchesPattern(pattern: ParsedPattern, document: { [key: string]: Json }): boolean {
  for (const { path, matchers } of pattern.fields) {
    if (!matchesField(valuesAt(document, path), matchers)) return false
  }
  for (const alternatives of pattern.ors) {
    if (!alternatives.some((a) => matchesPattern(a, document))) return false
  }
  return true
}

/** The leaf values at a path; arrays on the way (and at the end) are flattened, as EventBridge does. */
function valuesAt(document: Json, path: string[]): Json[] {
  let current: Json[] = [document]
  for (const key of path) {
    const next: Json[] = []
    for (const value of current) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (isObject(item) && Object.hasOwn(item, key)) next.push(item[key] as Json)
      }
    }
    current = next
  }
  return current.flatMap((v) => (Array.isArray(v) ? v : [v]))
}

function matchesField(values: Json[], matchers: Matcher[]): boolean {
  const leaves = values.filter((v) => !isObject(v))
  for (const matcher of matchers) {
    if (matcher.kind === 'exists') {
      if (matcher.exists === leaves.length > 0) return true
      continue
    }
    for (const value of leaves) if (matchesValue(matcher, value)) return true
  }
  return false
}

function matchesValue(matcher: ValueMatcher, value: Json): boolean {
  switch (matcher.kind) {
    case 'equals':
      return value === matcher.value
    case 'number':
      return value instanceof JsonNumber && value.text === matcher.text
    case 'numeric':
      return value instanceof JsonNumber && matcher.test(value.value)
    case 'anything-but':
      return value !== null && !matcher.not.some((m) => matchesValue(m, value))
    default:
      break
  }
  if (typeof value !== 'string') return false
  if (matcher.kind === 'wildcard') return matcher.regex.test(value)
  const subject = matcher.ignoreCase ? value.toLowerCase() : value
  const wanted = matcher.ignoreCase ? matcher.value.toLowerCase() : matcher.value
  if (matcher.kind === 'prefix') return subject.startsWith(wanted)
  if (matcher.kind === 'suffix') return subject.endsWith(wanted)
  return subject === wanted
}
