import type { Executor } from '../db/database.ts'
import type { Customer } from '../db/types.ts'

export function findCustomer(db: Executor, tenantId: string, id: string): Promise<Customer | undefined> {
  return db
    .selectFrom('customers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst()
}

export function findCustomers(db: Executor, tenantId: string, ids: readonly string[]): Promise<Customer[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db.selectFrom('customers').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).execute()
}

/** Creates or updates; a field left undefined keeps its stored value, null clears it. */
export function upsertCustomer(
  db: Executor,
  tenantId: string,
  input: { id: string; name?: string | null; stripeCustomerId?: string | null },
): Promise<Customer> {
  const changes = {
    ...(input.name === undefined ? {} : { name: input.name }),
    ...(input.stripeCustomerId === undefined ? {} : { stripe_customer_id: input.stripeCustomerId }),
  }
  return db
    .insertInto('customers')
    .values({
      tenant_id: tenantId,
      id: input.id,
      name: input.name ?? null,
      stripe_customer_id: input.stripeCustomerId ?? null,
    })
    .onConflict((oc) =>
      Object.keys(changes).length
        ? oc.columns(['tenant_id', 'id']).doUpdateSet(changes)
        : oc.columns(['tenant_id', 'id']).doUpdateSet({ id: input.id }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}
