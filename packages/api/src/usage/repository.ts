import { sql, type Insertable } from 'kysely'
import type { Executor } from '../db/database.ts'
import type {
  UnpricedReasonJson,
  UsageEventRow,
  UsageEventTable,
  UsageLineRollupTable,
  UsageRollupTable,
} from '../db/types.ts'
import { columnList, unnestRows, type PgType } from '../db/unnest.ts'

type EventInsert = Insertable<UsageEventTable>

/** The JSON columns' text, serialized once while the row was built. */
export interface EventJson {
  units: string | null
  metadata: string | null
  lines: string
  unpricedReason: string | null
}

/** A new event: the row as it will be stored (seq aside) and its JSON columns as text. */
export interface NewEvent {
  row: Omit<UsageEventRow, 'seq'>
  json: EventJson
}

const EVENT_COLUMNS: Readonly<Record<Exclude<keyof EventInsert & string, 'seq'>, PgType>> = {
  tenant_id: 'text',
  id: 'text',
  customer_id: 'text',
  model: 'text',
  provider: 'text',
  canonical_provider: 'text',
  canonical_model: 'text',
  ts: 'timestamptz',
  received_at: 'timestamptz',
  status: 'text',
  cost: 'numeric',
  amount: 'numeric',
  currency: 'text',
  input_tokens: 'int8',
  output_tokens: 'int8',
  cache_read_tokens: 'int8',
  cache_write_tokens: 'int8',
  reasoning_tokens: 'int8',
  units: 'jsonb',
  feature: 'text',
  metadata: 'jsonb',
  lines: 'jsonb',
  plan_kind: 'text',
  plan_percent: 'numeric',
  content_hash: 'text',
  reservation_id: 'text',
  unpriced_reason: 'jsonb',
}

const JSON_COLUMN_VALUES = {
  units: (e: NewEvent) => e.json.units,
  metadata: (e: NewEvent) => e.json.metadata,
  lines: (e: NewEvent) => e.json.lines,
  unpriced_reason: (e: NewEvent) => e.json.unpricedReason,
}

const ROLLUP_KEY: Readonly<Record<string, PgType>> = {
  tenant_id: 'text',
  customer_id: 'text',
  bucket: 'timestamptz',
  provider: 'text',
  model: 'text',
  feature: 'text',
}

/**
 * The idempotency guard (`keys`, a CTE): usage_events is partitioned by month and cannot hold a
 * unique (tenant_id, id), so each id is claimed once and for good in usage_event_keys, sorted by id
 * (the lock order); `keys` returns the ids claimed by this statement, the only events inserted. A
 * writer racing on the same id waits on its key row and then does nothing, as before.
 */
const NEW_KEYS = sql`keys as (
      insert into usage_event_keys (tenant_id, id, ts, content_hash)
      select tenant_id, id, ts, content_hash from v
      on conflict (tenant_id, id) do nothing
      returning id
    )`

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

/**
 * The one order rollup rows are upserted in, by every writer (LOCK ORDER, db/lock-order.ts): the
 * primary key with text in byte order, so it does not depend on a locale nor on how a caller
 * sorted its deltas. A multi-row upsert locks rows in the order it reads them.
 */
const ROLLUP_ORDER = sql`order by customer_id collate "C", bucket, provider collate "C", model collate "C", feature collate "C"`
const lineRollupOrder = (usageType = sql.ref('usage_type')) =>
  sql`order by customer_id collate "C", bucket, provider collate "C", model collate "C", feature collate "C", ${usageType} collate "C"`

/** A rollup row met again adds the new deltas to its totals (ingest and re-pricing alike). */
const ADD_TO_ROLLUP = sql`on conflict (tenant_id, customer_id, bucket, provider, model, feature) do update set
  events = usage_rollups.events + excluded.events,
  unpriced_events = usage_rollups.unpriced_events + excluded.unpriced_events,
  input_tokens = usage_rollups.input_tokens + excluded.input_tokens,
  output_tokens = usage_rollups.output_tokens + excluded.output_tokens,
  cost = usage_rollups.cost + excluded.cost,
  amount = usage_rollups.amount + excluded.amount`
const ADD_TO_LINE_ROLLUP = sql`on conflict (tenant_id, customer_id, bucket, provider, model, feature, usage_type) do update set
  events = usage_line_rollups.events + excluded.events,
  quantity = usage_line_rollups.quantity + excluded.quantity,
  cost = usage_line_rollups.cost + excluded.cost,
  amount = usage_line_rollups.amount + excluded.amount`

/**
 * Inserts events whose id is new for the tenant and adds exactly those (never a duplicate, which
 * `on conflict do nothing` leaves out of `returning`) to usage_rollups and usage_line_rollups, in
 * one statement: the deltas are summed in SQL from the inserted rows (NUMERIC, exact), keyed as
 * rollupDimensions() and hourBucket() key them, lines through jsonb_array_elements. Locks follow
 * the lock order (docs/architecture.md): events by id, then usage_rollups, then usage_line_rollups, each in
 * key order. PostgreSQL runs the data-modifying CTEs of one statement in an unspecified order (in
 * practice the last one first), so line_rollups waits on a one-time filter over `rollups`' output:
 * every rollup row is locked before the first line rollup row. Returns the ids (and seq) actually
 * inserted.
 */
export async function insertNewEventsWithRollups(
  db: Executor,
  events: readonly NewEvent[],
): Promise<Map<string, number>> {
  if (events.length === 0) return new Map()
  const inserted = await sql<{ id: string; seq: number }>`
    with v as (${eventValues(events)}),
    ${NEW_KEYS},
    ins as (
      insert into usage_events ${columnList(EVENT_COLUMNS)}
      select * from v where v.id in (select id from keys)
      returning id, seq, tenant_id, customer_id, ts, provider, model, canonical_provider, canonical_model, feature, status,
        input_tokens, output_tokens, cost, amount, lines
    ),
    keyed as (
      select tenant_id, customer_id,
        date_trunc('hour', ts at time zone 'UTC') at time zone 'UTC' as bucket,
        coalesce(canonical_provider, provider, '') as provider,
        coalesce(canonical_model, model) as model,
        coalesce(feature, '') as feature,
        status, input_tokens, output_tokens, cost, amount, lines
      from ins
    ),
    rollups as (
      insert into usage_rollups (tenant_id, customer_id, bucket, provider, model, feature, events, unpriced_events, input_tokens, output_tokens, cost, amount)
      select tenant_id, customer_id, bucket, provider, model, feature,
        count(*), count(*) filter (where status = 'UNPRICED'), sum(input_tokens), sum(output_tokens), coalesce(sum(cost), 0), coalesce(sum(amount), 0)
      from keyed
      group by tenant_id, customer_id, bucket, provider, model, feature
      ${ROLLUP_ORDER}
      ${ADD_TO_ROLLUP}
      returning 1
    ),
    line_rollups as (
      insert into usage_line_rollups (tenant_id, customer_id, bucket, provider, model, feature, usage_type, events, quantity, cost, amount)
      select tenant_id, customer_id, bucket, provider, model, feature, line ->> 'usageType',
        count(*), sum((line ->> 'quantity')::numeric), sum((line ->> 'cost')::numeric), sum((line ->> 'amount')::numeric)
      from keyed cross join lateral jsonb_array_elements(keyed.lines) as l(line)
      where (select count(*) from rollups) >= 0
      group by tenant_id, customer_id, bucket, provider, model, feature, line ->> 'usageType'
      ${lineRollupOrder(sql`(line ->> 'usageType')`)}
      ${ADD_TO_LINE_ROLLUP}
    )
    select id, seq from ins`.execute(db)
  return new Map(inserted.rows.map((r) => [r.id, Number(r.seq)]))
}

/** `select … from unnest(…)` of the events, sorted by id so concurrent batches wait on each other's ids in one order (no deadlock). */
function eventValues(events: readonly NewEvent[]) {
  const sorted = [...events].sort((a, b) => (a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0))
  return unnestRows(sorted, EVENT_COLUMNS, (e, column) =>
    column in JSON_COLUMN_VALUES
      ? JSON_COLUMN_VALUES[column as keyof typeof JSON_COLUMN_VALUES](e)
      : e.row[column as keyof NewEvent['row']],
  )
}

/** The pricing late pricing stores on an UNPRICED event (its lines as JSON text). */
export interface LatePricing {
  id: string
  canonical_provider: string
  canonical_model: string
  lines: string
  cost: string
  amount: string
  plan_kind: string | null
  plan_percent: string | null
}

const LATE_PRICING_COLUMNS: Readonly<Record<keyof LatePricing, PgType>> = {
  id: 'text',
  canonical_provider: 'text',
  canonical_model: 'text',
  lines: 'jsonb',
  cost: 'numeric',
  amount: 'numeric',
  plan_kind: 'text',
  plan_percent: 'numeric',
}

/**
 * Prices a tenant's events that are still UNPRICED, in one statement, and returns the ids it
 * priced. Rows are locked in id order first (the lock order, docs/architecture.md), and only
 * those still UNPRICED once locked change: of two concurrent sweeps, the second waits and then
 * skips what the first priced, so each event is priced once.
 */
export async function priceStillUnpriced(
  db: Executor,
  tenantId: string,
  pricings: readonly LatePricing[],
): Promise<Set<string>> {
  if (pricings.length === 0) return new Set()
  const result = await sql<{ id: string }>`
    with v as (${unnestRows(pricings, LATE_PRICING_COLUMNS)}),
    locked as (
      select e.id from usage_events e
      where e.tenant_id = ${tenantId} and e.id in (select id from v) and e.status = 'UNPRICED'
      order by e.id collate "C"
      for update
    )
    update usage_events e set
      status = 'PRICED',
      canonical_provider = v.canonical_provider,
      canonical_model = v.canonical_model,
      lines = v.lines,
      cost = v.cost,
      amount = v.amount,
      plan_kind = v.plan_kind,
      plan_percent = v.plan_percent
    from v
    where e.tenant_id = ${tenantId} and e.id = v.id and e.status = 'UNPRICED' and e.id in (select id from locked)
    returning e.id`.execute(db)
  return new Set(result.rows.map((r) => r.id))
}

export function findEvents(db: Executor, tenantId: string, ids: readonly string[]): Promise<UsageEventRow[]> {
  if (ids.length === 0) return Promise.resolve([])
  return db.selectFrom('usage_events').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).execute()
}

/**
 * The content hash of each id whose key is stored but whose raw event is not (retention dropped its
 * partition): a replay of it is still judged against what was first recorded.
 */
export async function findArchivedKeys(
  db: Executor,
  tenantId: string,
  ids: readonly string[],
): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map()
  const rows = await db
    .selectFrom('usage_event_keys')
    .select(['id', 'content_hash'])
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', ids)
    .execute()
  return new Map(rows.map((r) => [r.id, r.content_hash]))
}

export async function addToRollups(db: Executor, rows: readonly Insertable<UsageRollupTable>[]): Promise<void> {
  if (rows.length === 0) return
  const columns = {
    ...ROLLUP_KEY,
    events: 'int8',
    unpriced_events: 'int8',
    input_tokens: 'int8',
    output_tokens: 'int8',
    cost: 'numeric',
    amount: 'numeric',
  } as const
  await sql`
    insert into usage_rollups ${columnList(columns)}
    ${unnestRows(rows, columns)}
    ${ROLLUP_ORDER}
    ${ADD_TO_ROLLUP}`.execute(db)
}

export async function addToLineRollups(db: Executor, rows: readonly Insertable<UsageLineRollupTable>[]): Promise<void> {
  if (rows.length === 0) return
  const columns = {
    ...ROLLUP_KEY,
    usage_type: 'text',
    events: 'int8',
    quantity: 'numeric',
    cost: 'numeric',
    amount: 'numeric',
  } as const
  await sql`
    insert into usage_line_rollups ${columnList(columns)}
    ${unnestRows(rows, columns)}
    ${lineRollupOrder()}
    ${ADD_TO_LINE_ROLLUP}`.execute(db)
}

/**
 * Records why events are still UNPRICED. One row per statement, outside any transaction: each
 * holds one row lock at a time, so it can never deadlock with ingest or a pricing run.
 */
export async function setUnpricedReasons(
  db: Executor,
  tenantId: string,
  reasons: readonly { id: string; reason: UnpricedReasonJson }[],
): Promise<void> {
  for (const { id, reason } of reasons) {
    await db
      .updateTable('usage_events')
      .set({ unpriced_reason: JSON.stringify(reason) })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .where('status', '=', 'UNPRICED')
      .execute()
  }
}
