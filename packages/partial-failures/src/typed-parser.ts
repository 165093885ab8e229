/**
 * `eachRecord(parse, handler)`: the record handler typed by the parser it is given, and that
 * parser checked to have run on each batch before any record reaches the handler. Without the
 * check, a chain that lost its `.use(parse)` hands every record on as bytes, the handler fails
 * each one as retryable, and the shard stalls with nothing to say why.
 */
import {
  isRecordParser,
  misconfigured,
  PARSER,
  type RecordBatch,
  type RecordParser,
  wasParsedBy,
} from '@shardwise/core'

export const pkg = '@shardwise/partial-failures'

export interface HandlerArguments<Handler, Options> {
  parser: RecordParser<unknown> | undefined
  handler: Handler
  options: Options | undefined
}

/**
 * Reads `(handler, options?)` or `(parser, handler, options?)`; `handlerName` is what the
 * handler is called in errors (`record handler`, `reduce function`).
 */
export function handlerArguments<Handler, Options>(
  name: string,
  args: ReadonlyArray<unknown>,
  handlerName = 'record handler',
): HandlerArguments<Handler, Options> {
  const [first, second, third] = args
  if (typeof first === 'function') {
    return { parser: undefined, handler: first as Handler, options: second as Options | undefined }
  }
  if (isRecordParser(first)) {
    if (typeof second !== 'function') {
      throw misconfigured(
        pkg,
        `${name}(parse, ...) needs a ${handlerName} function after the parser`,
      )
    }
    return { parser: first, handler: second as Handler, options: third as Options | undefined }
  }
  throw misconfigured(
    pkg,
    `${name} needs a ${handlerName} function, or a parser (jsonParse(), avroParse()) and a ${handlerName}`,
  )
}

/**
 * Throws when `parser` did not run on `batch`. The invocation fails before any record is handled:
 * Lambda retries the whole batch, nothing is handled as what it is not or lost, and the
 * function's errors show it, where failing each record would hold the shard without a word.
 */
export function requireParsed(
  name: string,
  batch: RecordBatch,
  parser: RecordParser<unknown>,
): void {
  if (wasParsedBy(batch, parser)) return
  throw misconfigured(
    pkg,
    `${name}(parse, ...) was given ${parser[PARSER]}, which did not run on this batch (record.data is not what the handler is typed for): add .use(parse), that same instance, after .use(kinesisDecode()). No record was handled; Lambda retries the whole batch`,
  )
}
