import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('api_key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('api_key_prefix', 'text', (c) => c.notNull())
    .addColumn('signing_secret', 'text', (c) => c.notNull())
    .addColumn('require_signatures', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('USD'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('customers')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('stripe_customer_id', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('customers_pk', ['tenant_id', 'id'])
    .execute()

  await db.schema
    .createTable('pricing_plans')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('MARKUP', 'MARGIN')`))
    .addColumn('percent', 'numeric', (c) => c.notNull())
    .addColumn('effective_from', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('pricing_plans_margin_below_100', sql`kind <> 'MARGIN' or percent < 100`)
    .addCheckConstraint('pricing_plans_percent_non_negative', sql`percent >= 0`)
    .execute()
  await db.schema
    .createIndex('pricing_plans_lookup')
    .on('pricing_plans')
    .columns(['tenant_id', 'customer_id', 'effective_from'])
    .execute()

  await db.schema
    .createTable('price_catalog')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('usage_type', 'text', (c) => c.notNull())
    .addColumn('unit', 'text', (c) => c.notNull())
    .addColumn('unit_price', 'numeric', (c) => c.notNull().check(sql`unit_price >= 0`))
    .addColumn('currency', 'text', (c) => c.notNull().defaultTo('USD'))
    .addColumn('tiers', 'jsonb')
    .addColumn('time_window', 'jsonb')
    .addColumn('effective_from', 'timestamptz', (c) => c.notNull())
    .addColumn('effective_to', 'timestamptz')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addCheckConstraint('price_catalog_period', sql`effective_to is null or effective_to > effective_from`)
    .execute()
  await db.schema
    .createIndex('price_catalog_lookup')
    .on('price_catalog')
    .columns(['provider', 'model', 'usage_type', 'effective_from'])
    .execute()

  await db.schema
    .createTable('catalog_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.insertInto('catalog_state').values({ id: 1, version: 0 }).execute()

  await db.schema
    .createTable('usage_events')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('provider', 'text')
    .addColumn('canonical_provider', 'text')
    .addColumn('canonical_model', 'text')
    .addColumn('ts', 'timestamptz', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('PRICED', 'UNPRICED')`))
    .addColumn('cost', 'numeric')
    .addColumn('amount', 'numeric')
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cache_write_tokens', 'bigint', (c) => c.notNull())
    .addColumn('reasoning_tokens', 'bigint', (c) => c.notNull())
    .addColumn('units', 'jsonb')
    .addColumn('feature', 'text')
    .addColumn('metadata', 'jsonb')
    .addColumn('lines', 'jsonb', (c) => c.notNull())
    .addColumn('plan_kind', 'text')
    .addColumn('plan_percent', 'numeric')
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_events_pk', ['tenant_id', 'id'])
    .addForeignKeyConstraint('usage_events_customer_fk', ['tenant_id', 'customer_id'], 'customers', ['tenant_id', 'id'])
    .execute()
  await db.schema
    .createIndex('usage_events_customer_time')
    .on('usage_events')
    .columns(['tenant_id', 'customer_id', 'ts', 'id'])
    .execute()
  await db.schema.createIndex('usage_events_tenant_time').on('usage_events').columns(['tenant_id', 'ts']).execute()

  const rollupKey = ['tenant_id', 'customer_id', 'bucket', 'provider', 'model', 'feature'] as const
  await db.schema
    .createTable('usage_rollups')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('bucket', 'timestamptz', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('feature', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('unpriced_events', 'bigint', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_rollups_pk', [...rollupKey])
    .execute()
  await db.schema
    .createTable('usage_line_rollups')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('bucket', 'timestamptz', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('feature', 'text', (c) => c.notNull())
    .addColumn('usage_type', 'text', (c) => c.notNull())
    .addColumn('events', 'bigint', (c) => c.notNull())
    .addColumn('quantity', 'numeric', (c) => c.notNull())
    .addColumn('cost', 'numeric', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_line_rollups_pk', [...rollupKey, 'usage_type'])
    .execute()
  // Tenant-wide summaries (no customerId) read by tenant and bucket.
  await db.schema
    .createIndex('usage_rollups_tenant_bucket')
    .on('usage_rollups')
    .columns(['tenant_id', 'bucket'])
    .execute()
  await db.schema
    .createIndex('usage_line_rollups_tenant_bucket')
    .on('usage_line_rollups')
    .columns(['tenant_id', 'bucket'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'usage_line_rollups',
    'usage_rollups',
    'usage_events',
    'catalog_state',
    'price_catalog',
    'pricing_plans',
    'customers',
    'tenants',
  ]) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
