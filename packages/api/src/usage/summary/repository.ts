import { sql, type RawBuilder } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { UsageEventRow } from '../../db/types.ts'
import { NOT_EMPTY } from '../../db/day-span.ts'
import type { TimeRange } from '../../shared/date-range.ts'

/**
 * SQL behind usageSummary and usageEvents.
 *
 * Summaries read whole UTC hours from the rollup tables and only the partial-hour edges of a range
 * from raw usage_events. Every function here aggregates in SQL (NUMERIC sums are exact) and returns
 * one row per group; merging rollup and edge rows is the caller's (pure) business.
 */

/** Whose usage: one customer of a tenant, or the whole tenant (customerId null). */
export interface SummaryScope {
  tenantId: string
  customerId: string | null
}

/** What to group by, below the usage type. DAY and HOUR are UTC buckets (whatever the session's TimeZone). */
export interface GroupKeys {
  model: boolean
  provider: boolean
  feature: boolean
  bucket: 'DAY' | 'HOUR' | null
}

export const NO_GROUPING: GroupKeys = { model: false, provider: false, feature: false, bucket: null }

/** A group's key as stored: provider and feature use '' for none; null means "not grouped by". */
export interface GroupKey {
  bucketStart: Date | null
  model: string | null
  provider: string | null
  feature: string | null
  usageType: string | null
}

export interface EventAggregate extends GroupKey {
  events: number
  unpricedEvents: number
  inputTokens: number
  outputTokens: number
  /** Exact decimal strings. */
  cost: string
  amount: string
}

export interface LineAggregate extends GroupKey {
  usageType: string
  /** Priced lines of this usage type (an event has at most one line per usage type). */
  events: number
  quantity: string
  cost: string
  amount: string
}

type Source = 'rollup' | 'raw'

/** Raw events name their dimensions the way rollupDimensions() in rollups.ts does. */
const RAW_DIMENSIONS = {
  model: sql<string>`coalesce(e.canonical_model, e.model)`,
  provider: sql<string>`coalesce(e.canonical_provider, e.provider, '')`,
  feature: sql<string>`coalesce(e.feature, '')`,
}
const ROLLUP_DIMENSIONS = {
  model: sql<string>`r.model`,
  provider: sql<string>`r.provider`,
  feature: sql<string>`r.feature`,
}

/** Bins start at UTC midnights (and so on UTC hours): date_bin counts whole strides from here. */
const BIN_ORIGIN = sql`timestamptz '2000-01-01T00:00:00Z'`

function bucketExpression(source: Source, unit: 'DAY' | 'HOUR'): RawBuilder<Date> {
  // Rollup buckets already are UTC hours.
  if (source === 'rollup' && unit === 'HOUR') return sql<Date>`r.bucket`
  const column = source === 'rollup' ? sql`r.bucket` : sql`e.ts`
  // date_bin on timestamptz is arithmetic on the absolute instant (24 h strides from a UTC
  // midnight), so buckets are UTC days and hours whatever the session's TimeZone, as
  // `date_trunc(…, ts at time zone 'UTC') at time zone 'UTC'` was — without converting each row to
  // a local timestamp and back, which cost ≈ 20 % of a month's [MODEL, DAY] rollup query.
  const stride = unit === 'DAY' ? sql`interval '24 hours'` : sql`interval '1 hour'`
  return sql<Date>`date_bin(${stride}, ${column}, ${BIN_ORIGIN})`
}

/** The grouped-by dimension columns, as [select item, group-by expression] pairs. */
function dimensionColumns(source: Source, keys: GroupKeys, usageType: RawBuilder<string> | null) {
  const names = source === 'rollup' ? ROLLUP_DIMENSIONS : RAW_DIMENSIONS
  const columns: { alias: string; expression: RawBuilder<unknown> }[] = []
  if (keys.bucket) columns.push({ alias: 'bucket_start', expression: bucketExpression(source, keys.bucket) })
  if (keys.model) columns.push({ alias: 'model', expression: names.model })
  if (keys.provider) columns.push({ alias: 'provider', expression: names.provider })
  if (keys.feature) columns.push({ alias: 'feature', expression: names.feature })
  if (usageType) columns.push({ alias: 'usage_type', expression: usageType })
  return columns
}

function selectAndGroup(columns: ReturnType<typeof dimensionColumns>, aggregates: RawBuilder<unknown>[]) {
  const select = sql.join([...columns.map((c) => sql`${c.expression} as ${sql.ref(c.alias)}`), ...aggregates])
  const groupBy = columns.length ? sql`group by ${sql.join(columns.map((c) => c.expression))}` : sql``
  return { select, groupBy }
}

function scopeFilter(alias: 'r' | 'e' | 'd', scope: SummaryScope): RawBuilder<unknown> {
  const table = sql.table(alias)
  return scope.customerId === null
    ? sql`${table}.tenant_id = ${scope.tenantId}`
    : sql`${table}.tenant_id = ${scope.tenantId} and ${table}.customer_id = ${scope.customerId}`
}

/**
 * The scope's events in the (partial-hour edge) ranges, as a derived table `e`. One branch per range
 * so each is a plain index range scan (tenant_id[, customer_id], ts), never a scan of the hours between.
 */
function edgeEvents(scope: SummaryScope, ranges: readonly TimeRange[]): RawBuilder<unknown> {
  // An event re-priced by repriceUsage is billed with its latest correction (the rollups, which
  // serve whole hours, already hold the correction's delta); events themselves are never edited.
  const branches = ranges.map(
    (
      r,
    ) => sql`select e.tenant_id, e.id, e.customer_id, e.ts, e.provider, e.canonical_provider, e.model, e.canonical_model,
        e.feature, e.status, e.input_tokens, e.output_tokens,
        coalesce(c.new_cost, e.cost) as cost, coalesce(c.new_amount, e.amount) as amount, coalesce(c.new_lines, e.lines) as lines
      from usage_events e
      left join lateral (
        select new_cost, new_amount, new_lines from usage_corrections c
        where c.tenant_id = e.tenant_id and c.event_id = e.id order by c.id desc limit 1
      ) c on true
      where ${scopeFilter('e', scope)} and e.ts >= ${r.from.toISOString()}::timestamptz and e.ts < ${r.to.toISOString()}::timestamptz`,
  )
  return sql`(${sql.join(branches, sql` union all `)}) e`
}

function bucketsFilter(hours: TimeRange): RawBuilder<unknown> {
  return sql`r.bucket >= ${hours.from.toISOString()}::timestamptz and r.bucket < ${hours.to.toISOString()}::timestamptz`
}

interface GroupKeyColumns {
  bucket_start?: Date | string
  model?: string
  provider?: string
  feature?: string
  usage_type?: string
}

function groupKeyOf(row: GroupKeyColumns): GroupKey {
  return {
    bucketStart: row.bucket_start === undefined ? null : new Date(row.bucket_start),
    model: row.model ?? null,
    provider: row.provider ?? null,
    feature: row.feature ?? null,
    usageType: row.usage_type ?? null,
  }
}

interface EventAggregateColumns extends GroupKeyColumns {
  events: number | string
  unpriced_events: number | string
  input_tokens: number | string
  output_tokens: number | string
  cost: string
  amount: string
}

function toEventAggregate(row: EventAggregateColumns): EventAggregate {
  return {
    ...groupKeyOf(row),
    events: Number(row.events),
    unpricedEvents: Number(row.unpriced_events),
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    cost: String(row.cost),
    amount: String(row.amount),
  }
}

interface LineAggregateColumns extends GroupKeyColumns {
  usage_type: string
  events: number | string
  quantity: string
  cost: string
  amount: string
}

function toLineAggregate(row: LineAggregateColumns): LineAggregate {
  return {
    ...groupKeyOf(row),
    usageType: row.usage_type,
    events: Number(row.events),
    quantity: String(row.quantity),
    cost: String(row.cost),
    amount: String(row.amount),
  }
}

/** Event totals per group over whole hours, from usage_rollups. Without keys: one row (zeros when empty). */
export async function rollupEventAggregates(
  db: Executor,
  scope: SummaryScope,
  hours: TimeRange,
  keys: GroupKeys,
): Promise<EventAggregate[]> {
  const { select, groupBy } = selectAndGroup(dimensionColumns('rollup', keys, null), [
    sql`coalesce(sum(r.events), 0)::int8 as events`,
    sql`coalesce(sum(r.unpriced_events), 0)::int8 as unpriced_events`,
    sql`coalesce(sum(r.input_tokens), 0)::int8 as input_tokens`,
    sql`coalesce(sum(r.output_tokens), 0)::int8 as output_tokens`,
    sql`coalesce(sum(r.cost), 0) as cost`,
    sql`coalesce(sum(r.amount), 0) as amount`,
  ])
  const { rows } = await sql<EventAggregateColumns>`
    select ${select}
    from usage_rollups r
    where ${scopeFilter('r', scope)} and ${bucketsFilter(hours)}
    ${groupBy}`.execute(db)
  return rows.map(toEventAggregate)
}

/** Whether the per-day rollups can serve these keys: no grouping, or by UTC day only. */
export const daysServe = (keys: GroupKeys) => !keys.model && !keys.provider && !keys.feature && keys.bucket !== 'HOUR'

/**
 * Event totals over whole UTC days (grouped by day when keys.bucket is DAY), from the per-day
 * rollups: a customer's from usage_day_customers, a tenant's from usage_day_models, each with the
 * usage_day_deltas not compacted yet, in one statement (one snapshot: a delta is counted either
 * pending or compacted, never both). Only for keys that daysServe().
 */
export async function dayEventAggregates(
  db: Executor,
  scope: SummaryScope,
  days: TimeRange,
  keys: GroupKeys,
): Promise<EventAggregate[]> {
  const table = scope.customerId === null ? sql`usage_day_models` : sql`usage_day_customers`
  const inScope = sql`${scopeFilter('d', scope)} and d.day >= ${days.from.toISOString()}::timestamptz and d.day < ${days.to.toISOString()}::timestamptz`
  const byDay = keys.bucket === 'DAY'
  const { rows } = await sql<EventAggregateColumns>`
    select ${byDay ? sql`d.day as bucket_start, ` : sql``}
      coalesce(sum(d.events), 0)::int8 as events, coalesce(sum(d.unpriced_events), 0)::int8 as unpriced_events,
      coalesce(sum(d.input_tokens), 0)::int8 as input_tokens, coalesce(sum(d.output_tokens), 0)::int8 as output_tokens,
      coalesce(sum(d.cost), 0) as cost, coalesce(sum(d.amount), 0) as amount
    from (
      select d.day, d.events, d.unpriced_events, d.input_tokens, d.output_tokens, d.cost, d.amount
      from ${table} d where ${inScope}
      union all
      select d.day, d.events, d.unpriced_events, d.input_tokens, d.output_tokens, d.cost, d.amount
      from usage_day_deltas d where ${inScope}
    ) d
    ${byDay ? sql`group by d.day ${NOT_EMPTY}` : sql``}`.execute(db)
  return rows.map(toEventAggregate)
}

/** The same aggregates as rollupEventAggregates, computed from raw events in the given (partial-hour) ranges. */
export async function rawEventAggregates(
  db: Executor,
  scope: SummaryScope,
  ranges: readonly TimeRange[],
  keys: GroupKeys,
): Promise<EventAggregate[]> {
  if (ranges.length === 0) return []
  const { select, groupBy } = selectAndGroup(dimensionColumns('raw', keys, null), [
    sql`count(*)::int8 as events`,
    sql`(count(*) filter (where e.status = 'UNPRICED'))::int8 as unpriced_events`,
    sql`coalesce(sum(e.input_tokens), 0)::int8 as input_tokens`,
    sql`coalesce(sum(e.output_tokens), 0)::int8 as output_tokens`,
    sql`coalesce(sum(e.cost), 0) as cost`,
    sql`coalesce(sum(e.amount), 0) as amount`,
  ])
  const { rows } = await sql<EventAggregateColumns>`
    select ${select}
    from ${edgeEvents(scope, ranges)}
    ${groupBy}`.execute(db)
  return rows.map(toEventAggregate)
}

/** Priced-line totals per group and usage type over whole hours, from usage_line_rollups. */
export async function rollupLineAggregates(
  db: Executor,
  scope: SummaryScope,
  hours: TimeRange,
  keys: GroupKeys,
): Promise<LineAggregate[]> {
  const { select, groupBy } = selectAndGroup(dimensionColumns('rollup', keys, sql<string>`r.usage_type`), [
    sql`sum(r.events)::int8 as events`,
    sql`sum(r.quantity) as quantity`,
    sql`sum(r.cost) as cost`,
    sql`sum(r.amount) as amount`,
  ])
  const { rows } = await sql<LineAggregateColumns>`
    select ${select}
    from usage_line_rollups r
    where ${scopeFilter('r', scope)} and ${bucketsFilter(hours)}
    ${groupBy}`.execute(db)
  return rows.map(toLineAggregate)
}

/** The same as rollupLineAggregates, from the priced lines of raw events in the given ranges. */
export async function rawLineAggregates(
  db: Executor,
  scope: SummaryScope,
  ranges: readonly TimeRange[],
  keys: GroupKeys,
): Promise<LineAggregate[]> {
  if (ranges.length === 0) return []
  const { select, groupBy } = selectAndGroup(dimensionColumns('raw', keys, sql<string>`(line.value ->> 'usageType')`), [
    sql`count(*)::int8 as events`,
    sql`coalesce(sum((line.value ->> 'quantity')::numeric), 0) as quantity`,
    sql`coalesce(sum((line.value ->> 'cost')::numeric), 0) as cost`,
    sql`coalesce(sum((line.value ->> 'amount')::numeric), 0) as amount`,
  ])
  const { rows } = await sql<LineAggregateColumns>`
    select ${select}
    from ${edgeEvents(scope, ranges)}
    cross join lateral jsonb_array_elements(e.lines) as line(value)
    ${groupBy}`.execute(db)
  return rows.map(toLineAggregate)
}

/** Keyset position in the newest-first order (ts desc, id desc). */
export interface EventPosition {
  ts: Date
  id: string
}

/**
 * One page of a customer's events, newest first, strictly after `after` in that order. Served by
 * the usage_events_customer_time index (tenant_id, customer_id, ts, id) read backwards.
 */
export function listEventsPage(
  db: Executor,
  params: {
    tenantId: string
    customerId: string
    from: Date | null
    to: Date | null
    after: EventPosition | null
    limit: number
    /** The model as usageSummary groups it: the canonical model, or the reported one when unknown. */
    model?: string | null
    feature?: string | null
  },
): Promise<UsageEventRow[]> {
  const { tenantId, customerId, from, to, after, limit, model, feature } = params
  let query = db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
  if (from) query = query.where('ts', '>=', from)
  if (to) query = query.where('ts', '<', to)
  if (model != null) query = query.where(sql<string>`coalesce(canonical_model, model)`, '=', model)
  if (feature != null) query = query.where('feature', '=', feature)
  if (after) query = query.where((eb) => eb(eb.refTuple('ts', 'id'), '<', eb.tuple(after.ts, after.id)))
  return query.orderBy('ts', 'desc').orderBy('id', 'desc').limit(limit).execute()
}
