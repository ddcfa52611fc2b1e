import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Tenant settings for widgets and budgets: browser origins allowed to use widget tokens (null: none
  // restricted, see widget-sessions/cors.ts) and the IANA time zone of its customers' budget periods.
  await db.schema.alterTable('tenants').addColumn('widget_origins', 'jsonb').execute()
  await db.schema
    .alterTable('tenants')
    .addColumn('budget_time_zone', 'text', (c) => c.notNull().defaultTo('UTC'))
    .execute()

  await db.schema
    .createTable('widget_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('budgets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull().check(sql`period in ('DAY', 'WEEK', 'MONTH')`))
    .addColumn('time_zone', 'text', (c) => c.notNull())
    .addColumn('limit_amount', 'numeric', (c) => c.notNull().check(sql`limit_amount > 0`))
    .addColumn('thresholds', 'jsonb', (c) => c.notNull())
    .addColumn('hard_limit', 'boolean', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    // Spend is complete (seeded from the ledger, then kept by ingest) for periods starting here or later.
    .addColumn('counted_from', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('budgets_customer_period', ['tenant_id', 'customer_id', 'period'])
    .execute()

  await db.schema
    .createTable('budget_spend')
    .addColumn('budget_id', 'text', (c) => c.notNull().references('budgets.id'))
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('spent', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('budget_spend_pk', ['budget_id', 'period_start'])
    .execute()

  await db.schema
    .createTable('budget_alerts')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('budget_id', 'text', (c) => c.notNull().references('budgets.id'))
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('THRESHOLD', 'FORECAST')`))
    .addColumn('threshold', 'integer', (c) => c.notNull())
    .addColumn('spent', 'numeric', (c) => c.notNull())
    .addColumn('limit_amount', 'numeric', (c) => c.notNull())
    .addColumn('forecast', 'numeric')
    .addColumn('triggered_at', 'timestamptz', (c) => c.notNull())
    // Exactly one alert per budget, period, kind and threshold, whatever the concurrency.
    .addUniqueConstraint('budget_alerts_once', ['budget_id', 'period_start', 'kind', 'threshold'])
    .execute()
  await db.schema
    .createIndex('budget_alerts_customer')
    .on('budget_alerts')
    .columns(['tenant_id', 'customer_id', 'triggered_at'])
    .execute()

  await db.schema
    .createTable('budget_reservations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull().check(sql`amount > 0`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('settled_at', 'timestamptz')
    .addColumn('settled_event_id', 'text')
    .addColumn('settled_amount', 'numeric')
    .execute()
  await db.schema
    .createIndex('budget_reservations_active')
    .on('budget_reservations')
    .columns(['tenant_id', 'customer_id', 'expires_at'])
    .where(sql.ref('settled_at'), 'is', null)
    .execute()

  // The reservation an event settles (not part of the event's signed canonical form).
  await db.schema.alterTable('usage_events').addColumn('reservation_id', 'text').execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('usage_events').dropColumn('reservation_id').execute()
  for (const table of ['budget_reservations', 'budget_alerts', 'budget_spend', 'budgets', 'widget_sessions']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
  await db.schema.alterTable('tenants').dropColumn('budget_time_zone').execute()
  await db.schema.alterTable('tenants').dropColumn('widget_origins').execute()
}
