/**
 * Grants past their expiry: one customer's expired before its balance or ledger is read, and the
 * periodic sweep over every tenant's. Each runs in its own transaction; alerts are published after commit.
 */
import type { CreditAlertRow, CreditGrantRow } from '../db/types.ts'
import { publishCreditAlerts } from './alerts.ts'
import { expiryDue } from './grant-state.ts'
import { CREDIT_LIMITS } from './input.ts'
import { expireLocked, raise } from './locked.ts'
import * as repo from './repository.ts'
import type { CreditDeps } from './types.ts'

type ExpiryDeps = Pick<CreditDeps, 'db' | 'clock' | 'logger' | 'pubsub' | 'onAlertsRaised'>

/** Expires the customer's due grants now (balances and ledgers read after it are current). */
export async function expireCustomer(deps: ExpiryDeps, tenantId: string, customerId: string): Promise<void> {
  const { db, clock } = deps
  const now = clock.now()
  const due = (await repo.grantsOfCustomer(db, tenantId, customerId)).some((g) => expiryDue(g, now))
  if (!due) return
  const raised: CreditAlertRow[] = []
  await db.transaction().execute(async (trx) => {
    const { alerts } = await expireLocked(trx, tenantId, await repo.lockGrants(trx, tenantId, [customerId]), now)
    await raise(deps, trx, alerts, raised)
  })
  await publishCreditAlerts(deps, raised)
}

/** Writes the EXPIRY entries of every grant past its expiry, a batch per transaction; returns how many. */
export async function sweepExpired(deps: ExpiryDeps): Promise<number> {
  const { db, clock } = deps
  let total = 0
  for (;;) {
    const now = clock.now()
    const raised: CreditAlertRow[] = []
    const n = await db.transaction().execute(async (trx) => {
      raised.length = 0
      const due = await repo.lockExpiredGrants(trx, now, CREDIT_LIMITS.sweepBatch)
      const byTenant = new Map<string, CreditGrantRow[]>()
      for (const g of due) byTenant.set(g.tenant_id, [...(byTenant.get(g.tenant_id) ?? []), g])
      for (const [tenantId, grants] of byTenant)
        await raise(deps, trx, (await expireLocked(trx, tenantId, grants, now)).alerts, raised)
      return due.length
    })
    await publishCreditAlerts(deps, raised)
    total += n
    if (n < CREDIT_LIMITS.sweepBatch) return total
  }
}
