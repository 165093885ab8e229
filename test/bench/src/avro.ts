/** The raw avsc reading every Avro path shares. */
import avro from 'avsc'
import { orderAvroSchema, orderSchemaId } from './schemas.js'

export const orderType = avro.Type.forSchema(orderAvroSchema as avro.Schema)

/** The writer schemas a Confluent registry would return, already fetched and cached. */
const byId = new Map<number, avro.Type>([[orderSchemaId, orderType]])

export const avroOf = (bytes: Uint8Array): unknown =>
  orderType.fromBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))

/** Confluent wire format: byte 0 is 0, bytes 1-4 the schema id (big-endian), then the datum. */
export function confluentOf(bytes: Uint8Array): unknown {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length < 5 || buffer[0] !== 0) throw new Error('not Confluent-framed')
  const type = byId.get(buffer.readUInt32BE(1))
  if (type === undefined) throw new Error(`unknown schema id ${buffer.readUInt32BE(1)}`)
  return type.fromBuffer(buffer.subarray(5))
}

export const avroOfBase64 = (data: string): unknown => avroOf(Buffer.from(data, 'base64'))
export const confluentOfBase64 = (data: string): unknown => confluentOf(Buffer.from(data, 'base64'))
