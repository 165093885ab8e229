import { z } from 'zod'
import { currencies } from './schemas.js'

export const orderZod = z.object({
  id: z.string(),
  customer: z.string(),
  amount: z.number(),
  currency: z.enum(currencies),
  items: z.number().int().positive(),
  createdAt: z.string(),
  express: z.boolean(),
})

export function zodOrder(value: unknown): unknown {
  const result = orderZod.safeParse(value)
  if (!result.success) throw result.error
  return result.data
}
