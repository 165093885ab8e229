import * as v from 'valibot'
import { currencies } from './schemas.js'

export const orderValibot = v.object({
  id: v.string(),
  customer: v.string(),
  amount: v.number(),
  currency: v.picklist(currencies),
  items: v.pipe(v.number(), v.integer(), v.minValue(1)),
  createdAt: v.string(),
  express: v.boolean(),
})

export function valibotOrder(value: unknown): unknown {
  const result = v.safeParse(orderValibot, value)
  if (!result.success) throw new v.ValiError(result.issues)
  return result.output
}
