/**
 * SQL of the pusher's leases, one home for both leased states: the (customer, dimension) push
 * states (stripe_push_state) and the (customer, period) credit states (stripe_credit_state). Each
 * state row carries lease_owner and lease_until; claiming differs per state (what counts as work),
 * so it stays with each (claimGroups, claimCreditStates); renewing and releasing do not.
 */
import type { ExpressionBuilder, Selectable } from 'kysely'
import type { DB } from '../../db/types.ts'
import type { Executor } from '../../db/database.ts'

/** The leased tables and the columns that key a row of each. */
const KEY_COLUMNS = {
  stripe_push_state: ['tenant_id', 'customer_id', 'dimension'],
  stripe_credit_state: ['tenant_id', 'customer_id', 'period_start'],
} as const

type LeasedTable = keyof typeof KEY_COLUMNS
type KeyColumn<T extends LeasedTable> = (typeof KEY_COLUMNS)[T][number]

/** The key of a leased row: for stripe_push_state a PushGroup, for stripe_credit_state a CreditStateKey. */
type LeaseKey<T extends LeasedTable> = {
  [C in KeyColumn<T>]: C extends keyof Selectable<DB[T]> ? Selectable<DB[T]>[C] : never
}

/** The keyed row, while `owner` holds its lease. */
function heldBy<T extends LeasedTable>(table: T, key: LeaseKey<T>, owner: string) {
  const keyed = Object.fromEntries(KEY_COLUMNS[table].map((column: KeyColumn<T>) => [column, key[column]]))
  return (eb: ExpressionBuilder<DB, LeasedTable>) => eb.and({ ...keyed, lease_owner: owner })
}

/** Extends `owner`'s lease; false when it was lost (expired and taken by another). */
export async function renewLease<T extends LeasedTable>(
  db: Executor,
  table: T,
  key: LeaseKey<T>,
  owner: string,
  until: Date,
): Promise<boolean> {
  const result = await db
    .updateTable(table as LeasedTable)
    .set({ lease_until: until })
    .where(heldBy(table, key, owner))
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

/** Frees `owner`'s lease at once (instead of at lease_until); nothing when it was lost. */
export async function releaseLease<T extends LeasedTable>(
  db: Executor,
  table: T,
  key: LeaseKey<T>,
  owner: string,
): Promise<void> {
  await db
    .updateTable(table as LeasedTable)
    .set({ lease_owner: null, lease_until: null })
    .where(heldBy(table, key, owner))
    .execute()
}
