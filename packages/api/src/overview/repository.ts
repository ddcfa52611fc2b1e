/**
 * The overview's SQL: usage per UTC day and (provider, model) and top customers from the per-day
 * read models (and usage_rollups at the edges), their compaction, alerts
 * raised since a time, and UNPRICED events grouped by reason (on the partial index of UNPRICED
 * events: priced events are never read).
 */
import { sql } from 'kysely'
import type { Executor } from '../db/database.ts'
import type { UnpricedReasonJson } from '../db/types.ts'
import { NOT_EMPTY, onDays, onEdgeHours } from '../db/day-span.ts'
import type { DaySpan } from '../shared/date-range.ts'

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

/**
 * Sums per (UTC day, provider, model) over a span: whole days from usage_day_models plus the
 * uncompacted usage_day_deltas, edge hours from usage_rollups — one statement, so one snapshot sees
 * every delta either still in usage_day_deltas or already in usage_day_models, never both.
 */
export async function rollupCells(db: Executor, tenantId: string, span: DaySpan): Promise<RollupCell[]> {
  const { rows } = await sql<{
    day: Date | string
    provider: string
    model: string
    events: string
    unpriced_events: string
    cost: string
    amount: string
  }>`
    select day, provider, model, sum(events) as events, sum(unpriced_events) as unpriced_events,
      sum(cost) as cost, sum(amount) as amount
    from (
      select day, provider, model, events, unpriced_events, cost, amount
      from usage_day_models where tenant_id = ${tenantId} and ${onDays(span)}
      union all
      select day, provider, model, events, unpriced_events, cost, amount
      from usage_day_deltas where tenant_id = ${tenantId} and ${onDays(span)}
      union all
      select date_bin(interval '24 hours', bucket, ${BIN_ORIGIN}), provider, model, events, unpriced_events, cost, amount
      from usage_rollups where tenant_id = ${tenantId} and ${onEdgeHours(span)}
    ) cells
    group by day, provider, model
    ${NOT_EMPTY}`.execute(db)
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

/** Tenants with usage_day_deltas rows waiting to be compacted. */
export async function tenantsWithDayDeltas(db: Executor): Promise<string[]> {
  const { rows } = await sql<{ tenant_id: string }>`select distinct tenant_id from usage_day_deltas`.execute(db)
  return rows.map((r) => r.tenant_id)
}

/**
 * Moves up to `limit` of a tenant's oldest usage_day_deltas rows into usage_day_models,
 * usage_day_customers and usage_day_customer_models, in one statement (one tenant: one shard on
 * Citus): the deleted rows are exactly the ones added, and a concurrent compactor skips rows this
 * one deleted. Locks: the three tables in that order, each by key in byte order (nothing else: writers of
 * deltas only append). Returns how many delta rows moved.
 */
export async function compactDayDeltas(db: Executor, tenantId: string, limit: number): Promise<number> {
  const { rows } = await sql<{ moved: number }>`
    with moved as (
      delete from usage_day_deltas
      where tenant_id = ${tenantId}
        and id in (select id from usage_day_deltas where tenant_id = ${tenantId} order by id limit ${limit})
      returning tenant_id, day, customer_id, provider, model, ${sql.raw(DAY_FIGURES.join(', '))}
    ),
    ${addMoved('models', 'usage_day_models', ['day', 'provider', 'model'], null)},
    ${addMoved('customers', 'usage_day_customers', ['customer_id', 'day'], 'models')},
    ${addMoved('customer_models', 'usage_day_customer_models', ['customer_id', 'day', 'provider', 'model'], 'customers')}
    select (select count(*) from moved)::int as moved, (select count(*) from customer_models) as customer_models`.execute(
    db,
  )
  return Number(rows[0]?.moved ?? 0)
}

const DAY_FIGURES = ['events', 'unpriced_events', 'input_tokens', 'output_tokens', 'cost', 'amount'] as const

/**
 * One CTE of the compaction: the moved deltas summed per key of a per-day table (tenant_id, then
 * `keys`) and added to its rows, upserted in key order (text in byte order). Reading `after`'s
 * output first makes the CTEs take their locks in order (data-modifying CTEs otherwise run in no
 * promised order). Table and column names are constants, never input.
 */
function addMoved(name: string, table: string, keys: readonly string[], after: string | null) {
  const columns = keys.join(', ')
  const order = keys.map((k) => (k === 'day' ? k : `${k} collate "C"`)).join(', ')
  return sql.raw(`${name} as (
      insert into ${table} (tenant_id, ${columns}, ${DAY_FIGURES.join(', ')})
      select tenant_id, ${columns}, ${DAY_FIGURES.map((f) => `sum(${f})`).join(', ')}
      from moved
      ${after ? `where (select count(*) from ${after}) >= 0` : ''}
      group by tenant_id, ${columns}
      order by tenant_id collate "C", ${order}
      on conflict (tenant_id, ${columns}) do update set
        ${DAY_FIGURES.map((f) => `${f} = ${table}.${f} + excluded.${f}`).join(', ')}
      returning 1
    )`)
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
