import middy, { type MiddlewareObj } from '@middy/core'
import {
  ConfigurationError,
  getBatch,
  type KinesisRecord,
  markParsed,
  PARSER,
  type ParsedEvent,
  type RecordParser,
} from '@shardwise/core'
import { kinesisDecode } from '@shardwise/kinesis-decode'
import {
  invoke,
  kinesisEvent,
  recordingLogger,
  sequenceNumber,
  windowEvent,
} from '@shardwise/testing'
import { describe, expect, it } from 'vitest'
import { eachRecord, foldWindow, partialFailures } from './index.js'

/** A parser as jsonParse and avroParse are: it marks the batch, and makes each record's text. */
function textParser(): MiddlewareObj<ParsedEvent<string>> & RecordParser<string> {
  const parser: MiddlewareObj<ParsedEvent<string>> & RecordParser<string> = {
    [PARSER]: 'textParse() of a test',
    before(request) {
      const batch = getBatch(request.event)
      if (batch === undefined) return
      markParsed(batch, parser)
      for (const record of batch.records as KinesisRecord<unknown>[]) {
        record.data = new TextDecoder().decode(record.data as Uint8Array)
      }
    },
  }
  return parser
}

const event = () => kinesisEvent(['a', 'b'])

describe('eachRecord(parse, handler)', () => {
  it('hands each record on as the parser made it, when the parser ran', async () => {
    const parse = textParser()
    const seen: string[] = []
    const handler = middy(eachRecord(parse, (record) => void seen.push(record.data)))
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const { verdict } = await invoke(handler, event())
    expect(seen).toEqual(['a', 'b'])
    expect(verdict).toMatchObject({ outcome: 'success', retried: [] })
  })

  it('fails the invocation with a ConfigurationError naming the parser when it did not run, handling no record', async () => {
    const parse = textParser()
    const seen: unknown[] = []
    const logger = recordingLogger()
    const handler = middy(eachRecord(parse, (record) => void seen.push(record.data)))
      .use(kinesisDecode())
      .use(partialFailures({ logger }))
    const { threw, error, verdict } = await invoke(handler, event())
    expect(threw).toBe(true)
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).message).toMatch(
      /eachRecord\(parse, \.\.\.\) was given textParse\(\) of a test, which did not run on this batch.*add \.use\(parse\), that same instance, after \.use\(kinesisDecode\(\)\)/,
    )
    expect(seen).toEqual([])
    // Lambda retries the whole batch, so nothing is lost, and the function's errors show it.
    expect(verdict).toMatchObject({
      outcome: 'failure',
      done: [],
      retried: [sequenceNumber(0), sequenceNumber(1)],
    })
    expect(logger.lines.map((line) => line.level)).toContain('error')
  })

  it('counts only the instance it was given: another one of the same parser is not it', async () => {
    const handler = middy(eachRecord(textParser(), () => {}))
      .use(kinesisDecode())
      .use(textParser())
      .use(partialFailures({ logger: false }))
    const { error } = await invoke(handler, event())
    expect(error).toBeInstanceOf(ConfigurationError)
  })

  it('refuses, when built, a first argument that is neither a handler nor a parser, or a parser without a handler', () => {
    expect(() => eachRecord({ before() {} } as never, (() => {}) as never)).toThrow(
      /eachRecord needs a record handler function, or a parser \(jsonParse\(\), avroParse\(\)\) and a record handler/,
    )
    expect(() => eachRecord(textParser(), undefined as never)).toThrow(
      /eachRecord\(parse, \.\.\.\) needs a record handler function after the parser/,
    )
  })

  it('refuses, when built, a first argument or options it cannot read, with a ConfigurationError', () => {
    const trapped = new Proxy(
      {},
      {
        get() {
          throw new Error('trap')
        },
      },
    )
    const { proxy: revoked, revoke } = Proxy.revocable({}, {})
    revoke()
    for (const first of [trapped, revoked]) {
      expect(() => eachRecord(first as never, (() => {}) as never)).toThrow(ConfigurationError)
      expect(() => foldWindow(first as never, (() => {}) as never, {} as never)).toThrow(
        /foldWindow needs a reduce function, or a parser/,
      )
    }
    const throwing = {
      get ordering(): 'shard' {
        throw new Error('getter')
      },
    }
    for (const options of [throwing, trapped, revoked]) {
      expect(() => eachRecord(textParser(), () => {}, options as never)).toThrow(
        /^@shardwise\/partial-failures: the options cannot be read: /,
      )
    }
  })
})

describe('foldWindow(parse, reduce, options)', () => {
  const windowed = () => windowEvent(['a', 'b'], {})
  const options = { initialState: () => ({ text: '' }) }

  it('folds each record as the parser made it, when the parser ran', async () => {
    const parse = textParser()
    const handler = middy(
      foldWindow(parse, (state, record) => ({ text: state.text + record.data }), options),
    )
      .use(kinesisDecode())
      .use(parse)
      .use(partialFailures({ logger: false }))
    const { response, verdict } = await invoke(handler, windowed())
    expect(response).toMatchObject({ state: { text: 'ab' } })
    expect(verdict.outcome).toBe('success')
  })

  it('fails the invocation with a ConfigurationError when the parser did not run, folding nothing', async () => {
    const folded: unknown[] = []
    const handler = middy(
      foldWindow(
        textParser(),
        (state, record) => {
          folded.push(record.data)
          return state
        },
        options,
      ),
    )
      .use(kinesisDecode())
      .use(partialFailures({ logger: false }))
    const { error, verdict } = await invoke(handler, windowed())
    expect((error as Error).message).toContain(
      'foldWindow(parse, ...) was given textParse() of a test, which did not run on this batch',
    )
    expect(folded).toEqual([])
    expect(verdict).toMatchObject({ outcome: 'failure', done: [] })
  })

  it('refuses a parser without a reduce function', () => {
    expect(() => foldWindow(textParser(), undefined as never, options)).toThrow(
      /foldWindow\(parse, \.\.\.\) needs a reduce function after the parser/,
    )
  })
})
