/**
 * Setting and deleting a budget, each in one transaction with its audit record. A budget set
 * mid-period is seeded from what the ledger already billed, and alerts already reached are raised
 * at once. Both drop the customer's cached hard-stop answer (hard-limits.ts).
 */
import { randomBytes } from 'node:crypto'
import type { BudgetRow, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { userError } from '../shared/errors.ts'
import { alertsDue, publishBudgetAlerts } from './alerts.ts'
import { DEFAULT_THRESHOLDS, reachedThresholds } from './evaluate.ts'
import type { HardLimitCache } from './hard-limits.ts'
import { checkCustomerId, checkThresholds, parseAmount } from './input.ts'
import { checkTimeZone, periodBounds } from './periods.ts'
import * as repo from './repository.ts'
import type { BudgetDeps, BudgetInput, BudgetView } from './types.ts'
import { view } from './views.ts'

type WriteDeps = Pick<BudgetDeps, 'db' | 'clock' | 'audit' | 'logger' | 'pubsub' | 'onAlertsRaised' | 'billedAmount'>

/** What the audit log keeps of a budget. */
function auditedBudget(b: BudgetRow) {
  return {
    id: b.id,
    customerId: b.customer_id,
    period: b.period,
    limit: String(b.limit_amount),
    currency: b.currency,
    thresholds: b.thresholds,
    hardLimit: b.hard_limit,
    forecastAlerts: b.forecast_alerts,
    timeZone: b.time_zone,
  }
}

export async function setBudget(
  deps: WriteDeps,
  hardLimits: HardLimitCache,
  tenant: Tenant,
  input: BudgetInput,
): Promise<BudgetView> {
  hardLimits.invalidate(tenant.id, input.customerId)
  try {
    return await writeBudget(deps, tenant, input)
  } finally {
    hardLimits.invalidate(tenant.id, input.customerId)
  }
}

async function writeBudget(
  { db, clock, audit, logger, pubsub, onAlertsRaised, billedAmount }: WriteDeps,
  tenant: Tenant,
  input: BudgetInput,
): Promise<BudgetView> {
  checkCustomerId(input.customerId, 'input.customerId')
  const limit = parseAmount(input.limit, 'input.limit', { allowZero: false }).toFixed()
  const givenThresholds = input.thresholds == null ? null : checkThresholds(input.thresholds)
  const timeZone = input.timeZone == null ? tenant.budget_time_zone : checkTimeZone(input.timeZone, 'input.timeZone')
  const now = clock.now()
  const period = periodBounds(input.period, timeZone, now)
  const { budget, raised } = await db.transaction().execute(async (trx) => {
    // Ingest for this customer waits while the current period is seeded from the ledger.
    await repo.lockCustomerExclusive(trx, tenant.id, input.customerId)
    const existing = await repo.findBudget(trx, tenant.id, input.customerId, input.period)
    const reseed = !existing || existing.time_zone !== timeZone
    // Left out on an update, thresholds and hardLimit keep their values; on creation they default.
    const thresholds = givenThresholds ?? existing?.thresholds ?? [...DEFAULT_THRESHOLDS]
    const fields = {
      limit_amount: limit,
      thresholds,
      hard_limit: input.hardLimit ?? existing?.hard_limit ?? false,
      forecast_alerts: input.forecastAlerts ?? existing?.forecast_alerts ?? false,
      time_zone: timeZone,
      updated_at: now,
    }
    const budget = existing
      ? await repo.updateBudget(trx, existing.id, {
          ...fields,
          counted_from: reseed ? period.start : new Date(existing.counted_from),
        })
      : await repo.insertBudget(trx, {
          id: 'bud_' + randomBytes(9).toString('base64url'),
          tenant_id: tenant.id,
          customer_id: input.customerId,
          period: input.period,
          currency: tenant.currency,
          counted_from: period.start,
          created_at: now,
          ...fields,
        })
    let spent: string
    if (reseed) {
      spent = await billedAmount(trx, tenant.id, input.customerId, period.start, period.end)
      await repo.setSpend(trx, budget.tenant_id, budget.id, period.start, spent)
    } else {
      spent =
        (await repo.spendOf(trx, [{ tenantId: budget.tenant_id, budgetId: budget.id, periodStart: period.start }])).get(
          repo.spendKey(budget.id, period.start),
        ) ?? '0'
    }
    // A new or lowered limit may already be passed: those alerts are due now.
    const raised = await repo.insertNewAlerts(
      trx,
      alertsDue(budget, period, new Decimal(spent).toFixed(), reachedThresholds(thresholds, limit, spent), now),
    )
    if (raised.length > 0) await onAlertsRaised?.(trx, raised)
    await audit?.record(trx, {
      tenantId: tenant.id,
      action: 'budget.set',
      entityType: 'Budget',
      entityId: budget.id,
      before: existing ? auditedBudget(existing) : null,
      after: auditedBudget(budget),
    })
    return { budget, raised }
  })
  await publishBudgetAlerts(pubsub, raised).catch((error) =>
    logger.error('budget alert publish failed', { error: String(error) }),
  )
  const [result] = await view(db, [budget], now)
  return result!
}

export async function deleteBudget(
  { db, audit }: Pick<BudgetDeps, 'db' | 'audit'>,
  hardLimits: HardLimitCache,
  tenant: Tenant,
  id: string,
): Promise<string> {
  if (!/^bud_[A-Za-z0-9_-]{1,60}$/.test(id)) throw userError('NOT_FOUND', 'no such budget', 'id')
  const deleted = await db.transaction().execute(async (trx) => {
    const budget = await repo.findBudgetById(trx, tenant.id, id)
    if (!budget) return null
    // Ingest for this customer waits: its spend counters go with the budget.
    await repo.lockCustomerExclusive(trx, tenant.id, budget.customer_id)
    await repo.deleteBudget(trx, budget.id)
    await audit?.record(trx, {
      tenantId: tenant.id,
      action: 'budget.delete',
      entityType: 'Budget',
      entityId: budget.id,
      before: auditedBudget(budget),
      after: null,
    })
    return budget
  })
  if (!deleted) throw userError('NOT_FOUND', 'no such budget', 'id')
  hardLimits.invalidate(tenant.id, deleted.customer_id)
  return deleted.id
}
