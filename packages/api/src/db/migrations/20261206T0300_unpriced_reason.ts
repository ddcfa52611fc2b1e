import type { Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Why an event is UNPRICED ({ code, usageTypes }); null for priced events and for events stored
  // before reasons were kept.
  await db.schema.alterTable('usage_events').addColumn('unpriced_reason', 'jsonb').execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('usage_events').dropColumn('unpriced_reason').execute()
}
