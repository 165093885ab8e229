import { describe, expect, it } from 'vitest'
import { ConfigurationError, checkOptions, type OptionRule, option } from './index.js'

const rules = {
  size: option.integer(1, 10),
  ratio: option.number(0, 1),
  mode: option.oneOf('fast', 'safe', false),
  name: option.string,
  on: option.boolean,
  call: option.function,
  target: option.matching(/^https?:\/\//, 'an http:// or https:// URL'),
  tags: option.arrayOf(option.oneOf('a', 'b')),
  headers: option.recordOf(option.string),
  auth: option.shape({ user: option.string, password: option.string }, ['user']),
  anything: option.any,
}

const check = (options: unknown, required: string[] = []) =>
  checkOptions('@shardwise/x', rules, options as Record<string, unknown>, required as never)

describe('checkOptions', () => {
  it('returns the options that pass, or an empty object', () => {
    const good = {
      size: 10,
      ratio: 0.5,
      mode: false,
      name: 'n',
      on: true,
      call: () => {},
      target: 'https://registry:8081',
      tags: ['a', 'b'],
      headers: { authorization: 'x' },
      auth: { user: 'u' },
      anything: null,
    }
    expect(check(good)).toEqual(good)
    expect(check(undefined)).toEqual({})
    expect(check({ size: undefined })).toEqual({ size: undefined })
  })

  it.each([
    [{ size: 0 }, "Option 'size' must be >= 1"],
    [{ size: 11 }, "Option 'size' must be <= 10"],
    [{ size: 1.5 }, "Option 'size' must be integer"],
    [{ size: '2' }, "Option 'size' must be integer"],
    [{ ratio: Number.NaN }, "Option 'ratio' must be number"],
    [{ ratio: 2 }, "Option 'ratio' must be <= 1"],
    [{ mode: 'slow' }, 'Option \'mode\' must be one of "fast", "safe", false'],
    [{ mode: 'false' }, 'Option \'mode\' must be one of "fast", "safe", false'],
    [{ name: 1 }, "Option 'name' must be string"],
    [{ on: 'yes' }, "Option 'on' must be boolean"],
    [{ call: {} }, "Option 'call' must be a function"],
    [{ target: 'registry:8081' }, "Option 'target' must be an http:// or https:// URL"],
    [{ tags: 'a' }, "Option 'tags' must be an array"],
    [{ tags: ['a', 'c'] }, 'Option \'tags[1]\' must be one of "a", "b"'],
    [{ headers: { a: 1 } }, "Option 'headers.a' must be string"],
    [{ headers: [] }, "Option 'headers' must be an object"],
    [{ auth: { password: 'p' } }, "Missing required option 'auth.user'"],
    [{ auth: { user: 'u', pass: 'p' } }, "Unknown option 'auth.pass'"],
    [{ sise: 1 }, "Unknown option 'sise'"],
  ])('refuses %j with a ConfigurationError that names the package', (options, message) => {
    expect(() => check(options)).toThrow(ConfigurationError)
    expect(() => check(options)).toThrow(`@shardwise/x: ${message}`)
  })

  it('checks an option the object inherits, as the middleware will read it', () => {
    expect(() => check(Object.create({ size: 0 }))).toThrow(
      "@shardwise/x: Option 'size' must be >= 1",
    )
  })

  it('names an unknown option before anything else', () => {
    expect(() => check({ size: 0, sise: 1 }, ['name'])).toThrow("Unknown option 'sise'")
  })

  it('names a missing required option', () => {
    expect(() => check({}, ['name'])).toThrow("@shardwise/x: Missing required option 'name'")
  })

  it('says so when the options are not an object at all', () => {
    expect(() => check('fast')).toThrow('@shardwise/x: options must be an object, got a string')
    expect(() => check(null)).toThrow(/got null$/)
    expect(() => check([])).toThrow(/got an array$/)
  })

  it('answers a copy whose every option was read once, so a getter cannot change it after the check', () => {
    let reads = 0
    const shifty = {
      get size() {
        reads++
        return reads === 1 ? 5 : 0
      },
    }
    const checked = check(shifty)
    expect(checked).toEqual({ size: 5 })
    expect(checked.size).toBe(5)
    expect(reads).toBe(1)
  })

  it.each([
    [
      'a getter that throws',
      {
        get size(): number {
          throw new Error('no size today')
        },
      },
      'no size today',
    ],
    [
      'a nested getter that throws',
      {
        auth: {
          get user(): string {
            throw new Error('no user')
          },
        },
      },
      'no user',
    ],
    [
      'a Proxy whose traps throw',
      new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('trap')
          },
        },
      ),
      'trap',
    ],
    [
      'a revoked Proxy',
      (() => {
        const { proxy, revoke } = Proxy.revocable({}, {})
        revoke()
        return proxy
      })(),
      'revoked',
    ],
  ])(
    'refuses options it cannot read (%s) with a ConfigurationError that names the package',
    (_, options, cause) => {
      let thrown: unknown
      try {
        check(options)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(ConfigurationError)
      expect((thrown as Error).message).toMatch(/^@shardwise\/x: the options cannot be read: /)
      expect((thrown as Error).message).toContain(cause)
      expect((thrown as Error).cause).toBeInstanceOf(Error)
    },
  )

  it('takes a rule of the caller’s own', () => {
    const even: OptionRule = (value, name) =>
      value === 0 || value === 2 ? undefined : `Option '${name}' must be 0 or 2`
    expect(() => checkOptions('@shardwise/x', { n: even }, { n: 1 })).toThrow(
      "@shardwise/x: Option 'n' must be 0 or 2",
    )
    expect(checkOptions('@shardwise/x', { n: even }, { n: 2 })).toEqual({ n: 2 })
    const one = option.that((value) => value === 1, 'one')
    expect(() => checkOptions('@shardwise/x', { n: one }, { n: 2 })).toThrow("'n' must be one")
  })
})
