/**
 * Budgets per customer and period: limits, spend followed from ingest and billed changes,
 * threshold and forecast alerts, the hard stop (budgets and prepaid credits) and reservations
 * against it. Composed here from its use cases: setting and deleting (writes.ts), reading
 * (views.ts), the hard stop (check.ts, hard-limits.ts with its cache), reservations
 * (reservations.ts), the pipeline steps (spend.ts) and alerts (alerts.ts); the arithmetic is
 * evaluate.ts and periods.ts. Nothing is kept between calls but the hard-stop cache and the
 * reservations waiting for their customer's batch.
 */
import { listAlerts, publishBudgetAlerts } from './alerts.ts'
import { checkBudget } from './check.ts'
import { createHardLimitCache, hasHardLimit } from './hard-limits.ts'
import * as repo from './repository.ts'
import { checkReservations, createReservations, release } from './reservations.ts'
import { followChanges, followIngest } from './spend.ts'
import type { BudgetDeps, BudgetService } from './types.ts'
import { budgetsOf, budgetUse } from './views.ts'
import { deleteBudget, setBudget } from './writes.ts'

export function createBudgetService(deps: BudgetDeps): BudgetService {
  const hardLimits = createHardLimitCache()
  const reservations = createReservations(deps)
  return {
    setBudget: (tenant, input) => setBudget(deps, hardLimits, tenant, input),
    deleteBudget: (tenant, id) => deleteBudget(deps, hardLimits, tenant, id),
    budgets: (tenant, customerId) => budgetsOf(deps, tenant, customerId),
    budgetUse: (tenantId, customerIds) => budgetUse(deps, tenantId, customerIds),
    alerts: (tenant, customerId, first) => listAlerts(deps, tenant, customerId, first),
    check: (tenant, customerId, estimate) => checkBudget(deps, tenant, customerId, estimate),
    hasHardLimit: (tenant, customerId) => hasHardLimit(deps, hardLimits, tenant, customerId),
    reserve: (tenant, input) => reservations.reserve(tenant, input),
    release: (tenant, reservationId) => release(deps, tenant, reservationId),
    reservedAmount: (executor, tenantId, customerId, now) =>
      repo.activeReservedAmount(executor, tenantId, customerId, now),
    checkReservations: (tenant, events) => checkReservations(deps, tenant, events),
    followIngest: (trx, batch) => followIngest(deps, trx, batch),
    followChanges: (trx, batch) => followChanges(deps, trx, batch),
    publishAlerts: ({ alertsRaised }) => publishBudgetAlerts(deps.pubsub, alertsRaised),
  }
}
