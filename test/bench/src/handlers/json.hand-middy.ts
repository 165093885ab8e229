import middy from '@middy/core'
import { jsonOfBase64 } from '../decoders.js'
import { handLoop } from '../peers/hand.js'
import type { BenchHandler, Sink } from '../types.js'

// The floor of every middy chain, Shardwise's included: middy's own cost, with no middleware.
export const label = 'hand-written loop inside middy 7, no middleware'
export const make = (sink: Sink) =>
  middy(handLoop((kinesis) => jsonOfBase64(kinesis.data), sink)) as unknown as BenchHandler
