import { sql, type Kysely } from 'kysely'

const AGGREGATES = 'events, unpriced_events, input_tokens, output_tokens, cost, amount'
const KEY = 'tenant_id, customer_id, bucket, provider, model, feature'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // usageSummary reads a customer's whole hours from usage_rollups by (tenant_id, customer_id,
  // bucket). Rows of all customers interleave on the heap as ingest writes them, so a month of one
  // customer (≈ 11.5k rows) sat on ≈ 7.8k heap pages. The primary key now carries the aggregate
  // columns (INCLUDE: not part of the key, so ON CONFLICT and uniqueness are unchanged) and the
  // summary is an index-only scan of ≈ 220 index pages. One index, not a second covering one: every
  // rollup upsert already maintains the key. The price: an update of the aggregates changes an
  // indexed column, so upserts of existing rows are no longer HOT (bench/RESULTS.md has the cost).
  // Built as a unique index first, then swapped in as the key in one step. The build blocks rollup
  // writes (ingest) while it runs: ≈ 2 s for 740k rollup rows; a much larger table would want the
  // index built CONCURRENTLY by hand before this migration runs (it then only swaps the key).
  await sql
    .raw(
      `create unique index if not exists usage_rollups_pk_covering on usage_rollups (${KEY}) include (${AGGREGATES})`,
    )
    .execute(db)
  await sql`alter table usage_rollups drop constraint usage_rollups_pk`.execute(db)
  await sql`alter table usage_rollups add constraint usage_rollups_pk primary key using index usage_rollups_pk_covering`.execute(
    db,
  )
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql.raw(`create unique index usage_rollups_pk_plain on usage_rollups (${KEY})`).execute(db)
  await sql`alter table usage_rollups drop constraint usage_rollups_pk`.execute(db)
  await sql`alter table usage_rollups add constraint usage_rollups_pk primary key using index usage_rollups_pk_plain`.execute(
    db,
  )
}
