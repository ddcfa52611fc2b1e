/** SQL of the minimum-commitment true-ups: which accounts have a closed period to plan, and its marker. */
import type { Executor } from '../../db/database.ts'

/** Accounts billing through Stripe whose true-ups are not planned through `lastClosedStart` yet. */
export function accountsDueForTrueUps(db: Executor, lastClosedStart: Date) {
  return db
    .selectFrom('stripe_accounts')
    .select(['tenant_id', 'setup_at', 'true_ups_through'])
    .where('price_id', 'is not', null)
    .where('setup_at', 'is not', null)
    .where((eb) => eb.or([eb('true_ups_through', 'is', null), eb('true_ups_through', '<', lastClosedStart)]))
    .orderBy('tenant_id')
    .limit(100)
    .execute()
}

/** The tenant's customers that have a Stripe customer. */
export async function customersInStripe(db: Executor, tenantId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('customers')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('stripe_customer_id', 'is not', null)
    .orderBy('id')
    .execute()
  return rows.map((r) => r.id)
}

/**
 * Moves the marker from `from` (as read) to `to`; false when another process moved it first (it
 * planned those periods, so this one must not mark them again).
 */
export async function advanceTrueUpMarker(
  trx: Executor,
  tenantId: string,
  from: Date | null,
  to: Date,
): Promise<boolean> {
  const result = await trx
    .updateTable('stripe_accounts')
    .set({ true_ups_through: to })
    .where('tenant_id', '=', tenantId)
    .where((eb) => (from === null ? eb('true_ups_through', 'is', null) : eb('true_ups_through', '=', from)))
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
