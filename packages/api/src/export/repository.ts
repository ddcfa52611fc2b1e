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
