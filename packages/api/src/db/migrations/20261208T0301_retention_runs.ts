import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Scheduled retention runs (RETENTION_RAW_EVENTS_MONTHS): what each run dropped and kept, and at most one
  // RUNNING at a time across API processes (the partial unique index); a run whose process died is failed
  // once its lease ends.
  await db.schema
    .createTable('retention_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('RUNNING', 'SUCCEEDED', 'FAILED')`))
    .addColumn('keep_months', 'integer', (c) => c.notNull())
    .addColumn('archive', 'text', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .addColumn('report', 'jsonb')
    .addColumn('error', 'text')
    .execute()
  await sql`create unique index retention_runs_one_running on retention_runs ((true)) where status = 'RUNNING'`.execute(
    db,
  )
  await db.schema.createIndex('retention_runs_by_start').on('retention_runs').columns(['started_at']).execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('retention_runs').execute()
}
