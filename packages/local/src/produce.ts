/**
 * Writing test workloads to a stream: `PutRecords` in chunks within the API's limits (500
 * records, 5 MiB of data and partition keys), with the records the service throttled sent
 * again, in order, so each partition key keeps its order.
 */

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
