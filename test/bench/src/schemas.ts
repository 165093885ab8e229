/** The user record of the JSON and Avro workloads, and its Avro schema. */

export const currencies = ['EUR', 'USD', 'GBP', 'JPY', 'CHF'] as const

/** An order event: about 150 bytes as JSON. */
export interface Order {
  id: string
  customer: string
  amount: number
  currency: (typeof currencies)[number]
  items: number
  createdAt: string
  express: boolean
}

export const orderAvroSchema = {
  type: 'record',
  name: 'Order',
  namespace: 'shardwise.bench',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'customer', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'currency', type: { type: 'enum', name: 'Currency', symbols: [...currencies] } },
    { name: 'items', type: 'int' },
    { name: 'createdAt', type: 'string' },
    { name: 'express', type: 'boolean' },
  ],
}

/** The schema id the Confluent-framed workload carries. */
export const orderSchemaId = 42
