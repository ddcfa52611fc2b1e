/**
 * The hard stop's decision: does an estimate fit every hard limit of the customer's budgets, and,
 * for a prepaid-only customer, what its credits hold less its reservations (checkBudget; reserve
 * asks the same inside its transaction).
 */
import type { Executor, Tx } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { availableOf, fitsHardLimit } from './evaluate.ts'
import { checkCustomerId, parseAmount } from './input.ts'
import * as repo from './repository.ts'
import type { BudgetCheckView, BudgetDeps, BudgetView } from './types.ts'
import { view } from './views.ts'

/** Against every hard limit: the estimate must fit. The tightest budget is reported. */
export function decide(views: readonly BudgetView[], estimate: Decimal): BudgetCheckView {
  if (views.length === 0) return { allowed: true, remaining: null, budget: null, credits: null }
  let allowed = true
  let blocking: BudgetView | null = null
  let tightest: BudgetView | null = null
  let tightestAvailable: Decimal | null = null
  for (const v of views) {
    const available = availableOf(v.row.limit_amount, v.spent, v.reserved)
    if (tightestAvailable === null || available.lessThan(tightestAvailable)) {
      tightest = v
      tightestAvailable = available
    }
    if (v.row.hard_limit && !fitsHardLimit(v.row.limit_amount, v.spent, v.reserved, estimate)) {
      allowed = false
      blocking ??= v
    }
  }
  return { allowed, remaining: tightestAvailable!.toFixed(), budget: blocking ?? tightest, credits: null }
}

/**
 * The most one more reservation could hold now: the least of what each hard limit leaves (limit −
 * spent − reserved) and, for a prepaid-only customer, what its credits leave; null when nothing
 * limits it.
 */
export function largestFit(views: readonly BudgetView[], credits: CreditsHeld | null): Decimal | null {
  let fit: Decimal | null = credits ? availableOf(credits.balance, '0', credits.reserved) : null
  for (const v of views) {
    if (!v.row.hard_limit) continue
    const available = availableOf(v.row.limit_amount, v.spent, v.reserved)
    if (fit === null || available.lessThan(fit)) fit = available
  }
  return fit
}

/** A prepaid-only customer's credits as the hard stop sees them: the balance and what reservations hold of it. */
export interface CreditsHeld {
  balance: string
  reserved: string
}

/**
 * The credits of a customer that is prepaid-only now, else null. With `lock`, its grants are
 * locked (and due expiries written) in that transaction, which serializes reservations.
 */
export async function readCredits(
  { prepaidGate }: Pick<BudgetDeps, 'prepaidGate'>,
  executor: Executor,
  tenantId: string,
  customerId: string,
  now: Date,
  lock?: Tx,
): Promise<CreditsHeld | null> {
  if (!prepaidGate) return null
  if (lock) {
    // The grants are locked first: what reservations hold is read after, so none committed by
    // another process while this one waited is missed (and ingest cannot draw meanwhile).
    const gate = await prepaidGate(executor, tenantId, customerId, now, { lock })
    if (!gate.prepaidOnly) return null
    return { balance: gate.balance, reserved: await repo.activeReservedAmount(executor, tenantId, customerId, now) }
  }
  // Unlocked: reserved before the balance, so an event that settles a reservation and draws the
  // credits in between is counted twice for a moment, never in neither.
  const reserved = await repo.activeReservedAmount(executor, tenantId, customerId, now)
  const gate = await prepaidGate(executor, tenantId, customerId, now)
  return gate.prepaidOnly ? { balance: gate.balance, reserved } : null
}

/**
 * The credits hard stop on top of the budgets' decision: a prepaid-only customer may spend what
 * its credits hold less what its reservations hold (the same rule as a hard limit, with the
 * balance as the limit).
 */
export function applyCredits(check: BudgetCheckView, credits: CreditsHeld | null, estimate: Decimal): BudgetCheckView {
  if (!credits) return check
  const ok = fitsHardLimit(credits.balance, '0', credits.reserved, estimate)
  const view = {
    balance: new Decimal(credits.balance).toFixed(),
    available: availableOf(credits.balance, '0', credits.reserved).toFixed(),
    allowed: ok,
  }
  return { ...check, allowed: check.allowed && ok, credits: view }
}

export async function checkBudget(
  deps: Pick<BudgetDeps, 'db' | 'clock' | 'prepaidGate'>,
  tenant: Tenant,
  customerId: string,
  estimate: string | null | undefined,
): Promise<BudgetCheckView> {
  const { db, clock } = deps
  checkCustomerId(customerId)
  const amount = estimate == null ? new Decimal(0) : parseAmount(estimate, 'estimatedAmount', { allowZero: true })
  const now = clock.now()
  const check = decide(await view(db, await repo.budgetsOfCustomers(db, tenant.id, [customerId]), now), amount)
  return applyCredits(check, await readCredits(deps, db, tenant.id, customerId, now), amount)
}
