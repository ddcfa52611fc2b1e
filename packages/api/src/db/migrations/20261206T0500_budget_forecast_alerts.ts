import type { Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Forecast alerts are opt-in per budget: a subscriber who set thresholds hears about those
  // thresholds only. Existing budgets get the same default as new ones (off).
  await db.schema
    .alterTable('budgets')
    .addColumn('forecast_alerts', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('budgets').dropColumn('forecast_alerts').execute()
}
