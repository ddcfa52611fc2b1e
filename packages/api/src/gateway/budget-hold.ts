import type { CatalogService } from '../catalog/types.ts'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { isPricingPlan, needsCounters, planAt, type PlanBook } from '../rating/plans.ts'
import type { RatingService } from '../rating/service.ts'
import { Decimal } from '../money/decimal.ts'
import type { BudgetLeases, LeaseHold } from './budget-leases.ts'
import type { GatewayProvider } from './db-types.ts'
import {
  boundCall,
  holdAmount,
  UnpricedCallError,
  worstCaseAmount,
  type CallBound,
  type EstimatePlan,
} from './estimate.ts'

/**
 * The budgets domain as the gateway needs it (structurally the budgets service): whether a
 * customer has a hard limit at all, and a reservation that holds a call's worst case against its hard limits until
 * the call's usage settles it (ingest, by `reservationId`) or the gateway releases it.
 */
export interface BudgetGate {
  hasHardLimit(tenant: Tenant, customerId: string): Promise<boolean>
  check(
    tenant: Tenant,
    customerId: string,
    estimate: string | null,
  ): Promise<{ allowed: boolean; remaining: string | null }>
  reserve(
    tenant: Tenant,
    input: { customerId: string; amount: string; minAmount?: string | null; ttlSeconds?: number | null },
  ): Promise<{
    granted: boolean
    reservation: { id: string; amount: string } | null
    check: { remaining: string | null }
  }>
  release(tenant: Tenant, reservationId: string): Promise<unknown>
}

/** How long a gateway hold lives: a call that answers (or times out) within GATEWAY_TIMEOUT_MS; a crashed process's hold lapses by itself. */
export function gatewayHoldTtlSeconds(config: Pick<Config, 'GATEWAY_TIMEOUT_MS'>): number {
  return Math.min(3600, Math.ceil(config.GATEWAY_TIMEOUT_MS / 1000) + 60)
}

export interface HoldDeps {
  db: Db
  clock: Clock
  catalog: CatalogService
  /** Plans in force (src/rating/: rating plans and setPricingPlan's markups) and their period meters. */
  rating: Pick<RatingService, 'book' | 'meters'>
  budgets: BudgetGate
  /** This process's budget leases (budget-leases.ts); without them every call is reserved on its own. */
  leases: BudgetLeases | null
  defaultMaxOutputTokens: number
  ttlSeconds: number
}

export type HoldOutcome =
  /** No hard budget: nothing held, nothing to settle. */
  | { kind: 'free' }
  /**
   * Within every hard limit: `lease` (this process's lease) or `reservationId` (the call's own
   * reservation) holds `estimate`; neither for a call estimated at zero.
   */
  | { kind: 'held'; reservationId: string | null; lease: LeaseHold | null; estimate: string; bound: CallBound }
  | { kind: 'refused'; type: 'budget_exceeded' | 'budget_unpriced_model'; message: string }

/**
 * Before a call under a hard budget goes out: its worst-case billed amount (estimate.ts), priced
 * with the catalog rows and the plan ingest would use, reserved against the customer's budgets.
 * A customer with no budget, or only soft ones, costs one lookup and holds nothing.
 */
export async function holdForCall(
  deps: HoldDeps,
  provider: GatewayProvider,
  tenant: Tenant,
  customerId: string,
  body: Record<string, unknown>,
): Promise<HoldOutcome> {
  if (!(await deps.budgets.hasHardLimit(tenant, customerId))) return { kind: 'free' }

  const model = typeof body.model === 'string' ? body.model : ''
  // Two independent reads, side by side: the catalog's version and the customer's plan book.
  const [, book] = await Promise.all([deps.catalog.ensureFresh(), deps.rating.book(deps.db, tenant.id, [customerId])])
  const now = deps.clock.now()
  const resolved = deps.catalog.resolve(model, provider, tenant.id)
  const prices = resolved ? deps.catalog.pricesAt(resolved.provider, resolved.model, now, tenant.id) : null
  const plan = await planForEstimate(deps, book, tenant.id, customerId, now, resolved?.model ?? model)
  const bound = boundCall(provider, body, { defaultMaxOutputTokens: deps.defaultMaxOutputTokens })
  let estimate: string
  try {
    estimate = holdAmount(worstCaseAmount(bound, prices, plan))
  } catch (error) {
    if (!(error instanceof UnpricedCallError)) throw error
    // A call that cannot be priced cannot be held against a hard limit, and would be recorded UNPRICED: not let through.
    const what =
      error.reason.code === 'MISSING_USAGE_PRICE'
        ? `has no price for ${error.reason.usageTypes.join(', ')}`
        : 'has no price in the catalog'
    return {
      kind: 'refused',
      type: 'budget_unpriced_model',
      message: `Customer "${customerId}" has a hard budget and ${provider} model "${model}" ${what}, so the call's cost cannot be held against it; the call was not sent to the provider.`,
    }
  }
  const over = (remaining: string | null) =>
    `Customer "${customerId}" has a hard budget: this call could cost up to ${estimate} ${tenant.currency}${remaining !== null ? ` and ${remaining} remains` : ''}; the call was not sent to the provider.`

  if (estimate === '0') {
    // Free at these prices: the budget only has to have room left at all (a reservation holds a positive amount).
    const check = await deps.budgets.check(tenant, customerId, '0')
    return check.allowed
      ? { kind: 'held', reservationId: null, lease: null, estimate, bound }
      : { kind: 'refused', type: 'budget_exceeded', message: over(check.remaining) }
  }
  // Usually held in memory on this process's lease; near the limit (no lease to be had) reserved alone.
  const lease = deps.leases ? await deps.leases.take(tenant, customerId, new Decimal(estimate)) : null
  if (lease) return { kind: 'held', reservationId: null, lease, estimate, bound }
  const reservation = await deps.budgets.reserve(tenant, { customerId, amount: estimate, ttlSeconds: deps.ttlSeconds })
  if (!reservation.granted || !reservation.reservation)
    return { kind: 'refused', type: 'budget_exceeded', message: over(reservation.check.remaining) }
  return { kind: 'held', reservationId: reservation.reservation.id, lease: null, estimate, bound }
}

/**
 * The plan ingest would bill the call by: the customer's plan in force now (rating/plans.ts), with
 * its meters (allowances, tiers) where the period's usage has brought them, so the estimate is what
 * the call would be charged if it were recorded next.
 */
async function planForEstimate(
  deps: HoldDeps,
  book: PlanBook,
  tenantId: string,
  customerId: string,
  now: Date,
  model: string,
): Promise<EstimatePlan | null> {
  const plan = planAt(book, customerId, now)
  if (!plan) return null
  if (isPricingPlan(plan)) {
    const rule = plan.rules[0]
    return rule?.type === 'COST_BASED' ? { kind: rule.kind, percent: rule.percent } : null
  }
  const counters = needsCounters(plan) ? await deps.rating.meters(tenantId, customerId, plan, now) : new Map()
  return { rating: plan, model, counters }
}
