import type { Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Stripe signs snapshot events and thin (v2) events from two destinations with two secrets.
  await db.schema.alterTable('stripe_accounts').addColumn('thin_webhook_secret_enc', 'text').execute()
  // The Idempotency-Key of the next attempt when it is not the identifier: Stripe replays a stored
  // error for the same key, so after such a replay the push goes out under a new key (same identifier).
  await db.schema.alterTable('stripe_pushes').addColumn('idempotency_key', 'text').execute()
  // FAILED because its attempts ran out (Stripe may or may not have it), not because Stripe refused it:
  // such a push is retried under its own identifier, which Stripe de-duplicates.
  await db.schema
    .alterTable('stripe_pushes')
    .addColumn('gave_up', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute()
  await db.schema
    .alterTable('stripe_pushes')
    .addColumn('manual_retries', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('stripe_pushes').dropColumn('manual_retries').execute()
  await db.schema.alterTable('stripe_pushes').dropColumn('gave_up').execute()
  await db.schema.alterTable('stripe_pushes').dropColumn('idempotency_key').execute()
  await db.schema.alterTable('stripe_accounts').dropColumn('thin_webhook_secret_enc').execute()
}
