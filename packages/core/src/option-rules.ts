/**
 * The rules the middlewares' options follow, each an export of its own: core exports them
 * together as `option`, and the middlewares of the core chain import them as a namespace,
 * `import * as option from '@shardwise/core/option-rules'`, so that a bundler keeps only the
 * rules a bundle uses (the object `option` keeps every rule in every bundle).
 */
import { isObject, type OptionRule, type OptionRules, problemOf, unknownOption } from './options.js'

/** A value for which `holds` is true; `what` says what that means, after "must be". */
export const that =
  (holds: (value: unknown) => boolean, what: string): OptionRule =>
  (value, name) =>
    holds(value) ? undefined : `Option '${name}' must be ${what}`

const inRange =
  (integer: boolean, minimum: number, maximum: number): OptionRule =>
  (value, name) => {
    if (integer ? !Number.isInteger(value) : typeof value !== 'number' || Number.isNaN(value))
      return `Option '${name}' must be ${integer ? 'integer' : 'number'}`
    if ((value as number) < minimum) return `Option '${name}' must be >= ${minimum}`
    if ((value as number) > maximum) return `Option '${name}' must be <= ${maximum}`
    return undefined
  }

export const any: OptionRule = () => undefined
export const boolean: OptionRule = (value, name) =>
  typeof value === 'boolean' ? undefined : `Option '${name}' must be boolean`
export const string: OptionRule = (value, name) =>
  typeof value === 'string' ? undefined : `Option '${name}' must be string`
const isFunction: OptionRule = (value, name) =>
  typeof value === 'function' ? undefined : `Option '${name}' must be a function`

export { isFunction as function }
export const object: OptionRule = (value, name) =>
  isObject(value) ? undefined : `Option '${name}' must be an object`
export const integer = (minimum = -Infinity, maximum = Infinity): OptionRule =>
  inRange(true, minimum, maximum)
export const number = (minimum = -Infinity, maximum = Infinity): OptionRule =>
  inRange(false, minimum, maximum)
export const oneOf = (...values: readonly unknown[]): OptionRule =>
  that(
    (value) => values.includes(value),
    `one of ${values.map((value) => JSON.stringify(value)).join(', ')}`,
  )

/** A string that `pattern` matches; `what` says in words what that means. */
export const matching = (pattern: RegExp, what: string): OptionRule =>
  that((value) => typeof value === 'string' && pattern.test(value), what)

/** An array whose every item passes `item`. */
export const arrayOf =
  (item: OptionRule): OptionRule =>
  (value, name) => {
    if (!Array.isArray(value)) return `Option '${name}' must be an array`
    for (let i = 0; i < value.length; i++) {
      const problem = item(value[i], `${name}[${i}]`)
      if (problem !== undefined) return problem
    }
    return undefined
  }

/** An object whose every value passes `each`, under any keys. */
export const recordOf =
  (each: OptionRule): OptionRule =>
  (value, name) => {
    if (!isObject(value)) return `Option '${name}' must be an object`
    for (const key of Object.keys(value)) {
      const problem = each(value[key], `${name}.${key}`)
      if (problem !== undefined) return problem
    }
    return undefined
  }

/** An object with these options, of which `required` must be there, and no others. */
export const shape =
  (rules: OptionRules, required: readonly string[] = []): OptionRule =>
  (value, name) =>
    isObject(value)
      ? (unknownOption(rules, value, `${name}.`) ?? problemOf(rules, required, value, `${name}.`))
      : `Option '${name}' must be an object`
