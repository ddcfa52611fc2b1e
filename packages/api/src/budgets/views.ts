/**
 * Budgets as of now: each with its current period and what is spent, held and projected in it;
 * a customer's list, and the budget nearest its limit for each of many customers.
 */
import type { Executor } from '../db/database.ts'
import type { BudgetRow, Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { forecastSpend } from './evaluate.ts'
import { checkCustomerId } from './input.ts'
import { periodBounds, type BudgetPeriodName } from './periods.ts'
import * as repo from './repository.ts'
import type { BudgetDeps, BudgetUse, BudgetView } from './types.ts'

const PERIOD_ORDER: readonly BudgetPeriodName[] = ['DAY', 'WEEK', 'MONTH']

export async function view(executor: Executor, budgets: readonly BudgetRow[], now: Date): Promise<BudgetView[]> {
  const periods = budgets.map((b) => periodBounds(b.period, b.time_zone, now))
  // Reserved before spent, each its own statement (READ COMMITTED): an event that settles a
  // reservation (or a lease released after its calls were recorded) moves an amount from reserved
  // to spent, and read in this order it is counted twice for a moment, never in neither.
  const reservedByCustomer = new Map<string, string>()
  for (const b of budgets) {
    if (!reservedByCustomer.has(b.customer_id))
      reservedByCustomer.set(b.customer_id, await repo.activeReservedAmount(executor, b.tenant_id, b.customer_id, now))
  }
  const spends = await repo.spendOf(
    executor,
    budgets.map((b, i) => ({ tenantId: b.tenant_id, budgetId: b.id, periodStart: periods[i]!.start })),
  )
  return budgets.map((row, i) => {
    const period = periods[i]!
    const spent = new Decimal(spends.get(repo.spendKey(row.id, period.start)) ?? '0').toFixed()
    return {
      row,
      periodStart: period.start,
      periodEnd: period.end,
      spent,
      reserved: new Decimal(reservedByCustomer.get(row.customer_id) ?? '0').toFixed(),
      forecast: forecastSpend(spent, period, now).toFixed(),
    }
  })
}

export async function budgetsOf(
  { db, clock }: Pick<BudgetDeps, 'db' | 'clock'>,
  tenant: Tenant,
  customerId: string,
): Promise<BudgetView[]> {
  checkCustomerId(customerId)
  // Shortest period first: a stable order for callers (ids are random).
  const rows = (await repo.budgetsOfCustomers(db, tenant.id, [customerId])).sort(
    (a, b) => PERIOD_ORDER.indexOf(a.period) - PERIOD_ORDER.indexOf(b.period),
  )
  return view(db, rows, clock.now())
}

export async function budgetUse(
  { db, clock }: Pick<BudgetDeps, 'db' | 'clock'>,
  tenantId: string,
  customerIds: readonly string[],
): Promise<Map<string, BudgetUse>> {
  const rows = await repo.budgetsOfCustomers(db, tenantId, customerIds)
  const now = clock.now()
  const periods = rows.map((b) => periodBounds(b.period, b.time_zone, now))
  const spends = await repo.spendOf(
    db,
    rows.map((b, i) => ({ tenantId: b.tenant_id, budgetId: b.id, periodStart: periods[i]!.start })),
  )
  const nearest = new Map<string, BudgetUse>()
  rows.forEach((row, i) => {
    const spent = new Decimal(spends.get(repo.spendKey(row.id, periods[i]!.start)) ?? '0')
    const percent = spent.times(100).dividedBy(row.limit_amount).toDecimalPlaces(2)
    const held = nearest.get(row.customer_id)
    if (held && percent.lessThanOrEqualTo(held.percent)) return
    nearest.set(row.customer_id, {
      budgetId: row.id,
      period: row.period,
      spent: spent.toFixed(),
      limit: new Decimal(row.limit_amount).toFixed(),
      percent: percent.toFixed(2),
    })
  })
  return nearest
}
