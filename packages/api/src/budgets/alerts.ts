/**
 * Budget alerts: which are due for a period at a spend (pure), their subscription event, listing
 * a customer's, and publishing a batch to subscribers after commit.
 */
import type { BudgetAlertRow, BudgetRow, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { BudgetAlertEvent, BurnratePubSub } from '../pubsub.ts'
import { pageSize } from '../shared/pagination.ts'
import { forecastSpend } from './evaluate.ts'
import { BUDGET_LIMITS, checkCustomerId } from './input.ts'
import * as repo from './repository.ts'
import type { BudgetDeps } from './types.ts'

export function alertEvent(row: BudgetAlertRow): BudgetAlertEvent {
  return {
    id: String(row.id),
    tenantId: row.tenant_id,
    customerId: row.customer_id,
    budgetId: row.budget_id,
    threshold: row.threshold,
    spent: row.spent,
    limit: row.limit_amount,
    periodStart: new Date(row.period_start).toISOString(),
    triggeredAt: new Date(row.triggered_at).toISOString(),
    kind: row.kind,
    forecast: row.forecast,
  }
}

/**
 * New alerts for one budget period at `spent`: thresholds given (crossed by an ingest, or reached
 * when a budget is set), and, for budgets that opted in, the forecast alert for the current period
 * when the projection first exceeds the limit while spend is still under it. The unique key makes
 * each one happen once.
 */
export function alertsDue(
  budget: BudgetRow,
  period: { start: Date; end: Date },
  spent: string,
  thresholds: readonly number[],
  now: Date,
): Omit<BudgetAlertRow, 'id'>[] {
  const base = {
    tenant_id: budget.tenant_id,
    customer_id: budget.customer_id,
    budget_id: budget.id,
    period_start: period.start,
    spent,
    limit_amount: budget.limit_amount,
    triggered_at: now,
  }
  const alerts: Omit<BudgetAlertRow, 'id'>[] = thresholds.map((threshold) => ({
    ...base,
    kind: 'THRESHOLD',
    threshold,
    forecast: null,
  }))
  const isCurrent = period.start.getTime() <= now.getTime() && now.getTime() < period.end.getTime()
  if (budget.forecast_alerts && isCurrent && new Decimal(spent).lessThan(budget.limit_amount)) {
    const forecast = forecastSpend(spent, period, now)
    if (forecast.greaterThan(budget.limit_amount))
      alerts.push({ ...base, kind: 'FORECAST', threshold: 100, forecast: forecast.toFixed() })
  }
  return alerts
}

export async function publishBudgetAlerts(pubsub: BurnratePubSub, alerts: readonly BudgetAlertRow[]): Promise<void> {
  for (const alert of alerts) pubsub.publish('budgetAlert', alert.tenant_id, alertEvent(alert))
}

export async function listAlerts(
  { db }: Pick<BudgetDeps, 'db'>,
  tenant: Tenant,
  customerId: string,
  first: number | null | undefined,
): Promise<BudgetAlertRow[]> {
  checkCustomerId(customerId)
  const n = pageSize(first, {
    defaultFirst: BUDGET_LIMITS.alertsDefaultFirst,
    maxFirst: BUDGET_LIMITS.alertsMaxFirst,
  })
  return repo.listAlerts(db, tenant.id, customerId, n)
}
