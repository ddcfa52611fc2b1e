import type { PricedLineJson } from '../db/types.ts'
import type { RatedEvent } from './rate.ts'
import type { RatingPlan, RuleJson } from './rules.ts'

/**
 * Which plan version is in force, pure. A customer's plan is its own latest version that has
 * started, else the tenant default's; a version is either a rating plan (setRatingPlan) or a
 * markup / margin set by setPricingPlan, which reads as a plan with one COST_BASED rule. Whichever
 * mutation wrote the newest started version of an owner wins.
 */
export interface PlanBook {
  /** Every known version of the customers asked for and of the default, oldest first. */
  versions: readonly RatingPlan[]
}

export function planAt(book: PlanBook, customerId: string, at: Date): RatingPlan | null {
  let own: RatingPlan | null = null
  let fallback: RatingPlan | null = null
  const t = at.getTime()
  for (const plan of book.versions) {
    if (plan.effectiveFrom.getTime() > t) continue
    if (plan.customerId === customerId) {
      if (!own || plan.effectiveFrom >= own.effectiveFrom) own = plan
    } else if (plan.customerId === null) {
      if (!fallback || plan.effectiveFrom >= fallback.effectiveFrom) fallback = plan
    }
  }
  return own ?? fallback
}

/** A setPricingPlan row as a plan version: one COST_BASED rule, id `pricing:<row id>`, version 0. */
export function costPlanVersion(row: {
  id: number
  customer_id: string | null
  kind: 'MARKUP' | 'MARGIN'
  percent: string
  effective_from: Date
}): RatingPlan {
  return {
    id: `pricing:${row.id}`,
    customerId: row.customer_id,
    version: 0,
    effectiveFrom: row.effective_from,
    prepaidOnly: false,
    rules: [{ id: 'cost', type: 'COST_BASED', kind: row.kind, percent: String(row.percent) }],
  }
}

export const isPricingPlan = (plan: RatingPlan) => plan.id.startsWith('pricing:')

/** Rules that keep a period counter. */
export const meteredRules = (plan: RatingPlan): RuleJson[] =>
  plan.rules.filter(
    (r) =>
      r.type === 'TOKEN_ALLOWANCE' ||
      r.type === 'TOKEN_TIERS' ||
      r.type === 'AMOUNT_ALLOWANCE' ||
      r.type === 'AMOUNT_TIERS',
  )

/** Whether an event under this plan needs the period counters (locked in the ingest transaction). */
export const needsCounters = (plan: RatingPlan | null): plan is RatingPlan =>
  plan !== null && meteredRules(plan).length > 0

/** The UTC calendar month an instant falls in: a plan's period. */
export function periodOf(at: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1))
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1))
  return { start, end }
}

/** Stored lines of a rated event: each with its plan version and the parts that explain it. */
export function ratedLinesJson(plan: RatingPlan, rated: RatedEvent): PricedLineJson[] {
  return rated.lines.map((l) => ({
    usageType: l.usageType,
    quantity: l.quantity.toFixed(),
    unitPrice: l.unitPrice.toFixed(),
    cost: l.cost.toFixed(),
    amount: l.amount.toFixed(),
    priceId: l.priceId,
    planId: plan.id,
    planVersion: plan.version,
    parts: l.parts.map((p) => ({
      ruleId: p.ruleId,
      rule: p.rule,
      ...(p.tier !== undefined ? { tier: p.tier } : {}),
      quantity: p.quantity.toFixed(),
      ...(p.unitPrice !== undefined ? { unitPrice: p.unitPrice.toFixed() } : {}),
      amount: p.amount.toFixed(),
    })),
  }))
}
