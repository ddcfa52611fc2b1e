/** SQL behind stripeReconciliation: per customer sums of the ledger, the outbox and the pushes. */
import { sql } from 'kysely'
import type { Executor } from '../../db/database.ts'

export interface Range {
  tenantId: string
  from: Date
  to: Date
}

/** Queued amount per customer, and the part not yet folded into a push, by window in [from, to). */
export function outboxByCustomer(db: Executor, { tenantId, from, to }: Range) {
  return db
    .selectFrom('stripe_outbox')
    .select([
      'customer_id',
      sql<string>`sum(amount)`.as('amount'),
      sql<string>`coalesce(sum(amount) filter (where planned_at is null), 0)`.as('unplanned'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('window_start', '>=', from)
    .where('window_start', '<', to)
    .groupBy('customer_id')
    .execute()
}

/** Billed amount of PRICED events per customer, by event time in [from, to). */
export function ledgerByCustomer(db: Executor, { tenantId, from, to }: Range) {
  return db
    .selectFrom('usage_events')
    .select(['customer_id', sql<string>`sum(amount)`.as('amount')])
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'PRICED')
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .groupBy('customer_id')
    .execute()
}

/** What corrections changed per customer (new minus old), by event time in [from, to). */
export function correctionsByCustomer(db: Executor, { tenantId, from, to }: Range) {
  return db
    .selectFrom('usage_corrections')
    .select(['customer_id', sql<string>`sum(new_amount - old_amount)`.as('amount')])
    .where('tenant_id', '=', tenantId)
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .groupBy('customer_id')
    .execute()
}

/** Billed events (latest amount, corrections included, non-zero) the outbox never got, per customer. */
export async function unqueuedByCustomer(db: Executor, { tenantId, from, to }: Range) {
  const result = await sql<{ customer_id: string; events: string; amount: string }>`
    select customer_id, count(*) as events, sum(latest) as amount from (
      select e.customer_id, e.amount + coalesce((select sum(c.new_amount - c.old_amount) from usage_corrections c
                                                 where c.tenant_id = e.tenant_id and c.event_id = e.id), 0) as latest
      from usage_events e
      where e.tenant_id = ${tenantId} and e.status = 'PRICED' and e.ts >= ${from} and e.ts < ${to}
        and not exists (select 1 from stripe_outbox o where o.tenant_id = e.tenant_id and o.event_id = e.id)
    ) x where latest <> 0
    group by customer_id`.execute(db)
  return result.rows
}

/** Units per customer and push status, by window in [from, to). */
export function pushUnitsByCustomer(db: Executor, { tenantId, from, to }: Range) {
  return db
    .selectFrom('stripe_pushes')
    .select(['customer_id', 'status', sql<string>`sum(value)`.as('units')])
    .where('tenant_id', '=', tenantId)
    .where('window_start', '>=', from)
    .where('window_start', '<', to)
    .groupBy(['customer_id', 'status'])
    .execute()
}

/** The residue carried right now per customer (all windows), and its number of dimensions. */
export function residuesByCustomer(db: Executor, tenantId: string) {
  return db
    .selectFrom('stripe_push_state')
    .select(['customer_id', sql<string>`sum(residue)`.as('residue'), sql<number>`count(*)`.as('dimensions')])
    .where('tenant_id', '=', tenantId)
    .groupBy('customer_id')
    .execute()
}
