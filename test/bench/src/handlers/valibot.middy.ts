import { middyNormalizer } from '../peers/middy.js'
import { valibotOrder } from '../schema-valibot.js'
import type { Sink } from '../types.js'

export const label = 'middy 6 event-normalizer + valibot + Promise.allSettled'
export const make = (sink: Sink) => middyNormalizer(valibotOrder, sink)
