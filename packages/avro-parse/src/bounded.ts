/**
 * Bounded reading of Avro arrays and maps.
 *
 * avsc trusts the item counts a datum carries: a corrupt or hostile record of five bytes can
 * claim fifty million array items, and reading it takes seconds and gigabytes, so the function
 * times out and the whole batch fails instead of the record. avsc also reads a map into a plain
 * object with `map[key] = value`, so a key "__proto__" replaces the map's prototype instead of
 * becoming a key.
 *
 * Types compiled with `boundedOptions()` read arrays and maps with a reader that refuses both:
 * a datum may hold at most one item per byte, plus a fixed allowance for items that take no
 * bytes (nulls, empty records), and no map key "__proto__". Resolvers made from such a reader
 * type take the same reader (avsc copies the reader type's `_read` into them).
 *
 * A field the reader schema drops is not read but skipped, by the writer type's own `_skip`,
 * which trusts the counts just the same: ten bytes claiming 1e15 nulls loop for days. So the
 * writer types compiled here skip arrays and maps against the same budget.
 */

import avro from 'avsc'

/** The part of avsc's `Tap` (its read cursor) the readers use. */
interface Tap {
  buf: Buffer
  pos: number
  readLong(): number
  readString(): string
  skipString(): void
}

interface Readable {
  _read(tap: Tap): unknown
}

interface Skippable {
  _skip(tap: Tap): void
}

/** Items that take no bytes a datum may hold in all: a million nulls read in milliseconds. */
const EMPTY_ITEMS_ALLOWED = 1_000_000

// Decoding is synchronous, so one budget at a time is all there is.
let datumLength = 0
let itemsLeft = 0
/** The byte size the last block carried (a block with a negative count has one), else -1. */
let blockBytes = -1

/** Call before decoding each datum. */
export function startDatum(length: number): void {
  datumLength = length
  itemsLeft = length + EMPTY_ITEMS_ALLOWED
}

/**
 * The next block's item count; 0 at the end of the blocks or when the bytes ran out. A block
 * with a negative count carries its size in bytes, which `blockBytes` then holds.
 */
function blockSize(tap: Tap): number {
  let n = tap.readLong()
  let bytes = -1
  if (n < 0) {
    n = -n
    bytes = tap.readLong()
    // avsc would move its cursor back by a negative size, and skip the same block forever.
    if (bytes < 0 && tap.pos <= tap.buf.length) {
      throw new Error(`a block gives its size as ${bytes} bytes`)
    }
  }
  // NaN comes from reading past the end: the caller's offset check reports the truncation.
  if (!(n > 0) || tap.pos > tap.buf.length) return 0
  itemsLeft -= n
  if (itemsLeft < 0) {
    throw new Error(`a block claims ${n} items, more than a datum of ${datumLength} bytes can hold`)
  }
  blockBytes = bytes
  return n
}

function readArray(this: { itemsType: Readable }, tap: Tap): unknown[] {
  const items = this.itemsType
  const array: unknown[] = []
  for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
    for (let k = 0; k < n; k++) array.push(items._read(tap))
  }
  return array
}

function readMap(this: { valuesType: Readable }, tap: Tap): Record<string, unknown> {
  const values = this.valuesType
  const map: Record<string, unknown> = {}
  for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
    for (let k = 0; k < n; k++) {
      const key = tap.readString()
      if (key === '__proto__') {
        throw new Error(
          'it has a map key "__proto__", which a JavaScript object cannot hold as a key',
        )
      }
      map[key] = values._read(tap)
    }
  }
  return map
}

/** A block that gives its size is skipped at once, as Avro intends; its items still count. */
function skipArray(this: { itemsType: Skippable }, tap: Tap): void {
  const items = this.itemsType
  for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
    if (blockBytes >= 0) tap.pos += blockBytes
    else for (let k = 0; k < n; k++) items._skip(tap)
  }
}

function skipMap(this: { valuesType: Skippable }, tap: Tap): void {
  const values = this.valuesType
  for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
    if (blockBytes >= 0) tap.pos += blockBytes
    else
      for (let k = 0; k < n; k++) {
        tap.skipString()
        values._skip(tap)
      }
  }
}

/** avsc's array type, reading and skipping through the bounded loops; nothing else differs. */
class BoundedArrayType extends avro.types.ArrayType {
  _read(tap: Tap): unknown[] {
    return readArray.call(this as unknown as { itemsType: Readable }, tap)
  }
  _skip(tap: Tap): void {
    skipArray.call(this as unknown as { itemsType: Skippable }, tap)
  }
}

/** avsc's map type, reading and skipping through the bounded loops; nothing else differs. */
class BoundedMapType extends avro.types.MapType {
  _read(tap: Tap): Record<string, unknown> {
    return readMap.call(this as unknown as { valuesType: Readable }, tap)
  }
  _skip(tap: Tap): void {
    skipMap.call(this as unknown as { valuesType: Skippable }, tap)
  }
}

type ForSchemaOptions = NonNullable<Parameters<typeof avro.Type.forSchema>[1]>

/**
 * `Type.forSchema` options that build every array and map with the bounded reader (avsc types
 * are frozen, so the reader is chosen when each type is built). A `typeHook` of yours runs first.
 */
export function boundedOptions(
  options: Partial<ForSchemaOptions> | undefined,
): Partial<ForSchemaOptions> {
  const theirs = options?.typeHook
  return {
    ...options,
    typeHook(schema, opts) {
      const own = theirs?.(schema, opts)
      if (own !== undefined) return own
      if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined
      const { type, logicalType } = schema as { type?: unknown; logicalType?: unknown }
      // A logical type of yours builds its underlying type itself.
      if (typeof logicalType === 'string' && opts.logicalTypes?.[logicalType]) return undefined
      if (type === 'array') return new BoundedArrayType(schema as never, opts)
      if (type === 'map') return new BoundedMapType(schema as never, opts)
      return undefined
    },
  }
}
