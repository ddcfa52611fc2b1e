import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Exports started by startUsageExport, run in the background by any API process (claimed with a lease,
  // so a job whose process died is picked up again, or failed with a reason after its last attempt).
  await db.schema
    .createTable('export_jobs')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')`))
    .addColumn('target', 'text', (c) => c.notNull().check(sql`target in ('SERVER', 'S3')`))
    .addColumn('range_from', 'timestamptz', (c) => c.notNull())
    .addColumn('range_to', 'timestamptz', (c) => c.notNull())
    .addColumn('rows_total', 'bigint')
    .addColumn('rows_done', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_until', 'timestamptz')
    .addColumn('location', 'text')
    .addColumn('manifest', 'jsonb')
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addPrimaryKeyConstraint('export_jobs_pkey', ['tenant_id', 'id'])
    .execute()
  await db.schema
    .createIndex('export_jobs_by_created')
    .on('export_jobs')
    .columns(['tenant_id', 'created_at', 'id'])
    .execute()
  await sql`create index export_jobs_open on export_jobs (created_at) where status in ('QUEUED', 'RUNNING')`.execute(db)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('export_jobs').execute()
}
