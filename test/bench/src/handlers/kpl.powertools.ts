import { deaggregatedJson } from '../kpl.js'
import { powertoolsBatchMany } from '../peers/powertools.js'
import type { Sink } from '../types.js'

export const label =
  'Powertools batch (processInParallel: false), handler de-aggregates with aws-kinesis-agg'
export const make = (sink: Sink) => powertoolsBatchMany(deaggregatedJson, sink)
