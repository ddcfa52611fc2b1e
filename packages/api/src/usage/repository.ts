import { sql, type Insertable } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { UsageEventRow, UsageEventTable } from '../db/types.ts'
import type { LineRollupDelta, RollupDelta } from './rollups.ts'

export async function ensureCustomers(db: Executor, tenantId: string, customerIds: readonly string[]): Promise<void> {
  if (customerIds.length === 0) return
  // Sorted so concurrent batches take row locks in the same order and never deadlock.
  const ids = [...new Set(customerIds)].sort()
  await db
    .insertInto('customers')
    .values(ids.map((id) => ({ tenant_id: tenantId, id, name: null, stripe_customer_id: null })))
    .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
    .execute()
}

/** Inserts events whose id is new for the tenant; returns the ids (and seq) actually inserted. */
export async function insertNewEvents(db: Executor, rows: readonly Insertable<UsageEventTable>[]): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map()
  const sorted = [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const inserted = await db
    .insertInto('usage_events')
    .values(sorted)
    .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
    .returning(['id', 'seq'])
    .execute()
  return new Map(inserted.map((r) => [r.id, Number(r.seq)]))
}

export function findEvents(db: Executor, tenantId: string, ids: readonly string[]): Promise<UsageEventRow[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db.selectFrom('usage_events').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).execute()
}

export async function addToRollups(db: Executor, rows: readonly RollupDelta[]): Promise<void> {
  if (rows.length === 0) return
  await db
    .insertInto('usage_rollups')
    .values([...rows])
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'customer_id', 'bucket', 'provider', 'model', 'feature']).doUpdateSet({
        events: sql`usage_rollups.events + excluded.events`,
        unpriced_events: sql`usage_rollups.unpriced_events + excluded.unpriced_events`,
        input_tokens: sql`usage_rollups.input_tokens + excluded.input_tokens`,
        output_tokens: sql`usage_rollups.output_tokens + excluded.output_tokens`,
        cost: sql`usage_rollups.cost + excluded.cost`,
        amount: sql`usage_rollups.amount + excluded.amount`,
      }),
    )
    .execute()
}

export async function addToLineRollups(db: Executor, rows: readonly LineRollupDelta[]): Promise<void> {
  if (rows.length === 0) return
  await db
    .insertInto('usage_line_rollups')
    .values([...rows])
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'customer_id', 'bucket', 'provider', 'model', 'feature', 'usage_type']).doUpdateSet({
        events: sql`usage_line_rollups.events + excluded.events`,
        quantity: sql`usage_line_rollups.quantity + excluded.quantity`,
        cost: sql`usage_line_rollups.cost + excluded.cost`,
        amount: sql`usage_line_rollups.amount + excluded.amount`,
      }),
    )
    .execute()
}

export async function listPlans(db: Executor, tenantId: string, customerIds: readonly string[]) {
  return db
    .selectFrom('pricing_plans')
    .select(['customer_id', 'kind', 'percent', 'effective_from'])
    .where('tenant_id', '=', tenantId)
    .where((eb) => (customerIds.length ? eb.or([eb('customer_id', 'is', null), eb('customer_id', 'in', customerIds)]) : eb('customer_id', 'is', null)))
    .execute()
}
