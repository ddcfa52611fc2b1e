import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // One row per customer and billing period (UTC month) whose applied credits Stripe must hear
  // about: ingest and billed changes set `dirty` in the transaction that consumes credits; the
  // pusher leases a row, plans Stripe credit grants from the credit ledger and sends them.
  await db.schema
    .createTable('stripe_credit_state')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('dirty', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('next_seq', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'timestamptz')
    .addPrimaryKeyConstraint('stripe_credit_state_pk', ['tenant_id', 'customer_id', 'period_start'])
    .execute()

  // The Stripe calls that make Stripe's credit grants for a period add up to what our ledger
  // applied to it: GRANT creates a billing credit grant of `amount_minor`, VOID voids the grant
  // made by the push `voids`. Recorded before the call; sent in `seq` order per state.
  await db.schema
    .createTable('stripe_credit_pushes')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('identifier', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('GRANT', 'VOID')`))
    .addColumn('category', 'text', (c) => c.notNull().check(sql`category in ('PAID', 'PROMOTIONAL')`))
    .addColumn('amount_minor', 'bigint', (c) => c.notNull().check(sql`amount_minor > 0`))
    .addColumn('voids', 'text')
    .addColumn('stripe_customer_id', 'text', (c) => c.notNull())
    .addColumn('stripe_grant_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('PENDING', 'SENT', 'FAILED', 'CANCELLED')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addPrimaryKeyConstraint('stripe_credit_pushes_pk', ['tenant_id', 'identifier'])
    .execute()
  await db.schema
    .createIndex('stripe_credit_pushes_state')
    .on('stripe_credit_pushes')
    .columns(['tenant_id', 'customer_id', 'period_start', 'seq'])
    .unique()
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('stripe_credit_pushes').execute()
  await db.schema.dropTable('stripe_credit_state').execute()
}
