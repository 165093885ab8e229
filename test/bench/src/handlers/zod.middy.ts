import { middyNormalizer } from '../peers/middy.js'
import { zodOrder } from '../schema-zod.js'
import type { Sink } from '../types.js'

export const label = 'middy 6 event-normalizer + zod + Promise.allSettled'
export const make = (sink: Sink) => middyNormalizer(zodOrder, sink)
