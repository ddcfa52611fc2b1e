/** Customers of a tenant: created by ingest when first seen, named and linked to Stripe by upsertCustomer. */
import type { Db } from '../db/database.ts'
import type { Customer, Tenant } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import * as repo from './repository.ts'

export interface CustomerInput {
  id: string
  /** Left out: unchanged; null: cleared. */
  name?: string | null
  stripeCustomerId?: string | null
}

export interface CustomerService {
  /** upsertCustomer: creates the customer or changes the fields given. */
  upsert(tenant: Tenant, input: CustomerInput): Promise<Customer>
}

export function createCustomerService({ db }: { db: Db }): CustomerService {
  return {
    async upsert(tenant, input) {
      if (input.id.length === 0 || input.id.length > 255) throw badInput('id must be 1-255 characters', 'input.id')
      if (input.name && input.name.length > 255) throw badInput('name is longer than 255 characters', 'input.name')
      if (input.stripeCustomerId && !/^cus_[A-Za-z0-9]{1,250}$/.test(input.stripeCustomerId)) {
        throw badInput('stripeCustomerId must look like a Stripe customer id (cus_…)', 'input.stripeCustomerId')
      }
      return repo.upsertCustomer(db, tenant.id, input)
    },
  }
}
