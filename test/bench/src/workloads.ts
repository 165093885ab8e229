/**
 * The workloads: one event per workload, the same bytes for every compared path. `format`
 * picks the handlers (`src/handlers/<format>.<path>.ts`) that run it.
 */
import type { KinesisStreamEvent } from 'aws-lambda'
import {
  avroPayloads,
  eventOf,
  gzipPayloads,
  jsonPayloads,
  kplPayloads,
  largeJsonPayloads,
  zstdPayloads,
} from './events.js'

export interface Workload {
  id: string
  title: string
  format: string
  /** User records in `event()`: what "per record" means in the tables. */
  records: number
  event(): KinesisStreamEvent
  /** A few records of the same kind, for the smoke test that every path gives the same output. */
  small(): KinesisStreamEvent
  /** Timed runs at most in a full run (each path also stops after `seconds`). */
  runs: number
  /** Measure peak RSS too. */
  memory?: boolean
}

const MiB = 1024 * 1024

/**
 * The most ~150-byte JSON records whose event, as Lambda sends it, stays under 6 MiB: 8,584
 * records make 6,291,270 bytes of event text, one more makes 6,292,000 (a workload test checks it).
 */
export const SMALL_RECORDS_UNDER_6_MIB = 8_584

export const workloads: Workload[] = [
  {
    id: 'json-100',
    title: '100 records of ~150-byte JSON, no schema',
    format: 'json',
    records: 100,
    event: () => eventOf(jsonPayloads(100)),
    small: () => eventOf(jsonPayloads(20)),
    runs: 3000,
  },
  {
    id: 'json-8584',
    title: `${SMALL_RECORDS_UNDER_6_MIB.toLocaleString('en-US')} records of ~150-byte JSON, no schema: the largest event of such records under 6 MiB (Lambda's limit)`,
    format: 'json',
    records: SMALL_RECORDS_UNDER_6_MIB,
    event: () => eventOf(jsonPayloads(SMALL_RECORDS_UNDER_6_MIB)),
    small: () => eventOf(jsonPayloads(20)),
    runs: 150,
    memory: true,
  },
  {
    id: 'json-6mb',
    title: '6 MB batch: 4 records of 1 MiB JSON (arrays of orders), 5.6 MB of event',
    format: 'json',
    records: 4,
    event: () => eventOf(largeJsonPayloads(4, MiB)),
    small: () => eventOf(largeJsonPayloads(2, 16 * 1024)),
    runs: 100,
    memory: true,
  },
  {
    id: 'json-400x10kb',
    title: '400 records of 10 KiB JSON (arrays of orders), 5.6 MB of event',
    format: 'json',
    records: 400,
    event: () => eventOf(largeJsonPayloads(400, 10 * 1024)),
    small: () => eventOf(largeJsonPayloads(3, 10 * 1024)),
    runs: 150,
    memory: true,
  },
  {
    id: 'json-10k',
    title:
      '10,000 records of ~150-byte JSON, no schema: a stress case, as the event (7.3 MB) is over what Lambda sends (6 MB)',
    format: 'json',
    records: 10_000,
    event: () => eventOf(jsonPayloads(10_000)),
    small: () => eventOf(jsonPayloads(20)),
    runs: 150,
    memory: true,
  },
  {
    id: 'zod-10k',
    title: '10,000 records of ~150-byte JSON, zod schema',
    format: 'zod',
    records: 10_000,
    event: () => eventOf(jsonPayloads(10_000)),
    small: () => eventOf(jsonPayloads(20)),
    runs: 100,
  },
  {
    id: 'valibot-10k',
    title: '10,000 records of ~150-byte JSON, valibot schema',
    format: 'valibot',
    records: 10_000,
    event: () => eventOf(jsonPayloads(10_000)),
    small: () => eventOf(jsonPayloads(20)),
    runs: 100,
  },
  {
    id: 'kpl-100x100',
    title: '100 KPL aggregates of 100 JSON records (10,000 user records)',
    format: 'kpl',
    records: 10_000,
    event: () => eventOf(kplPayloads(100, 100)),
    small: () => eventOf(kplPayloads(3, 5)),
    runs: 100,
  },
  {
    id: 'kpl-bytes-100x100',
    title:
      'The same 100 KPL aggregates, de-aggregation alone: the record handler takes the bytes of each user record',
    format: 'kpl-bytes',
    records: 10_000,
    event: () => eventOf(kplPayloads(100, 100)),
    small: () => eventOf(kplPayloads(3, 5)),
    runs: 100,
  },
  {
    id: 'gzip-1k',
    title: '1,000 gzip records: CloudWatch Logs subscription payloads of 10 log events',
    format: 'gzip',
    records: 1_000,
    event: () => eventOf(gzipPayloads(1_000, 10)),
    small: () => eventOf(gzipPayloads(5, 3)),
    runs: 150,
  },
  {
    id: 'zstd-1k',
    title: '1,000 zstd records: the same CloudWatch Logs bodies compressed with zstd',
    format: 'zstd',
    records: 1_000,
    event: () => eventOf(zstdPayloads(1_000, 10)),
    small: () => eventOf(zstdPayloads(5, 3)),
    runs: 150,
  },
  {
    id: 'avro-10k',
    title: '10,000 Avro records (raw datum, known schema)',
    format: 'avro',
    records: 10_000,
    event: () => eventOf(avroPayloads(10_000, 'raw')),
    small: () => eventOf(avroPayloads(20, 'raw')),
    runs: 150,
  },
  {
    id: 'avro-confluent-10k',
    title: '10,000 Avro records, Confluent-framed (schema id 42, cached)',
    format: 'avro-confluent',
    records: 10_000,
    event: () => eventOf(avroPayloads(10_000, 'confluent')),
    small: () => eventOf(avroPayloads(20, 'confluent')),
    runs: 150,
  },
]
