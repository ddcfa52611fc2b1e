import type { Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Secret rotation: the secret being replaced keeps signing (beside the new one) until it expires.
  // Stored like `secret` (it has to be readable to sign).
  await db.schema
    .alterTable('webhook_endpoints')
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_expires_at', 'timestamptz')
    .addColumn('secret_rotated_at', 'timestamptz')
    .execute()
  // The URL each attempt went to: an endpoint's URL can now change, the attempt log should not.
  await db.schema.alterTable('webhook_attempts').addColumn('url', 'text').execute()
  // Keyset pages of the delivery log: (created_at, id) descending within a tenant.
  await db.schema.dropIndex('webhook_deliveries_log').execute()
  await db.schema
    .createIndex('webhook_deliveries_log_keyset')
    .on('webhook_deliveries')
    .columns(['tenant_id', 'created_at', 'id'])
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('webhook_deliveries_log_keyset').execute()
  await db.schema
    .createIndex('webhook_deliveries_log')
    .on('webhook_deliveries')
    .columns(['tenant_id', 'created_at'])
    .execute()
  await db.schema.alterTable('webhook_attempts').dropColumn('url').execute()
  await db.schema
    .alterTable('webhook_endpoints')
    .dropColumn('previous_secret')
    .dropColumn('previous_secret_expires_at')
    .dropColumn('secret_rotated_at')
    .execute()
}
