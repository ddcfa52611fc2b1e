/**
 * The overview's SQL: usage_rollups per UTC day and (provider, model) over whole hours, alerts
 * raised since a time, and UNPRICED events grouped by reason (on the partial index of UNPRICED
 * events: priced events are never read).
 */
import { sql } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { UnpricedReasonJson } from '../db/types.ts'

export interface RollupCell {
  day: Date
  provider: string
  model: string
  events: number
  unpriced_events: number
  cost: string
  amount: string
}

/** Bins start at UTC midnights: date_bin counts whole 24-hour strides from here. */
const BIN_ORIGIN = sql`timestamptz '2000-01-01T00:00:00Z'`

/** Sums of usage_rollups per (UTC day, provider, model) over whole hours [from, to). */
export async function rollupCells(db: Executor, tenantId: string, from: Date, to: Date): Promise<RollupCell[]> {
  const day = sql<Date>`date_bin(interval '24 hours', bucket, ${BIN_ORIGIN})`
  const rows = await db
    .selectFrom('usage_rollups')
    .select((eb) => [
      day.as('day'),
      'provider',
      'model',
      eb.fn.sum<string>('events').as('events'),
      eb.fn.sum<string>('unpriced_events').as('unpriced_events'),
      eb.fn.sum<string>('cost').as('cost'),
      eb.fn.sum<string>('amount').as('amount'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('bucket', '>=', from)
    .where('bucket', '<', to)
    .groupBy([day, 'provider', 'model'])
    .execute()
  return rows.map((r) => ({
    day: new Date(r.day),
    provider: r.provider,
    model: r.model,
    events: Number(r.events),
    unpriced_events: Number(r.unpriced_events),
    cost: String(r.cost),
    amount: String(r.amount),
  }))
}

/** Budget and credit alerts raised at or after `since`. */
export async function alertsSince(db: Executor, tenantId: string, since: Date): Promise<number> {
  const [budget, credit] = await Promise.all([
    db
      .selectFrom('budget_alerts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('tenant_id', '=', tenantId)
      .where('triggered_at', '>=', since)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('credit_alerts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('tenant_id', '=', tenantId)
      .where('triggered_at', '>=', since)
      .executeTakeFirstOrThrow(),
  ])
  return Number(budget.n) + Number(credit.n)
}

export interface UnpricedGroupRow {
  /** The rollup's names: canonical when known, as reported otherwise ('' for no provider). */
  provider: string
  model: string
  reason: UnpricedReasonJson | null
  events: number
  customers: number
  first_at: Date
  last_at: Date
}

/** UNPRICED events in [from, to) grouped by (provider, model, reason), most events first. */
export async function unpricedGroups(
  db: Executor,
  tenantId: string,
  from: Date,
  to: Date,
  limit: number,
): Promise<UnpricedGroupRow[]> {
  const provider = sql<string>`coalesce(canonical_provider, provider, '')`
  const model = sql<string>`coalesce(canonical_model, model)`
  const rows = await db
    .selectFrom('usage_events')
    .select((eb) => [
      provider.as('provider'),
      model.as('model'),
      'unpriced_reason as reason',
      eb.fn.countAll<string>().as('events'),
      sql<string>`count(distinct customer_id)`.as('customers'),
      eb.fn.min('ts').as('first_at'),
      eb.fn.max('ts').as('last_at'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'UNPRICED')
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .groupBy([provider, model, 'unpriced_reason'])
    .orderBy(sql`count(*)`, 'desc')
    .orderBy(provider)
    .orderBy(model)
    .limit(limit)
    .execute()
  return rows.map((r) => ({
    provider: r.provider,
    model: r.model,
    reason: (typeof r.reason === 'string' ? JSON.parse(r.reason) : r.reason) as UnpricedReasonJson | null,
    events: Number(r.events),
    customers: Number(r.customers),
    first_at: new Date(r.first_at),
    last_at: new Date(r.last_at),
  }))
}
