import DataLoader from 'dataloader'
import { pricesByIds } from './catalog/repository.ts'
import type { CatalogPrice } from './catalog/types.ts'
import { findCustomers } from './customers/repository.ts'
import type { CustomerFigures } from './customers/service.ts'
import type { Customer } from './db/types.ts'
import type { Services } from './services.ts'

/** Per-request batching of row lookups, so a page of N rows costs one query per relation, not N. */
export interface Loaders {
  /** Keyed by `${tenantId}\u0001${customerId}`. */
  customer: DataLoader<string, Customer | null>
  /** Catalog rows, keyed by `${tenantId}\u0001${priceId}`: public rows, and the tenant's own. */
  price: DataLoader<string, CatalogPrice | null>
  /** This UTC month's figures of a customer, keyed by `${tenantId}\u0001${customerId}`: one rollup read per page. */
  customerMonth: DataLoader<string, CustomerFigures>
}

const SEP = '\u0001'

/** Splits `${tenantId}\u0001${id}` keys into one id list per tenant: one query per tenant in the batch. */
function idsByTenant(keys: readonly string[]): Map<string, string[]> {
  const byTenant = new Map<string, string[]>()
  for (const key of keys) {
    const [tenantId = '', id = ''] = key.split(SEP)
    const ids = byTenant.get(tenantId)
    if (ids) ids.push(id)
    else byTenant.set(tenantId, [id])
  }
  return byTenant
}

export function createLoaders(services: Services): Loaders {
  return {
    customer: new DataLoader(async (keys) => {
      const found = new Map<string, Customer>()
      for (const [tenantId, ids] of idsByTenant(keys)) {
        for (const c of await findCustomers(services.db, tenantId, ids)) found.set(`${tenantId}${SEP}${c.id}`, c)
      }
      return keys.map((k) => found.get(k) ?? null)
    }),
    price: new DataLoader(async (keys) => {
      const found = new Map<string, CatalogPrice>()
      for (const [tenantId, ids] of idsByTenant(keys)) {
        for (const price of await pricesByIds(services.db, ids, tenantId))
          if (price) found.set(`${tenantId}${SEP}${price.id}`, price)
      }
      return keys.map((k) => found.get(k) ?? null)
    }),
    customerMonth: new DataLoader(async (keys) => {
      const found = new Map<string, CustomerFigures>()
      for (const [tenantId, ids] of idsByTenant(keys)) {
        for (const f of await services.customers.monthFigures(tenantId, ids))
          found.set(`${tenantId}${SEP}${f.customerId}`, f)
      }
      return keys.map((k) => found.get(k)!)
    }),
  }
}
