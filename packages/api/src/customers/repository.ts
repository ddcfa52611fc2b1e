import { sql } from 'kysely'
import type { Executor } from '../db/database.ts'
import { NOT_EMPTY, onDays, onEdgeHours } from '../db/day-span.ts'
import type { DaySpan } from '../shared/date-range.ts'
import type { Customer } from '../db/types.ts'

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

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c)
}

/**
 * One page of the tenant's customers in id order, after `afterId`, optionally those whose id or name
 * contains `search` (case-insensitive). Walks the primary key (tenant_id, id).
 */
export function searchCustomers(
  db: Executor,
  tenantId: string,
  q: { search: string | null; afterId: string | null; limit: number },
): Promise<Customer[]> {
  let query = db.selectFrom('customers').selectAll().where('tenant_id', '=', tenantId)
  if (q.search) {
    const pattern = `%${likeLiteral(q.search)}%`
    query = query.where((eb) => eb.or([eb('id', 'ilike', pattern), eb('name', 'ilike', pattern)]))
  }
  if (q.afterId !== null) query = query.where('id', '>', q.afterId)
  return query.orderBy('id').limit(q.limit).execute()
}

export interface CustomerTotals {
  customer_id: string
  events: number
  unpriced_events: number
  cost: string
  amount: string
}

/** Sums as either driver returns them (bigint and NUMERIC as strings) to CustomerTotals. */
const toCustomerTotals = (r: {
  customer_id: string
  events: number | string | bigint
  unpriced_events: number | string | bigint
  cost: unknown
  amount: unknown
}): CustomerTotals => ({
  customer_id: r.customer_id,
  events: Number(r.events),
  unpriced_events: Number(r.unpriced_events),
  cost: String(r.cost),
  amount: String(r.amount),
})

/**
 * Usage totals per customer over whole UTC hours [from, to), from usage_rollups (which hold
 * re-pricing corrections too): one indexed range read per customer on the rollup key, no raw events.
 */
export async function rollupTotals(
  db: Executor,
  tenantId: string,
  customerIds: readonly string[],
  from: Date,
  to: Date,
): Promise<CustomerTotals[]> {
  if (customerIds.length === 0) return []
  const rows = await db
    .selectFrom('usage_rollups')
    .select((eb) => [
      'customer_id',
      eb.fn.sum<string>('events').as('events'),
      eb.fn.sum<string>('unpriced_events').as('unpriced_events'),
      eb.fn.sum<string>('cost').as('cost'),
      eb.fn.sum<string>('amount').as('amount'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('customer_id', 'in', [...new Set(customerIds)])
    .where('bucket', '>=', from)
    .where('bucket', '<', to)
    .groupBy('customer_id')
    .execute()
  return rows.map(toCustomerTotals)
}

/**
 * The customers that billed most over a span (ties by id): whole days from usage_day_customers
 * plus the uncompacted usage_day_deltas, edge hours from usage_rollups, in one statement.
 */
export async function topCustomers(
  db: Executor,
  tenantId: string,
  span: DaySpan,
  limit: number,
): Promise<CustomerTotals[]> {
  const { rows } = await sql<{
    customer_id: string
    events: string
    unpriced_events: string
    cost: string
    amount: string
  }>`
    select customer_id, sum(events) as events, sum(unpriced_events) as unpriced_events,
      sum(cost) as cost, sum(amount) as amount
    from (
      select customer_id, events, unpriced_events, cost, amount
      from usage_day_customers where tenant_id = ${tenantId} and ${onDays(span)}
      union all
      select customer_id, events, unpriced_events, cost, amount
      from usage_day_deltas where tenant_id = ${tenantId} and ${onDays(span)}
      union all
      select customer_id, events, unpriced_events, cost, amount
      from usage_rollups where tenant_id = ${tenantId} and ${onEdgeHours(span)}
    ) figures
    group by customer_id
    ${NOT_EMPTY}
    order by sum(amount) desc, customer_id
    limit ${limit}`.execute(db)
  return rows.map(toCustomerTotals)
}
