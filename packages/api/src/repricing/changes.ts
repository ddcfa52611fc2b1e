import type { Transaction } from 'kysely'
import type { DB, PricedLineJson } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'

/**
 * A change to what a customer is billed for usage that is already stored: an UNPRICED event
 * priced once its price arrives, or a correction written by repriceUsage. Ingest hooks see new
 * events; these hooks see changes to old ones, so budget spend and the Stripe outbox follow the
 * ledger whichever way an amount came about.
 */
export interface BilledChange {
  /**
   * Unique per tenant and change: the event id when an UNPRICED event is priced (ingest never
   * billed it), `<event id>#correction-<correction id>` for a correction.
   */
  key: string
  eventId: string
  customerId: string
  /** When the usage happened: spend and Stripe windows follow the event's own time. */
  ts: Date
  /** Signed change of the billed amount (a correction that lowers a bill is negative). */
  amount: string
  /** Signed change per usage type; adds up to `amount` exactly. */
  lines: { usageType: string; amount: string }[]
  /** The canonical model the event is billed under. */
  model: string
}

export interface BilledChangeHook {
  /** Runs inside the transaction that stores the pricing or correction; throwing rolls it back. */
  inTransaction?(trx: Transaction<DB>, tenantId: string, changes: readonly BilledChange[]): Promise<void>
  /** Runs after commit (notifications); a failure is logged and never undoes the change. */
  afterCommit?(tenantId: string, changes: readonly BilledChange[]): Promise<void> | void
}

/** Per usage type, new minus old billed amount; usage types whose amount did not move are left out. */
export function lineDeltas(
  oldLines: readonly Pick<PricedLineJson, 'usageType' | 'amount'>[],
  newLines: readonly Pick<PricedLineJson, 'usageType' | 'amount'>[],
): { usageType: string; amount: string }[] {
  const byType = new Map<string, Decimal>()
  for (const line of oldLines)
    byType.set(line.usageType, (byType.get(line.usageType) ?? new Decimal(0)).minus(line.amount))
  for (const line of newLines)
    byType.set(line.usageType, (byType.get(line.usageType) ?? new Decimal(0)).plus(line.amount))
  return [...byType.entries()]
    .filter(([, amount]) => !amount.isZero())
    .map(([usageType, amount]) => ({ usageType, amount: amount.toFixed() }))
}
