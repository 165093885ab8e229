import { parsedOrThrow } from '../decoders.js'
import { middyNormalizer } from '../peers/middy.js'
import type { Sink } from '../types.js'

export const label = 'middy 6 event-normalizer + Promise.allSettled'
export const make = (sink: Sink) => middyNormalizer(parsedOrThrow, sink)
