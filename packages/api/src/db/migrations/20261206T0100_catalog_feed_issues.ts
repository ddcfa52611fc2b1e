import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // One row per sync of a whole public source (API poll, syncSource or the CLI), with its counts.
  await db.schema
    .createTable('catalog_sync_runs')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz', (c) => c.notNull())
    .addColumn('models', 'integer', (c) => c.notNull())
    .addColumn('rows_opened', 'integer', (c) => c.notNull())
    .addColumn('rows_closed', 'integer', (c) => c.notNull())
    .addColumn('unchanged', 'integer', (c) => c.notNull())
    .addColumn('held', 'integer', (c) => c.notNull())
    .addColumn('rejected', 'integer', (c) => c.notNull())
    .addColumn('skipped', 'integer', (c) => c.notNull())
    .addColumn('corrections', 'integer', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('catalog_sync_runs_source').on('catalog_sync_runs').columns(['source', 'id']).execute()

  // What a feed stated that became no catalog row: a rejected value or a skipped entry/unit, once per feed version.
  await db.schema
    .createTable('catalog_feed_issues')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('sync_run_id', 'bigint', (c) => c.notNull().references('catalog_sync_runs.id'))
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('REJECTED', 'SKIPPED')`))
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('field', 'text')
    .addColumn('raw_value', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('catalog_feed_issues_version')
    .on('catalog_feed_issues')
    .columns(['source', 'source_version', 'id'])
    .execute()
  await db.schema
    .createIndex('catalog_feed_issues_run')
    .on('catalog_feed_issues')
    .columns(['sync_run_id', 'id'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('catalog_feed_issues').ifExists().execute()
  await db.schema.dropTable('catalog_sync_runs').ifExists().execute()
}
