import { sql, type Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // A closed period's minimum-commitment true-up reaches Stripe as an invoice item, planned and sent
  // through the credit mirror's per (customer, period) states: kind TRUE_UP, no grant category.
  // A FAILED push can be retried by the tenant (retryStripeCreditPushes): a refused one becomes
  // SUPERSEDED and its state is planned again; a true-up that gave up after its attempts goes PENDING
  // again under its own identifier (gave_up: look it up before creating; manual_retries: its retries).
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_kind_check`.execute(db)
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_category_check`.execute(db)
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_status_check`.execute(db)
  await sql`alter table stripe_credit_pushes alter column category drop not null`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_kind_check
    check (kind in ('GRANT', 'VOID', 'TRUE_UP'))`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_category_check
    check (case when kind = 'TRUE_UP' then category is null else category in ('PAID', 'PROMOTIONAL') end)`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_status_check
    check (status in ('PENDING', 'SENT', 'FAILED', 'CANCELLED', 'SUPERSEDED'))`.execute(db)
  await db.schema
    .alterTable('stripe_credit_pushes')
    .addColumn('gave_up', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('manual_retries', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  // The start of the last closed period whose true-ups were planned (null: none yet).
  await db.schema.alterTable('stripe_accounts').addColumn('true_ups_through', 'timestamptz').execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('stripe_accounts').dropColumn('true_ups_through').execute()
  await db.schema.alterTable('stripe_credit_pushes').dropColumn('manual_retries').dropColumn('gave_up').execute()
  await sql`delete from stripe_credit_pushes where kind = 'TRUE_UP'`.execute(db)
  await sql`update stripe_credit_pushes set status = 'FAILED' where status = 'SUPERSEDED'`.execute(db)
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_kind_check`.execute(db)
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_category_check`.execute(db)
  await sql`alter table stripe_credit_pushes drop constraint stripe_credit_pushes_status_check`.execute(db)
  await sql`alter table stripe_credit_pushes alter column category set not null`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_kind_check
    check (kind in ('GRANT', 'VOID'))`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_category_check
    check (category in ('PAID', 'PROMOTIONAL'))`.execute(db)
  await sql`alter table stripe_credit_pushes add constraint stripe_credit_pushes_status_check
    check (status in ('PENDING', 'SENT', 'FAILED', 'CANCELLED'))`.execute(db)
}
