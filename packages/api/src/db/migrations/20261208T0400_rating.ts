import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Rating plans (src/rating/), append-only: one row per version of a tenant's default plan
  // (customer_id null) or of one customer's. The version in force at an instant is the owner's
  // latest whose effective_from has passed; a row is never updated.
  await db.schema
    .createTable('rating_plans')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text')
    .addColumn('version', 'integer', (c) => c.notNull().check(sql`version > 0`))
    .addColumn('effective_from', 'timestamptz', (c) => c.notNull())
    .addColumn('prepaid_only', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('rules', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('rating_plans_pk', ['tenant_id', 'id'])
    .execute()
  await sql`create unique index rating_plans_version on rating_plans (tenant_id, coalesce(customer_id, ''), version)`.execute(
    db,
  )

  // The period's quantity so far per meter (a rule with an allowance or tiers) of a plan version:
  // rating reads and advances them under a row lock in the ingest transaction (docs/architecture.md,
  // lock order). Customers whose plan is cost-based only have none.
  await db.schema
    .createTable('rating_counters')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('plan_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('rule_id', 'text', (c) => c.notNull())
    .addColumn('quantity', 'numeric', (c) => c.notNull())
    .addPrimaryKeyConstraint('rating_counters_pk', ['tenant_id', 'customer_id', 'plan_id', 'period_start', 'rule_id'])
    .execute()

  // Explicit re-ratings of a customer's period (rerateUsage), the audit trail of what changed.
  await db.schema
    .createTable('rating_reratings')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('events', 'integer', (c) => c.notNull())
    .addColumn('corrected_events', 'integer', (c) => c.notNull())
    .addColumn('amount_delta', 'numeric', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('rating_reratings_pk', ['tenant_id', 'id'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('rating_reratings').execute()
  await db.schema.dropTable('rating_counters').execute()
  await db.schema.dropTable('rating_plans').execute()
}
