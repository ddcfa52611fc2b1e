import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Tenants' provider admin keys (usage and cost reports), sealed like the gateway's keys; never returned.
  await db.schema
    .createTable('provider_admin_keys')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('provider', 'text', (c) => c.notNull().check(sql`provider in ('openai', 'anthropic', 'openrouter')`))
    .addColumn('key_enc', 'text', (c) => c.notNull())
    .addColumn('key_hint', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_import_at', 'timestamptz')
    .addColumn('last_import_error', 'text')
    .addPrimaryKeyConstraint('provider_admin_keys_pk', ['tenant_id', 'provider'])
    .execute()

  await db.schema
    .createTable('reconciliation_settings')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    // A difference within this percent of the larger side is MATCHED.
    .addColumn('tolerance_percent', 'numeric', (c) =>
      c.notNull().check(sql`tolerance_percent >= 0 and tolerance_percent <= 100`),
    )
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()

  // What providers reported, append-only: one row per revision of a provider bucket. A re-import
  // that reports a bucket unchanged writes nothing; a changed one adds revision n+1.
  await db.schema
    .createTable('provider_usage_revisions')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('provider', 'text', (c) => c.notNull())
    // usage | cost | generation | credits
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('bucket_start', 'timestamptz', (c) => c.notNull())
    .addColumn('bucket_width', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('usage_type', 'text', (c) => c.notNull())
    // The provider's own line (cost line item, generation id); '' for none.
    .addColumn('line', 'text', (c) => c.notNull())
    .addColumn('revision', 'integer', (c) => c.notNull())
    .addColumn('quantity', 'numeric')
    .addColumn('cost', 'numeric')
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('imported_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('provider_usage_revisions_once', [
      'tenant_id',
      'provider',
      'source',
      'bucket_start',
      'bucket_width',
      'model',
      'usage_type',
      'line',
      'revision',
    ])
    .execute()

  // One alert per tenant, provider, UTC day and kind, however often reconciliation runs.
  await db.schema
    .createTable('reconciliation_alerts')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('day', 'timestamptz', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('raised_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('reconciliation_alerts_once', ['tenant_id', 'provider', 'day', 'kind'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'reconciliation_alerts',
    'provider_usage_revisions',
    'reconciliation_settings',
    'provider_admin_keys',
  ]) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
