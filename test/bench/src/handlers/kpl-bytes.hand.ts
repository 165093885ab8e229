import { deaggregatedBytes } from '../kpl.js'
import { handLoopMany } from '../peers/hand.js'
import type { Sink } from '../types.js'

export const label = 'aws-kinesis-agg deaggregateSync (checksums on) loop, bytes only'
export const make = (sink: Sink) => handLoopMany(deaggregatedBytes, sink)
