import type { Kysely } from 'kysely'

// Frozen in time: migrations use Kysely<any> so later changes to the DB type never alter them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  // Whether a widget session may see how its amounts were priced (unit prices, catalog rows, the
  // markup or margin, the tenant's cost). Existing sessions keep what they could see: true.
  await db.schema
    .alterTable('widget_sessions')
    .addColumn('price_details', 'boolean', (c) => c.notNull().defaultTo(true))
    .execute()
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('widget_sessions').dropColumn('price_details').execute()
}
