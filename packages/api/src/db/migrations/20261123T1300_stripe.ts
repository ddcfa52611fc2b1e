import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // One Stripe account per tenant: the secret key and webhook secret are AES-256-GCM ciphertexts.
  await db.schema
    .createTable('stripe_accounts')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('secret_key_enc', 'text', (c) => c.notNull())
    .addColumn('key_hint', 'text', (c) => c.notNull())
    .addColumn('webhook_secret_enc', 'text')
    .addColumn('mode', 'text', (c) =>
      c
        .notNull()
        .defaultTo('AMOUNT')
        .check(sql`mode in ('AMOUNT', 'ITEMIZED')`),
    )
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('units_per_major', 'numeric', (c) => c.notNull())
    .addColumn('event_name', 'text')
    .addColumn('meter_id', 'text')
    .addColumn('product_id', 'text')
    .addColumn('price_id', 'text')
    .addColumn('setup_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  // Written in the ingest transaction: one row per newly stored priced event (per dimension in
  // ITEMIZED mode). planned_at is set when the row's amount has been folded into a push.
  await db.schema
    .createTable('stripe_outbox')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('dimension', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('amount', 'numeric', (c) => c.notNull())
    .addColumn('planned_at', 'timestamptz')
    .addColumn('push_identifier', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('stripe_outbox_pk', ['tenant_id', 'event_id', 'dimension'])
    .execute()
  await sql`create index stripe_outbox_unplanned on stripe_outbox (tenant_id, customer_id, dimension, window_start) where planned_at is null`.execute(
    db,
  )

  // Per (tenant, customer, dimension): the sub-unit residue carried forward, the next push
  // sequence number, and the lease that keeps one pusher (one Stripe call) per customer and meter.
  await db.schema
    .createTable('stripe_push_state')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('dimension', 'text', (c) => c.notNull())
    .addColumn('residue', 'numeric', (c) => c.notNull().defaultTo(0))
    .addColumn('next_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'timestamptz')
    .addPrimaryKeyConstraint('stripe_push_state_pk', ['tenant_id', 'customer_id', 'dimension'])
    .execute()

  // Every meter event we intend to send, with its deterministic identifier, before it is sent.
  await db.schema
    .createTable('stripe_pushes')
    .addColumn('identifier', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('dimension', 'text', (c) => c.notNull())
    .addColumn('stripe_customer_id', 'text', (c) => c.notNull())
    .addColumn('event_name', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('PENDING', 'SENT', 'FAILED', 'EXPIRED', 'SUPERSEDED')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addColumn('retry_of', 'text')
    .execute()
  await db.schema
    .createIndex('stripe_pushes_group')
    .on('stripe_pushes')
    .columns(['tenant_id', 'customer_id', 'dimension', 'seq'])
    .execute()
  await sql`create index stripe_pushes_pending on stripe_pushes (next_attempt_at) where status = 'PENDING'`.execute(db)

  await db.schema
    .createTable('stripe_invoices')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('invoice_id', 'text', (c) => c.notNull())
    .addColumn('stripe_customer_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text')
    .addColumn('status', 'text')
    .addColumn('currency', 'text')
    .addColumn('total', 'bigint')
    .addColumn('period_start', 'timestamptz')
    .addColumn('period_end', 'timestamptz')
    .addColumn('hosted_invoice_url', 'text')
    .addColumn('event_created', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('stripe_invoices_pk', ['tenant_id', 'invoice_id'])
    .execute()

  await db.schema
    .createTable('stripe_webhook_events')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('stripe_webhook_events_pk', ['tenant_id', 'event_id'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'stripe_webhook_events',
    'stripe_invoices',
    'stripe_pushes',
    'stripe_push_state',
    'stripe_outbox',
    'stripe_accounts',
  ]) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
