import { sql, type RawBuilder } from 'kysely'
import type { Executor } from '../../db/database.ts'
import type { UsageEventRow } from '../../db/types.ts'
import type { SignedRange, TimeRange } from '../../shared/date-range.ts'

/**
 * SQL behind usageSummary and usageEvents.
 *
 * Summaries read whole UTC days from the per-day rollups, whole hours from the hourly rollups and
 * only partial hours from raw usage_events (added, or taken away from a whole hour's rollup). Each
 * function here sums every part in one SQL statement (NUMERIC sums are exact; one snapshot) and
 * returns one row per group.
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
interface GroupKey {
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

/** Where a branch of a summary reads: the hourly or per-day rollups, raw events, or their corrections. */
type Source = 'rollup' | 'day' | 'raw' | 'correction'

/**
 * Each source's time column and dimension columns, named the way rollupDimensions() in rollups.ts
 * keys rollups.
 */
const SOURCES: Record<
  Source,
  {
    time: RawBuilder<Date>
    model: RawBuilder<string>
    provider: RawBuilder<string>
    feature: RawBuilder<string> | null
  }
> = {
  rollup: { time: sql`r.bucket`, model: sql`r.model`, provider: sql`r.provider`, feature: sql`r.feature` },
  // The per-day rollups have no feature: daysServe() keeps FEATURE groupings off them.
  day: { time: sql`d.day`, model: sql`d.model`, provider: sql`d.provider`, feature: null },
  raw: {
    time: sql`e.ts`,
    model: sql`coalesce(e.canonical_model, e.model)`,
    provider: sql`coalesce(e.canonical_provider, e.provider, '')`,
    feature: sql`coalesce(e.feature, '')`,
  },
  // A correction carries its event's rollup dimensions and time.
  correction: { time: sql`c.ts`, model: sql`c.model`, provider: sql`c.provider`, feature: sql`c.feature` },
}

/** Bins start at UTC midnights (and so on UTC hours): date_bin counts whole strides from here. */
const BIN_ORIGIN = sql`timestamptz '2000-01-01T00:00:00Z'`

function bucketExpression(source: Source, unit: 'DAY' | 'HOUR'): RawBuilder<Date> {
  // Rollup buckets already are UTC hours, per-day rows UTC days.
  if (source === 'rollup' && unit === 'HOUR') return sql<Date>`r.bucket`
  if (source === 'day') return sql<Date>`d.day`
  // date_bin on timestamptz is arithmetic on the absolute instant (24 h strides from a UTC
  // midnight), so buckets are UTC days and hours whatever the session's TimeZone, as
  // `date_trunc(…, ts at time zone 'UTC') at time zone 'UTC'` was — without converting each row to
  // a local timestamp and back, which cost ≈ 20 % of a month's [MODEL, DAY] rollup query.
  const stride = unit === 'DAY' ? sql`interval '24 hours'` : sql`interval '1 hour'`
  return sql<Date>`date_bin(${stride}, ${SOURCES[source].time}, ${BIN_ORIGIN})`
}

/** The grouped-by columns of a source, as (alias, expression) pairs; the same aliases for every source. */
function dimensionColumns(source: Source, keys: GroupKeys, usageType: RawBuilder<string> | null) {
  const names = SOURCES[source]
  const columns: { alias: string; expression: RawBuilder<unknown> }[] = []
  if (keys.bucket) columns.push({ alias: 'bucket_start', expression: bucketExpression(source, keys.bucket) })
  if (keys.model) columns.push({ alias: 'model', expression: names.model })
  if (keys.provider) columns.push({ alias: 'provider', expression: names.provider })
  if (keys.feature) {
    if (!names.feature) throw new Error(`usage summary: the ${source} source has no feature`)
    columns.push({ alias: 'feature', expression: names.feature })
  }
  if (usageType) columns.push({ alias: 'usage_type', expression: usageType })
  return columns
}

/** One branch of a summary: the source's groups with their (signed) figures, grouped in SQL. */
function branch(
  columns: ReturnType<typeof dimensionColumns>,
  figures: RawBuilder<unknown>[],
  from: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const select = sql.join([...columns.map((c) => sql`${c.expression} as ${sql.ref(c.alias)}`), ...figures])
  const groupBy = columns.length ? sql`group by ${sql.join(columns.map((c) => c.expression))}` : sql``
  return sql`select ${select} ${from} ${groupBy}`
}

/**
 * Sums the branches' figures per group in one statement (one snapshot, so a row written meanwhile
 * is in all of them or none: what one branch adds, another can take away exactly). Groups whose
 * figures all net to zero — what is left of a group a subtracted edge emptied — are left out.
 */
async function sumBranches<Row>(
  db: Executor,
  aliases: readonly string[],
  figures: readonly string[],
  branches: readonly RawBuilder<unknown>[],
): Promise<Row[]> {
  if (branches.length === 0) return []
  const keys = sql.join(aliases.map((a) => sql.ref(`x.${a}`)))
  const sums = sql.join(figures.map((f) => sql`coalesce(sum(x.${sql.ref(f)}), 0) as ${sql.ref(f)}`))
  const union = sql.join(
    branches.map((b) => sql`(${b})`),
    sql` union all `,
  )
  const query = aliases.length
    ? sql<Row>`select ${keys}, ${sums} from (${union}) x group by ${keys}
        having ${sql.join(
          figures.map((f) => sql`sum(x.${sql.ref(f)}) <> 0`),
          sql` or `,
        )}`
    : sql<Row>`select ${sums} from (${union}) x`
  const { rows } = await query.execute(db)
  return rows
}

function scopeFilter(alias: 'r' | 'e' | 'd' | 'c', scope: SummaryScope): RawBuilder<unknown> {
  const table = sql.table(alias)
  return scope.customerId === null
    ? sql`${table}.tenant_id = ${scope.tenantId}`
    : sql`${table}.tenant_id = ${scope.tenantId} and ${table}.customer_id = ${scope.customerId}`
}

function within(column: RawBuilder<unknown>, range: TimeRange): RawBuilder<unknown> {
  return sql`${column} >= ${range.from.toISOString()}::timestamptz and ${column} < ${range.to.toISOString()}::timestamptz`
}

/** A signed figure: `expression`, negated for a range taken away. */
const signed = (sign: 1 | -1, expression: RawBuilder<unknown>) => (sign === 1 ? expression : sql`-(${expression})`)

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

/** How a summary's range is read: which parts from which source. */
export interface SummaryParts {
  /** Whole UTC days, from the per-day rollups (only for keys that daysServe()). */
  days: TimeRange | null
  /** Whole hours, from usage_rollups (usage_line_rollups for lines). */
  hours: readonly TimeRange[]
  /** Partial hours from raw events and their corrections, added or taken away (planHours()). */
  raw: readonly SignedRange[]
}

/** Whether the per-day rollups can serve these keys: any but FEATURE and HOUR. */
export const daysServe = (keys: GroupKeys) => !keys.feature && keys.bucket !== 'HOUR'

const EVENT_FIGURES = ['events', 'unpriced_events', 'input_tokens', 'output_tokens', 'cost', 'amount'] as const
const aliasesOf = (keys: GroupKeys, usageType: boolean) =>
  dimensionColumns('raw', keys, usageType ? sql`''` : null).map((c) => c.alias)

/**
 * Event totals per group over the parts, in one statement: whole days from the per-day rollups (a
 * customer's from usage_day_customer_models, a tenant's from usage_day_models, each with the
 * usage_day_deltas not compacted yet: a delta is counted pending or compacted, never both), whole
 * hours from usage_rollups, partial hours from raw events plus the net change of their corrections
 * (an event re-priced by repriceUsage is billed at its latest correction; the rollups already hold
 * it). Without keys: one row (zeros when empty).
 */
export async function eventAggregates(
  db: Executor,
  scope: SummaryScope,
  parts: SummaryParts,
  keys: GroupKeys,
): Promise<EventAggregate[]> {
  const sums = (column: (figure: string) => RawBuilder<unknown>) =>
    EVENT_FIGURES.map((f) => sql`sum(${column(f)}) as ${sql.ref(f)}`)
  const branches: RawBuilder<unknown>[] = []
  if (parts.days) {
    if (!daysServe(keys)) throw new Error('usage summary: the per-day rollups cannot serve this grouping')
    const table = scope.customerId === null ? sql`usage_day_models` : sql`usage_day_customer_models`
    const inScope = sql`${scopeFilter('d', scope)} and ${within(sql`d.day`, parts.days)}`
    const rows = (from: RawBuilder<unknown>) =>
      sql`select d.day, d.provider, d.model, ${sql.join(EVENT_FIGURES.map((f) => sql.ref(`d.${f}`)))} from ${from} d where ${inScope}`
    branches.push(
      branch(
        dimensionColumns('day', keys, null),
        sums((f) => sql.ref(`d.${f}`)),
        sql`from (${rows(table)} union all ${rows(sql`usage_day_deltas`)}) d`,
      ),
    )
  }
  for (const hours of parts.hours) {
    branches.push(
      branch(
        dimensionColumns('rollup', keys, null),
        sums((f) => sql.ref(`r.${f}`)),
        sql`from usage_rollups r where ${scopeFilter('r', scope)} and ${within(sql`r.bucket`, hours)}`,
      ),
    )
  }
  for (const range of parts.raw) {
    branches.push(
      branch(
        dimensionColumns('raw', keys, null),
        [
          sql`${signed(range.sign, sql`count(*)`)} as events`,
          sql`${signed(range.sign, sql`count(*) filter (where e.status = 'UNPRICED')`)} as unpriced_events`,
          ...['input_tokens', 'output_tokens', 'cost', 'amount'].map(
            (f) => sql`${signed(range.sign, sql`sum(${sql.ref(`e.${f}`)})`)} as ${sql.ref(f)}`,
          ),
        ],
        sql`from usage_events e where ${scopeFilter('e', scope)} and ${within(sql`e.ts`, range)}`,
      ),
      // Corrections chain (each one's old figures are the previous one's new), so their net change
      // is the latest figures less the event's own.
      branch(
        dimensionColumns('correction', keys, null),
        [
          sql`0 as events, 0 as unpriced_events, 0 as input_tokens, 0 as output_tokens`,
          sql`${signed(range.sign, sql`sum(c.new_cost - c.old_cost)`)} as cost`,
          sql`${signed(range.sign, sql`sum(c.new_amount - c.old_amount)`)} as amount`,
        ],
        sql`from usage_corrections c where ${scopeFilter('c', scope)} and ${within(sql`c.ts`, range)}`,
      ),
    )
  }
  const rows = await sumBranches<EventAggregateColumns>(db, aliasesOf(keys, false), EVENT_FIGURES, branches)
  return rows.map(toEventAggregate)
}

const LINE_FIGURES = ['events', 'quantity', 'cost', 'amount'] as const

/**
 * Priced-line totals per group and usage type over the parts (no per-day tier: hours and partial
 * hours only), in one statement: usage_line_rollups for whole hours, the lines of raw events plus
 * their corrections' line changes (new lines in, old lines out) for partial hours.
 */
export async function lineAggregates(
  db: Executor,
  scope: SummaryScope,
  parts: Omit<SummaryParts, 'days'>,
  keys: GroupKeys,
): Promise<LineAggregate[]> {
  const lineFigures = (sign: 1 | -1, count: RawBuilder<unknown>, value: (field: string) => RawBuilder<unknown>) => [
    sql`${signed(sign, count)} as events`,
    ...['quantity', 'cost', 'amount'].map((f) => sql`${signed(sign, sql`sum(${value(f)})`)} as ${sql.ref(f)}`),
  ]
  const branches: RawBuilder<unknown>[] = []
  for (const hours of parts.hours) {
    branches.push(
      branch(
        dimensionColumns('rollup', keys, sql`r.usage_type`),
        [
          sql`sum(r.events) as events`,
          ...['quantity', 'cost', 'amount'].map((f) => sql`sum(${sql.ref(`r.${f}`)}) as ${sql.ref(f)}`),
        ],
        sql`from usage_line_rollups r where ${scopeFilter('r', scope)} and ${within(sql`r.bucket`, hours)}`,
      ),
    )
  }
  for (const range of parts.raw) {
    branches.push(
      branch(
        dimensionColumns('raw', keys, sql`(line.value ->> 'usageType')`),
        lineFigures(range.sign, sql`count(*)`, (f) => sql`(line.value ->> ${f})::numeric`),
        sql`from usage_events e cross join lateral jsonb_array_elements(e.lines) as line(value)
          where ${scopeFilter('e', scope)} and ${within(sql`e.ts`, range)}`,
      ),
      branch(
        dimensionColumns('correction', keys, sql`(line.value ->> 'usageType')`),
        lineFigures(range.sign, sql`sum(line.side)`, (f) => sql`line.side * (line.value ->> ${f})::numeric`),
        sql`from usage_corrections c cross join lateral (
            select value, 1 as side from jsonb_array_elements(c.new_lines)
            union all select value, -1 as side from jsonb_array_elements(c.old_lines)
          ) as line(value, side)
          where ${scopeFilter('c', scope)} and ${within(sql`c.ts`, range)}`,
      ),
    )
  }
  const rows = await sumBranches<LineAggregateColumns>(db, aliasesOf(keys, true), LINE_FIGURES, branches)
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
