import { sql } from 'kysely'
import type { Executor } from '../db/database.ts'

/** One exported usage event: every column as text (exact decimals, ISO timestamps, JSON as text). */
export type ExportRow = Record<(typeof EXPORT_COLUMNS)[number], string | null>

/** The columns written, in order, with their DuckDB type in the Parquet file. */
export const EXPORT_COLUMN_TYPES = {
  tenant_id: 'VARCHAR',
  id: 'VARCHAR',
  customer_id: 'VARCHAR',
  ts: 'TIMESTAMPTZ',
  received_at: 'TIMESTAMPTZ',
  model: 'VARCHAR',
  provider: 'VARCHAR',
  canonical_provider: 'VARCHAR',
  canonical_model: 'VARCHAR',
  status: 'VARCHAR',
  cost: 'DECIMAL(38,18)',
  amount: 'DECIMAL(38,18)',
  currency: 'VARCHAR',
  input_tokens: 'BIGINT',
  output_tokens: 'BIGINT',
  cache_read_tokens: 'BIGINT',
  cache_write_tokens: 'BIGINT',
  reasoning_tokens: 'BIGINT',
  feature: 'VARCHAR',
  lines: 'VARCHAR',
  plan_kind: 'VARCHAR',
  plan_percent: 'VARCHAR',
  content_hash: 'VARCHAR',
} as const
export const EXPORT_COLUMNS = Object.keys(EXPORT_COLUMN_TYPES) as (keyof typeof EXPORT_COLUMN_TYPES)[]

const SELECT_LIST = sql.join(
  EXPORT_COLUMNS.map((c) =>
    c === 'ts' || c === 'received_at'
      ? sql`to_char(${sql.ref(c)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ${sql.ref(c)}`
      : sql`${sql.ref(c)}::text as ${sql.ref(c)}`,
  ),
)

export interface RowsFilter {
  /** A table: usage_events, or a (detached) month partition. */
  table: string
  /** Only this tenant's rows (tenant exports); all tenants for retention. */
  tenantId?: string
  from: Date
  to: Date
}

/**
 * The rows of `filter`, in (ts, tenant_id, id) order, a page at a time (keyset), so a month of a
 * busy ledger never sits in memory at once.
 */
export async function* readRows(db: Executor, filter: RowsFilter, pageSize = 10_000): AsyncGenerator<ExportRow[]> {
  let after: { ts: string; tenant: string; id: string } | null = null
  for (;;) {
    const page: { rows: ExportRow[] } = await sql<ExportRow>`
      select ${SELECT_LIST} from ${sql.table(filter.table)}
      where ts >= ${filter.from.toISOString()}::timestamptz and ts < ${filter.to.toISOString()}::timestamptz
        ${filter.tenantId === undefined ? sql`` : sql`and tenant_id = ${filter.tenantId}`}
        ${after === null ? sql`` : sql`and (ts, tenant_id collate "C", id collate "C") > (${after.ts}::timestamptz, ${after.tenant} collate "C", ${after.id} collate "C")`}
      order by ts, tenant_id collate "C", id collate "C"
      limit ${pageSize}`.execute(db)
    if (page.rows.length === 0) return
    yield page.rows
    const last = page.rows[page.rows.length - 1]!
    after = { ts: last.ts!, tenant: last.tenant_id!, id: last.id! }
    if (page.rows.length < pageSize) return
  }
}

/** One billed line of an exported event (its `lines`, one row each): the line items beside the events. */
export type LineItemRow = Record<(typeof LINE_ITEM_COLUMNS)[number], string | null>

export const LINE_ITEM_COLUMN_TYPES = {
  tenant_id: 'VARCHAR',
  event_id: 'VARCHAR',
  line: 'INTEGER',
  customer_id: 'VARCHAR',
  ts: 'TIMESTAMPTZ',
  provider: 'VARCHAR',
  model: 'VARCHAR',
  feature: 'VARCHAR',
  usage_type: 'VARCHAR',
  quantity: 'DECIMAL(38,18)',
  unit_price: 'DECIMAL(38,18)',
  cost: 'DECIMAL(38,18)',
  amount: 'DECIMAL(38,18)',
  currency: 'VARCHAR',
  price_id: 'VARCHAR',
} as const
export const LINE_ITEM_COLUMNS = Object.keys(LINE_ITEM_COLUMN_TYPES) as (keyof typeof LINE_ITEM_COLUMN_TYPES)[]

interface StoredLine {
  usageType: string
  quantity: string
  unitPrice: string
  cost: string
  amount: string
  priceId: string
}

/** The line items of one exported event, from its `lines` JSON text (decimal strings stay strings: exact). */
export function lineItemsOf(row: ExportRow): LineItemRow[] {
  const lines = row.lines ? (JSON.parse(row.lines) as StoredLine[] | null) : null
  if (!Array.isArray(lines)) return []
  return lines.map((l, i) => ({
    tenant_id: row.tenant_id,
    event_id: row.id,
    line: String(i + 1),
    customer_id: row.customer_id,
    ts: row.ts,
    provider: row.provider,
    model: row.model,
    feature: row.feature,
    usage_type: l.usageType,
    quantity: l.quantity,
    unit_price: l.unitPrice,
    cost: l.cost,
    amount: l.amount,
    currency: row.currency,
    price_id: l.priceId,
  }))
}

/** Count and exact sums of the billed lines of `filter`'s rows, to compare with the line item files. */
export async function lineItemTotalsOf(
  db: Executor,
  filter: RowsFilter,
): Promise<{ rows: number; amount: string; cost: string }> {
  const r = await sql<{ rows: string; amount: string; cost: string }>`
    select count(*)::text as rows, coalesce(sum((l.line ->> 'amount')::numeric), 0)::text as amount,
      coalesce(sum((l.line ->> 'cost')::numeric), 0)::text as cost
    from ${sql.table(filter.table)} e
      cross join lateral jsonb_array_elements(case when jsonb_typeof(e.lines) = 'array' then e.lines else '[]'::jsonb end) as l(line)
    where e.ts >= ${filter.from.toISOString()}::timestamptz and e.ts < ${filter.to.toISOString()}::timestamptz
      ${filter.tenantId === undefined ? sql`` : sql`and e.tenant_id = ${filter.tenantId}`}`.execute(db)
  const row = r.rows[0]!
  return { rows: Number(row.rows), amount: row.amount, cost: row.cost }
}

/** Count and exact sums of `filter`'s rows, to compare with what the files hold. */
export async function totalsOf(
  db: Executor,
  filter: RowsFilter,
): Promise<{ rows: number; amount: string; cost: string }> {
  const r = await sql<{ rows: string; amount: string; cost: string }>`
    select count(*)::text as rows, coalesce(sum(amount), 0)::text as amount, coalesce(sum(cost), 0)::text as cost
    from ${sql.table(filter.table)}
    where ts >= ${filter.from.toISOString()}::timestamptz and ts < ${filter.to.toISOString()}::timestamptz
      ${filter.tenantId === undefined ? sql`` : sql`and tenant_id = ${filter.tenantId}`}`.execute(db)
  const row = r.rows[0]!
  return { rows: Number(row.rows), amount: row.amount, cost: row.cost }
}

/** A row of export_jobs (startUsageExport). */
export interface ExportJobRow {
  tenant_id: string
  id: string
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED'
  target: 'SERVER' | 'S3'
  range_from: Date
  range_to: Date
  rows_total: number | null
  rows_done: number
  attempts: number
  lease_until: Date | null
  location: string | null
  manifest: Record<string, unknown> | null
  error: string | null
  created_at: Date
  started_at: Date | null
  finished_at: Date | null
}

const jobRow = (r: Record<string, unknown>): ExportJobRow => ({
  ...(r as unknown as ExportJobRow),
  rows_total: r.rows_total === null ? null : Number(r.rows_total),
  rows_done: Number(r.rows_done),
  attempts: Number(r.attempts),
})

export async function insertJob(
  db: Executor,
  job: { tenantId: string; id: string; target: 'SERVER' | 'S3'; from: Date; to: Date; now: Date },
): Promise<ExportJobRow> {
  const row = await db
    .insertInto('export_jobs')
    .values({
      tenant_id: job.tenantId,
      id: job.id,
      status: 'QUEUED',
      target: job.target,
      range_from: job.from,
      range_to: job.to,
      created_at: job.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return jobRow(row)
}

/** One job of one tenant (never another tenant's: the key is (tenant_id, id)). */
export async function findJob(db: Executor, tenantId: string, id: string): Promise<ExportJobRow | null> {
  const row = await db
    .selectFrom('export_jobs')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst()
  return row ? jobRow(row) : null
}

/** A tenant's jobs, newest first, `limit` after the keyset position `after` (createdAt, id). */
export async function listJobs(
  db: Executor,
  tenantId: string,
  page: { limit: number; after: { at: Date; id: string } | null },
): Promise<ExportJobRow[]> {
  let q = db.selectFrom('export_jobs').selectAll().where('tenant_id', '=', tenantId)
  if (page.after) {
    const { at, id } = page.after
    q = q.where((eb) => eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', id)])]))
  }
  const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).execute()
  return rows.map(jobRow)
}

/**
 * Takes the oldest job that is queued, or running under a lease that ran out (its process stopped),
 * while it has attempts left: RUNNING, one more attempt, leased until `leaseUntil`. SKIP LOCKED keeps
 * processes apart.
 */
export async function claimJob(
  db: Executor,
  { now, leaseUntil, maxAttempts }: { now: Date; leaseUntil: Date; maxAttempts: number },
): Promise<ExportJobRow | null> {
  const r = await sql<Record<string, unknown>>`
    update export_jobs j set status = 'RUNNING', attempts = j.attempts + 1, lease_until = ${leaseUntil},
      started_at = coalesce(j.started_at, ${now}), rows_done = 0, error = null
    from (
      select tenant_id, id from export_jobs
      where (status = 'QUEUED' or (status = 'RUNNING' and lease_until < ${now})) and attempts < ${maxAttempts}
      order by created_at, id
      limit 1
      for update skip locked
    ) next
    where j.tenant_id = next.tenant_id and j.id = next.id
    returning j.*`.execute(db)
  return r.rows[0] ? jobRow(r.rows[0]) : null
}

/** Running jobs whose lease ran out after their last attempt: FAILED with the reason. */
export async function failAbandonedJobs(
  db: Executor,
  { now, maxAttempts }: { now: Date; maxAttempts: number },
): Promise<ExportJobRow[]> {
  const r = await sql<Record<string, unknown>>`
    update export_jobs set status = 'FAILED', finished_at = ${now}, lease_until = null,
      error = 'the API process running it stopped before it finished, ' || attempts || ' attempt(s); start a new export'
    where status = 'RUNNING' and lease_until < ${now} and attempts >= ${maxAttempts}
    returning *`.execute(db)
  return r.rows.map(jobRow)
}

/** Progress of a running attempt (and a longer lease); false when the job is no longer this attempt's. */
export async function touchJob(
  db: Executor,
  job: { tenantId: string; id: string; attempt: number },
  set: { rowsDone?: number; rowsTotal?: number; leaseUntil: Date },
): Promise<boolean> {
  const r = await db
    .updateTable('export_jobs')
    .set({
      lease_until: set.leaseUntil,
      ...(set.rowsDone === undefined ? {} : { rows_done: set.rowsDone }),
      ...(set.rowsTotal === undefined ? {} : { rows_total: set.rowsTotal }),
    })
    .where('tenant_id', '=', job.tenantId)
    .where('id', '=', job.id)
    .where('attempts', '=', job.attempt)
    .where('status', '=', 'RUNNING')
    .executeTakeFirst()
  return Number(r.numUpdatedRows) > 0
}

/** The end of an attempt: SUCCEEDED with its manifest and location, or FAILED with the error. */
export async function finishJob(
  db: Executor,
  job: { tenantId: string; id: string; attempt: number },
  end:
    | { status: 'SUCCEEDED'; at: Date; location: string; manifest: Record<string, unknown>; rows: number }
    | { status: 'FAILED'; at: Date; error: string },
): Promise<void> {
  await db
    .updateTable('export_jobs')
    .set(
      end.status === 'SUCCEEDED'
        ? {
            status: 'SUCCEEDED',
            finished_at: end.at,
            lease_until: null,
            location: end.location,
            manifest: JSON.stringify(end.manifest),
            rows_done: end.rows,
          }
        : { status: 'FAILED', finished_at: end.at, lease_until: null, error: end.error },
    )
    .where('tenant_id', '=', job.tenantId)
    .where('id', '=', job.id)
    .where('attempts', '=', job.attempt)
    .where('status', '=', 'RUNNING')
    .execute()
}

export interface RetentionRunRow {
  id: string
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED'
  keep_months: number
  archive: string
  started_at: Date
  lease_until: Date
  finished_at: Date | null
  report: Record<string, unknown> | null
  error: string | null
}

/** Runs whose process died (lease over): FAILED, so a new run may start. */
export async function failAbandonedRetentionRuns(db: Executor, now: Date): Promise<number> {
  const r = await db
    .updateTable('retention_runs')
    .set({ status: 'FAILED', finished_at: now, error: 'the API process running it stopped before it finished' })
    .where('status', '=', 'RUNNING')
    .where('lease_until', '<', now)
    .executeTakeFirst()
  return Number(r.numUpdatedRows)
}

/** Starts a run, or null while another process runs one (the one-RUNNING unique index). */
export async function beginRetentionRun(
  db: Executor,
  run: { id: string; keepMonths: number; archive: string; now: Date; leaseUntil: Date },
): Promise<boolean> {
  const r = await db
    .insertInto('retention_runs')
    .values({
      id: run.id,
      status: 'RUNNING',
      keep_months: run.keepMonths,
      archive: run.archive,
      started_at: run.now,
      lease_until: run.leaseUntil,
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst()
  return Number(r.numInsertedOrUpdatedRows ?? 0) > 0
}

export async function endRetentionRun(
  db: Executor,
  id: string,
  end:
    { status: 'SUCCEEDED'; at: Date; report: Record<string, unknown> } | { status: 'FAILED'; at: Date; error: string },
): Promise<void> {
  await db
    .updateTable('retention_runs')
    .set(
      end.status === 'SUCCEEDED'
        ? { status: 'SUCCEEDED', finished_at: end.at, report: JSON.stringify(end.report) }
        : { status: 'FAILED', finished_at: end.at, error: end.error },
    )
    .where('id', '=', id)
    .execute()
}

/** The latest runs, newest first (started_at, id), after a keyset position when paging. */
export async function latestRetentionRuns(
  db: Executor,
  limit: number,
  after: { at: Date; id: string } | null = null,
): Promise<RetentionRunRow[]> {
  let q = db.selectFrom('retention_runs').selectAll()
  if (after)
    q = q.where((eb) =>
      eb.or([eb('started_at', '<', after.at), eb.and([eb('started_at', '=', after.at), eb('id', '<', after.id)])]),
    )
  const rows = await q.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute()
  return rows.map((r) => ({ ...r, keep_months: Number(r.keep_months) }) as RetentionRunRow)
}
