/**
 * A user tells failures apart with `instanceof` on the classes of the package that made them,
 * without depending on `@shardwise/core`, which is internal: in `onPoison`, or when a
 * middleware's options are refused.
 */

import middy from '@middy/core'
import * as avroParse from '@shardwise/avro-parse'
import * as core from '@shardwise/core'
import * as jsonParse from '@shardwise/json-parse'
import * as kinesisDecode from '@shardwise/kinesis-decode'
import * as partialFailures from '@shardwise/partial-failures'
import { kinesisEvent, lambdaContext } from '@shardwise/testing'
import { describe, expect, it } from 'vitest'

describe('each package exports the errors it produces', () => {
  it.each([
    ['kinesis-decode', kinesisDecode, ['ConfigurationError', 'DecodeError']],
    ['json-parse', jsonParse, ['ConfigurationError', 'ParseError', 'ValidationError']],
    ['avro-parse', avroParse, ['ConfigurationError', 'ParseError']],
    [
      'partial-failures',
      partialFailures,
      [
        'ConfigurationError',
        'DecodeError',
        'NonRetryableError',
        'ParseError',
        'RecordError',
        'RecordHandlerError',
        'ValidationError',
      ],
    ],
  ] as const)('%s: the same classes as core', (_name, module, names) => {
    for (const name of names) {
      expect((module as Record<string, unknown>)[name], name).toBe(
        (core as Record<string, unknown>)[name],
      )
    }
  })

  it('onPoison tells a record that is not base64, not JSON or not valid apart by class', async () => {
    const seen: string[] = []
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (value: unknown) =>
          typeof value === 'object' && value !== null && 'id' in value
            ? { value }
            : { issues: [{ message: 'needs an id', path: ['id'] }] },
      },
    }
    const onPoison = async (_record: unknown, error: core.RecordError) => {
      if (error instanceof kinesisDecode.DecodeError) seen.push('decode')
      else if (error instanceof jsonParse.ValidationError) seen.push('validation')
      else if (error instanceof jsonParse.ParseError) seen.push('parse')
      else seen.push(`other: ${error.name}`)
    }
    const handler = middy(partialFailures.eachRecord(async () => {}))
      .use(kinesisDecode.kinesisDecode())
      .use(jsonParse.jsonParse({ schema }))
      .use(partialFailures.partialFailures({ logger: false, onPoison }))
    const event = kinesisEvent([
      { data: { base64: '!!!!' } },
      { data: '{"id": ' },
      { data: '{"name":"x"}' },
      { data: '{"id":1}' },
    ])
    expect(await handler(event, lambdaContext())).toEqual({ batchItemFailures: [] })
    expect(seen).toEqual(['decode', 'parse', 'validation'])
  })

  it('a refused option is a ConfigurationError of the package that refused it', () => {
    expect(() => kinesisDecode.kinesisDecode({ decompress: 'lz4' as never })).toThrow(
      kinesisDecode.ConfigurationError,
    )
    expect(() => jsonParse.jsonParse({ validationConcurrency: 0 })).toThrow(
      jsonParse.ConfigurationError,
    )
  })
})
