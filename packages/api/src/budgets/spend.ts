/**
 * The pipeline steps `budgets.spend` (usage/pipeline.ts), in the caller's transaction: billed
 * amounts go to the spend of every budget period they fall in, reservations the new events name
 * are settled, and the threshold and forecast alerts now due are inserted for the batch.
 */
import type { Tx } from '../db/database.ts'
import type { BudgetAlertRow, BudgetRow } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { BilledChangeBatch, IngestBatch } from '../usage/pipeline.ts'
import { alertsDue } from './alerts.ts'
import { crossedThresholds } from './evaluate.ts'
import { periodBounds } from './periods.ts'
import * as repo from './repository.ts'
import type { BudgetDeps } from './types.ts'

/**
 * Adds billed amounts (signed: a correction may lower a bill) to the spend of every budget period
 * they fall in, by each amount's own time, and inserts the threshold and forecast alerts now due.
 * The caller holds the customers' shared lock, so a budget being seeded from the ledger waits.
 */
async function addSpend(
  trx: Tx,
  tenantId: string,
  amounts: readonly { customerId: string; ts: Date; amount: string }[],
  now: Date,
): Promise<BudgetAlertRow[]> {
  if (amounts.length === 0) return []
  const customers = [...new Set(amounts.map((a) => a.customerId))]
  const budgets = await repo.budgetsOfCustomers(trx, tenantId, customers)
  if (budgets.length === 0) return []

  // Each event counts toward the period of its own timestamp, late ones included. Periods are
  // looked up once per budget kind and period, not per event (a batch mostly shares one).
  const known = new Map<string, { start: Date; end: Date }[]>()
  const periodOf = (budget: BudgetRow, ts: Date) => {
    const kind = `${budget.period}\u0001${budget.time_zone}`
    const list = known.get(kind) ?? []
    let found = list.find((p) => p.start.getTime() <= ts.getTime() && ts.getTime() < p.end.getTime())
    if (!found) {
      found = periodBounds(budget.period, budget.time_zone, ts)
      list.push(found)
      known.set(kind, list)
    }
    return found
  }
  const deltas = new Map<string, { budget: BudgetRow; period: { start: Date; end: Date }; amount: Decimal }>()
  for (const event of amounts) {
    for (const budget of budgets) {
      if (budget.customer_id !== event.customerId) continue
      const period = periodOf(budget, event.ts)
      if (period.start.getTime() < new Date(budget.counted_from).getTime()) continue
      const key = repo.spendKey(budget.id, period.start)
      const delta = deltas.get(key)
      if (delta) delta.amount = delta.amount.plus(event.amount)
      else deltas.set(key, { budget, period, amount: new Decimal(event.amount) })
    }
  }
  if (deltas.size === 0) return []
  const totals = await repo.addToSpend(
    trx,
    [...deltas.values()].map((d) => ({
      tenantId: d.budget.tenant_id,
      budgetId: d.budget.id,
      periodStart: d.period.start,
      amount: d.amount.toFixed(),
    })),
  )
  const due: Omit<BudgetAlertRow, 'id'>[] = []
  for (const total of totals) {
    const delta = deltas.get(repo.spendKey(total.budgetId, total.periodStart))!
    const before = new Decimal(total.spent).minus(delta.amount)
    const crossed = crossedThresholds(delta.budget.thresholds, delta.budget.limit_amount, before, total.spent)
    due.push(...alertsDue(delta.budget, delta.period, new Decimal(total.spent).toFixed(), crossed, now))
  }
  return repo.insertNewAlerts(trx, due)
}

export async function followIngest(
  { clock }: Pick<BudgetDeps, 'clock'>,
  trx: Tx,
  { tenant, inserted: stored, alertsRaised }: IngestBatch,
): Promise<void> {
  const now = clock.now()
  const customers = [...new Set(stored.map((e) => e.customer_id))]
  await repo.lockCustomersShared(trx, tenant.id, customers)
  await repo.settleReservations(
    trx,
    tenant.id,
    stored
      .filter((e) => e.reservation_id)
      .map((e) => ({ reservationId: e.reservation_id!, eventId: e.id, amount: e.amount })),
    now,
  )
  const raised = await addSpend(
    trx,
    tenant.id,
    stored
      .filter((e) => e.status === 'PRICED' && e.amount !== null)
      .map((e) => ({ customerId: e.customer_id, ts: new Date(e.ts), amount: e.amount! })),
    now,
  )
  alertsRaised.push(...raised)
}

export async function followChanges(
  { clock }: Pick<BudgetDeps, 'clock'>,
  trx: Tx,
  { tenantId, changes, alertsRaised }: BilledChangeBatch,
): Promise<void> {
  await repo.lockCustomersShared(trx, tenantId, [...new Set(changes.map((c) => c.customerId))])
  alertsRaised.push(...(await addSpend(trx, tenantId, changes, clock.now())))
}
