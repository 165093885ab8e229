import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { avroParse, confluentSchemaRegistry } from '@shardwise/avro-parse'
import { shardwiseParsed } from '../peers/shardwise.js'
import { orderAvroSchema, orderSchemaId } from '../schemas.js'
import type { Sink } from '../types.js'

// A Confluent Schema Registry on 127.0.0.1 that knows the order schema. avroParse fetches it on
// the first record and caches it, as a warm Lambda container has it cached.
const registry = createServer((request, response) => {
  const known = request.url === `/schemas/ids/${orderSchemaId}`
  response.writeHead(known ? 200 : 404, {
    'content-type': 'application/vnd.schemaregistry.v1+json',
  })
  response.end(
    JSON.stringify(
      known
        ? { schema: JSON.stringify(orderAvroSchema) }
        : { error_code: 40403, message: 'Schema not found' },
    ),
  )
})
await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve))
// The server must not keep a process alive that has nothing else to do.
registry.unref()
const url = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`

export const label =
  'Shardwise + avroParse({ registry: confluentSchemaRegistry() }), registry on 127.0.0.1'
export const make = (sink: Sink) =>
  shardwiseParsed(avroParse({ registry: confluentSchemaRegistry({ url }) }), async (record) => {
    sink(record.data)
  })
export const noColdStart =
  'its bundle would carry the stand-in registry server (node:http), which a deployed handler does not'
