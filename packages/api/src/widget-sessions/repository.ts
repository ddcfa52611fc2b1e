import type { Executor } from '../db/database.ts'
import type { Insertable, WidgetSessionTable } from '../db/types.ts'

export async function insertSession(db: Executor, row: Insertable<WidgetSessionTable>): Promise<void> {
  await db.insertInto('widget_sessions').values(row).execute()
}

/** The session with this token hash and its tenant's row, in one query (unknown: undefined). */
export function findSessionWithTenant(db: Executor, tokenHash: string) {
  return db
    .selectFrom('widget_sessions as s')
    .innerJoin('tenants as t', 't.id', 's.tenant_id')
    .selectAll('t')
    .select([
      's.id as session_id',
      's.customer_id as session_customer_id',
      's.expires_at as session_expires_at',
      's.price_details as session_price_details',
    ])
    .where('s.token_hash', '=', tokenHash)
    .executeTakeFirst()
}
