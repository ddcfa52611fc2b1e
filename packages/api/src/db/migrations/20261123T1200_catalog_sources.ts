import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Every applied catalog change, public (tenant_id null) or a tenant's negotiated price.
  await db.schema
    .createTable('price_change_log')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('usage_type', 'text', (c) => c.notNull())
    .addColumn('old_unit_price', 'numeric')
    .addColumn('new_unit_price', 'numeric')
    .addColumn('effective_from', 'timestamptz', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('price_id', 'bigint')
    .addColumn('changed_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('price_change_log_model')
    .on('price_change_log')
    .columns(['provider', 'model', 'id'])
    .execute()
  await db.schema.createIndex('price_change_log_tenant').on('price_change_log').columns(['tenant_id', 'id']).execute()

  // Price moves beyond the safety ratio, held until someone confirms them. One pending row per timeline.
  await db.schema
    .createTable('catalog_pending_changes')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('usage_type', 'text', (c) => c.notNull())
    .addColumn('time_window', 'text', (c) => c.notNull())
    .addColumn('old_unit_price', 'numeric', (c) => c.notNull())
    .addColumn('new_unit_price', 'numeric', (c) => c.notNull())
    .addColumn('prices', 'jsonb', (c) => c.notNull())
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('PENDING', 'CONFIRMED', 'REJECTED')`))
    .addColumn('resolved_at', 'timestamptz')
    .execute()
  await sql`create unique index catalog_pending_changes_open on catalog_pending_changes (source, provider, model, usage_type, time_window) where status = 'PENDING'`.execute(
    db,
  )

  // Per source: the poller's lease (one process syncs a source at a time), backoff and last outcome.
  await db.schema
    .createTable('catalog_source_state')
    .addColumn('source', 'text', (c) => c.primaryKey())
    .addColumn('lease_until', 'timestamptz')
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_attempt_at', 'timestamptz')
    .addColumn('last_success_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('last_summary', 'jsonb')
    .execute()

  // Re-pricing never edits a billed event: a correction records old and new lines side by side.
  await db.schema
    .createTable('usage_corrections')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('ts', 'timestamptz', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('feature', 'text', (c) => c.notNull())
    .addColumn('old_lines', 'jsonb', (c) => c.notNull())
    .addColumn('new_lines', 'jsonb', (c) => c.notNull())
    .addColumn('old_cost', 'numeric', (c) => c.notNull())
    .addColumn('new_cost', 'numeric', (c) => c.notNull())
    .addColumn('old_amount', 'numeric', (c) => c.notNull())
    .addColumn('new_amount', 'numeric', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('usage_corrections_event')
    .on('usage_corrections')
    .columns(['tenant_id', 'event_id', 'id'])
    .execute()
  await db.schema
    .createIndex('usage_corrections_tenant_time')
    .on('usage_corrections')
    .columns(['tenant_id', 'ts'])
    .execute()
  await db.schema
    .createIndex('usage_events_unpriced')
    .on('usage_events')
    .columns(['tenant_id', 'model'])
    .where(sql.ref('status'), '=', 'UNPRICED')
    .execute()
  await db.schema
    .createIndex('price_catalog_tenant')
    .on('price_catalog')
    .columns(['tenant_id', 'provider', 'model'])
    .where(sql.ref('tenant_id'), 'is not', null)
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('price_catalog_tenant').ifExists().execute()
  await db.schema.dropIndex('usage_events_unpriced').ifExists().execute()
  for (const table of ['usage_corrections', 'catalog_source_state', 'catalog_pending_changes', 'price_change_log']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
