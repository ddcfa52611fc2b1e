import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Where the widget sends a customer to buy more credits (null: no top-up link shown).
  await db.schema.alterTable('tenants').addColumn('credit_top_up_url', 'text').execute()

  // Prepaid credit grants. `remaining` is what the ledger below adds up to for the grant, kept on
  // the row so a consumer locks one row per grant (FOR UPDATE) and draws down without summing.
  await db.schema
    .createTable('credit_grants')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull().check(sql`amount > 0`))
    .addColumn('remaining', 'numeric', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull().check(sql`category in ('PAID', 'PROMOTIONAL')`))
    .addColumn('priority', 'integer', (c) => c.notNull().check(sql`priority between 0 and 100`))
    .addColumn('effective_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz')
    // null: all usage; else { models: [glob…], features: [name…] } (an event in either list is covered).
    .addColumn('scope', 'jsonb')
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('MUTATION', 'STRIPE_CHECKOUT')`))
    .addColumn('idempotency_key', 'text', (c) => c.notNull())
    .addColumn('low_balance_threshold', 'numeric')
    .addColumn('description', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('credit_grants_pk', ['tenant_id', 'id'])
    .addUniqueConstraint('credit_grants_idempotency', ['tenant_id', 'idempotency_key'])
    .addCheckConstraint('credit_grants_remaining', sql`remaining >= 0 and remaining <= amount`)
    .execute()
  await db.schema
    .createIndex('credit_grants_customer')
    .on('credit_grants')
    .columns(['tenant_id', 'customer_id', 'id'])
    .execute()

  // Append-only: every change of a grant's remaining amount, signed (GRANT and REVERSAL add,
  // CONSUMPTION and EXPIRY subtract), with the grant's remaining amount after it.
  await db.schema
    .createTable('credit_ledger')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('grant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('GRANT', 'CONSUMPTION', 'EXPIRY', 'REVERSAL')`))
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addColumn('balance_after', 'numeric', (c) => c.notNull())
    // CONSUMPTION and REVERSAL: the usage event and, for billed changes, the change's key.
    .addColumn('event_id', 'text')
    .addColumn('change_key', 'text')
    .addColumn('usage_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('credit_ledger_pk', ['tenant_id', 'id'])
    .addForeignKeyConstraint('credit_ledger_grant', ['tenant_id', 'grant_id'], 'credit_grants', ['tenant_id', 'id'])
    .execute()
  await db.schema
    .createIndex('credit_ledger_customer')
    .on('credit_ledger')
    .columns(['tenant_id', 'customer_id', 'id'])
    .execute()
  await db.schema
    .createIndex('credit_ledger_event')
    .on('credit_ledger')
    .columns(['tenant_id', 'event_id'])
    .where(sql.ref('event_id'), 'is not', null)
    .execute()

  // A customer's low-balance threshold on its total credit balance (per grant: on the grant).
  await db.schema
    .createTable('credit_settings')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('low_balance_threshold', 'numeric')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('credit_settings_pk', ['tenant_id', 'customer_id'])
    .execute()

  // Alerts raised when a balance crosses a threshold downwards (once per crossing: the consuming
  // transaction holds every open grant of the customer, so exactly one sees a crossing).
  await db.schema
    .createTable('credit_alerts')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('id', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    // null: the customer's total balance; else that grant's remaining amount.
    .addColumn('grant_id', 'text')
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('LOW_BALANCE', 'ZERO_BALANCE')`))
    .addColumn('threshold', 'numeric', (c) => c.notNull())
    .addColumn('balance', 'numeric', (c) => c.notNull())
    .addColumn('triggered_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('credit_alerts_pk', ['tenant_id', 'id'])
    .execute()
  await db.schema
    .createIndex('credit_alerts_customer')
    .on('credit_alerts')
    .columns(['tenant_id', 'customer_id', 'id'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['credit_alerts', 'credit_settings', 'credit_ledger', 'credit_grants'])
    await db.schema.dropTable(table).ifExists().execute()
  await db.schema.alterTable('tenants').dropColumn('credit_top_up_url').execute()
}
