/**
 * The prepaid hard stop's question (budgets' checkBudget and reserveBudget, the gateway): is the
 * customer prepaid-only now, and what do its credits hold. With `lock`, the customer's grants are
 * locked (and due expiries written) in the caller's transaction, so reservations are serialized.
 */
import type { Executor, Tx } from '../db/database.ts'
import type { CreditAlertRow, CreditGrantRow } from '../db/types.ts'
import { publishCreditAlerts } from './alerts.ts'
import { sum } from './consume.ts'
import { availableNow } from './grant-state.ts'
import { expireLocked, raise } from './locked.ts'
import * as repo from './repository.ts'
import type { CreditDeps } from './types.ts'

export async function prepaidGate(
  deps: Pick<CreditDeps, 'prepaid' | 'logger' | 'pubsub' | 'onAlertsRaised'>,
  executor: Executor,
  tenantId: string,
  customerId: string,
  now: Date,
  options?: { lock?: Tx },
): Promise<{ prepaidOnly: boolean; balance: string }> {
  const prepaidOnly = await deps.prepaid.prepaidOnly(tenantId, customerId, now, options?.lock ?? executor)
  if (!prepaidOnly) return { prepaidOnly, balance: '0' }
  let rows: CreditGrantRow[]
  if (options?.lock) {
    const expired = await expireLocked(
      options.lock,
      tenantId,
      await repo.lockGrants(options.lock, tenantId, [customerId]),
      now,
    )
    // Raised in the caller's transaction (webhooks); subscribers hear of them at once.
    const raised: CreditAlertRow[] = []
    await raise(deps, options.lock, expired.alerts, raised)
    await publishCreditAlerts(deps, raised)
    rows = expired.open
  } else rows = await repo.grantsOfCustomer(executor, tenantId, customerId)
  return { prepaidOnly, balance: sum(rows.filter((g) => availableNow(g, now)).map((g) => g.remaining)) }
}
