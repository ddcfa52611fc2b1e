import { sql } from 'kysely'
import type { Executor, Tx } from '../db/database.ts'
import type { Insertable, PricedLineJson, UsageCorrectionTable, UsageEventRow } from '../db/types.ts'

/**
 * Re-pricing's reads and writes of usage_events and usage_corrections (late pricing and
 * corrections). The event updates themselves (priceStillUnpriced, setUnpricedReasons) and rollup
 * upserts live with the ledger in usage/repository.ts.
 */

/** The distinct (tenant, model, provider) names of UNPRICED events, within an optional tenant and event ids. */
export function unpricedNames(
  db: Executor,
  filter: { tenantId?: string | undefined; eventIds?: readonly string[] | undefined },
): Promise<{ tenant_id: string; model: string; provider: string | null }[]> {
  let query = db
    .selectFrom('usage_events')
    .select(['tenant_id', 'model', 'provider'])
    .distinct()
    .where('status', '=', 'UNPRICED')
  if (filter.tenantId) query = query.where('tenant_id', '=', filter.tenantId)
  if (filter.eventIds)
    query = filter.eventIds.length ? query.where('id', 'in', filter.eventIds) : query.where(sql<boolean>`false`)
  return query.execute()
}

/** The next batch (by seq, after `afterSeq`) of a tenant's UNPRICED events reported under one model name. */
export function unpricedBatch(
  db: Executor,
  name: { tenant_id: string; model: string; provider: string | null },
  page: { afterSeq: number; limit: number; from: Date | null; eventIds?: readonly string[] | undefined },
): Promise<UsageEventRow[]> {
  let query = db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', name.tenant_id)
    .where('model', '=', name.model)
    .where((eb) => (name.provider === null ? eb('provider', 'is', null) : eb('provider', '=', name.provider)))
    .where('status', '=', 'UNPRICED')
    .where('seq', '>', page.afterSeq)
  if (page.from) query = query.where('ts', '>=', page.from)
  if (page.eventIds) query = query.where('id', 'in', page.eventIds)
  return query.orderBy('seq').limit(page.limit).execute()
}

/** The next batch (by seq) of a tenant's PRICED events of one canonical model in [from, to). */
export function pricedBatch(
  db: Executor,
  tenantId: string,
  range: { provider: string; model: string; from: Date; to: Date },
  page: { afterSeq: number; limit: number },
): Promise<UsageEventRow[]> {
  return db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'PRICED')
    .where('canonical_provider', '=', range.provider)
    .where('canonical_model', '=', range.model)
    .where('ts', '>=', range.from)
    .where('ts', '<', range.to)
    .where('seq', '>', page.afterSeq)
    .orderBy('seq')
    .limit(page.limit)
    .execute()
}

/** One re-pricing per tenant at a time: a concurrent run waits, then sees this one's corrections. */
export async function lockTenantRepricing(trx: Tx, tenantId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`burnrate.reprice:${tenantId}`}))`.execute(trx)
}

/** The latest correction of each of these events (what it is billed at now), by event id. */
export async function latestCorrections(
  db: Executor,
  tenantId: string,
  eventIds: readonly string[],
): Promise<Map<string, { lines: PricedLineJson[]; cost: string; amount: string }>> {
  const latest = new Map<string, { lines: PricedLineJson[]; cost: string; amount: string }>()
  if (eventIds.length === 0) return latest
  const rows = await db
    .selectFrom('usage_corrections')
    .select(['event_id', 'new_lines', 'new_cost', 'new_amount', 'id'])
    .where('tenant_id', '=', tenantId)
    .where('event_id', 'in', eventIds)
    .orderBy('id')
    .execute()
  for (const row of rows) latest.set(row.event_id, { lines: row.new_lines, cost: row.new_cost, amount: row.new_amount })
  return latest
}

export function insertCorrections(
  trx: Tx,
  corrections: readonly Insertable<UsageCorrectionTable>[],
): Promise<{ id: number; event_id: string }[]> {
  return trx
    .insertInto('usage_corrections')
    .values([...corrections])
    .returning(['id', 'event_id'])
    .execute()
}

/** A tenant's corrections of events in [from, to), oldest first. */
export function listCorrections(
  db: Executor,
  tenantId: string,
  filter: { from: Date; to: Date; customerId?: string | null | undefined; first: number },
) {
  let query = db
    .selectFrom('usage_corrections')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('ts', '>=', filter.from)
    .where('ts', '<', filter.to)
  if (filter.customerId) query = query.where('customer_id', '=', filter.customerId)
  return query.orderBy('ts').orderBy('id').limit(filter.first).execute()
}
