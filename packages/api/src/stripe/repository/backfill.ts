/** SQL of the setup backfill: the ledger's priced events and corrections in keyset pages over (ts, id). */
import { sql } from 'kysely'
import type { Executor } from '../../db/database.ts'

export function pricedEventsPage(
  trx: Executor,
  tenantId: string,
  from: Date,
  after: { ts: Date; id: string } | null,
  limit: number,
) {
  let query = trx
    .selectFrom('usage_events')
    .select(['id', 'customer_id', 'ts', 'amount', 'lines', 'model', 'canonical_model'])
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'PRICED')
    .where('ts', '>=', from)
  if (after) query = query.where(sql<boolean>`(ts, id) > (${after.ts}, ${after.id})`)
  return query.orderBy('ts').orderBy('id').limit(limit).execute()
}

export function correctionsPage(
  trx: Executor,
  tenantId: string,
  from: Date,
  after: { ts: Date; id: number } | null,
  limit: number,
) {
  let query = trx
    .selectFrom('usage_corrections as c')
    .innerJoin('usage_events as e', (join) =>
      join.onRef('e.tenant_id', '=', 'c.tenant_id').onRef('e.id', '=', 'c.event_id'),
    )
    .select([
      'c.id',
      'c.event_id',
      'c.customer_id',
      'c.ts',
      'c.old_amount',
      'c.new_amount',
      'c.old_lines',
      'c.new_lines',
      'e.model',
      'e.canonical_model',
    ])
    .where('c.tenant_id', '=', tenantId)
    .where('c.ts', '>=', from)
  if (after) query = query.where(sql<boolean>`(c.ts, c.id) > (${after.ts}, ${after.id})`)
  return query.orderBy('c.ts').orderBy('c.id').limit(limit).execute()
}
