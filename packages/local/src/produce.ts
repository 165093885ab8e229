/**
 * Writing test workloads to a stream: `PutRecords` in chunks within the API's limits (500
 * records, 5 MiB of data and partition keys), with the records the service throttled sent
 * again, in order, so each partition key keeps its order.
 */

import { createHash } from 'node:crypto'
import { type KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis'

export interface ProducedRecord {
  partitionKey: string
  data: Uint8Array
}

export interface ProduceOptions {
  client: KinesisClient
  stream: string
}

const PUT_RECORDS_LIMIT = 500
const PUT_RECORDS_BYTES = 5 * 1024 * 1024

/** The size PutRecords counts for a record: its data and its partition key. */
const sizeOf = (record: ProducedRecord) =>
  record.data.byteLength + Buffer.byteLength(record.partitionKey)

export async function produce(
  options: ProduceOptions,
  records: ReadonlyArray<ProducedRecord>,
): Promise<void> {
  for (let start = 0; start < records.length; ) {
    let end = start
    let bytes = 0
    while (
      end < records.length &&
      end - start < PUT_RECORDS_LIMIT &&
      (end === start || bytes + sizeOf(records[end] as ProducedRecord) <= PUT_RECORDS_BYTES)
    ) {
      bytes += sizeOf(records[end] as ProducedRecord)
      end++
    }
    let chunk = records.slice(start, end)
    start = end
    for (let attempt = 0; chunk.length > 0; attempt++) {
      if (attempt === 10) throw new Error(`PutRecords kept failing for ${chunk.length} record(s)`)
      const out = await options.client.send(
        new PutRecordsCommand({
          StreamName: options.stream,
          Records: chunk.map((r) => ({ PartitionKey: r.partitionKey, Data: r.data })),
        }),
      )
      const results = out.Records ?? []
      // Only the failed ones are sent again; a key's later records wait behind its failed one.
      const firstFailed = results.findIndex((r) => r.ErrorCode !== undefined)
      chunk = firstFailed === -1 ? [] : chunk.slice(firstFailed)
      if (chunk.length > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt))
    }
  }
}

const KPL_MAGIC = Uint8Array.of(0xf3, 0x89, 0x9a, 0xc2)

/**
 * Packs records into one KPL aggregate (amazon-kinesis-producer, `aggregation-format.md`):
 * the magic, the protobuf `AggregatedRecord`, and the MD5 of the protobuf. Put it with the first
 * record's partition key, as the KPL does.
 */
export function aggregate(records: ReadonlyArray<ProducedRecord>): ProducedRecord {
  const keys: string[] = []
  const keyIndex = new Map<string, number>()
  const parts: Uint8Array[] = []
  for (const record of records) {
    let index = keyIndex.get(record.partitionKey)
    if (index === undefined) {
      index = keys.length
      keys.push(record.partitionKey)
      keyIndex.set(record.partitionKey, index)
    }
    // Record { partition_key_index = 1 (varint); data = 3 (bytes) }
    const body = concat([
      tag(1, 0),
      varint(index),
      tag(3, 2),
      varint(record.data.length),
      record.data,
    ])
    parts.push(tag(3, 2), varint(body.length), body)
  }
  const table: Uint8Array[] = []
  for (const key of keys) {
    const bytes = Buffer.from(key, 'utf8')
    table.push(tag(1, 2), varint(bytes.length), bytes)
  }
  const message = concat([...table, ...parts])
  const md5 = createHash('md5').update(message).digest()
  return {
    partitionKey: records[0]?.partitionKey ?? 'aggregate',
    data: concat([KPL_MAGIC, message, md5]),
  }
}

function tag(field: number, wireType: number): Uint8Array {
  return varint((field << 3) | wireType)
}

function varint(value: number): Uint8Array {
  const out: number[] = []
  let v = value
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Uint8Array.from(out)
}

function concat(parts: ReadonlyArray<Uint8Array>): Uint8Array {
  return Buffer.concat(parts)
}
