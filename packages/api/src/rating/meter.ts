import { Decimal, ZERO } from '../money/decimal.ts'

/**
 * Period meters, pure. A meter turns a period's cumulative quantity Q into the period's charge
 * F(Q); an event adding q is charged F(Q + q) − F(Q) (telescoping), so a period's total is F of
 * its total quantity whatever the order or the split of its events, and an event that crosses a
 * tier boundary is split into one part per tier.
 */

export interface Tier {
  /** Inclusive upper bound of the tier's cumulative quantity; null for the last, unbounded tier. */
  upTo: Decimal | null
  /** Price of one meter unit in this tier (already divided by the rule's `per`). */
  unitPrice: Decimal
}

export type TierMode = 'GRADUATED' | 'VOLUME'

export interface TierPart {
  /** 1-based tier number. */
  tier: number
  /** Signed: a VOLUME event that moves the period to another tier takes the earlier quantity out of the old one. */
  quantity: Decimal
  unitPrice: Decimal
  amount: Decimal
}

/** Where each unit of a cumulative quantity falls, tier by tier (parts with a zero quantity left out). */
function tierBreakdown(mode: TierMode, tiers: readonly Tier[], total: Decimal): TierPart[] {
  if (total.lessThanOrEqualTo(0)) return []
  if (mode === 'VOLUME') {
    // The whole quantity at the price of the tier the total falls in (bounds inclusive).
    const i = tiers.findIndex((t) => t.upTo === null || total.lessThanOrEqualTo(t.upTo))
    const tier = tiers[i === -1 ? tiers.length - 1 : i]!
    return [
      {
        tier: (i === -1 ? tiers.length - 1 : i) + 1,
        quantity: total,
        unitPrice: tier.unitPrice,
        amount: total.times(tier.unitPrice),
      },
    ]
  }
  const parts: TierPart[] = []
  let lower = ZERO
  for (const [i, tier] of tiers.entries()) {
    if (total.lessThanOrEqualTo(lower)) break
    const upper = tier.upTo === null || total.lessThan(tier.upTo) ? total : tier.upTo
    const quantity = upper.minus(lower)
    if (quantity.greaterThan(0))
      parts.push({ tier: i + 1, quantity, unitPrice: tier.unitPrice, amount: quantity.times(tier.unitPrice) })
    if (tier.upTo === null) break
    lower = tier.upTo
  }
  return parts
}

/**
 * What adding `quantity` to a period already at `before` is charged, per tier: the breakdown at
 * before + quantity minus the breakdown at before. The parts add up to F(after) − F(before) exactly.
 */
export function tierIncrement(mode: TierMode, tiers: readonly Tier[], before: Decimal, quantity: Decimal): TierPart[] {
  const after = tierBreakdown(mode, tiers, before.plus(quantity))
  const was = tierBreakdown(mode, tiers, before)
  const byTier = new Map<number, TierPart>()
  for (const p of after) byTier.set(p.tier, { ...p })
  for (const p of was) {
    const now = byTier.get(p.tier)
    if (now) {
      now.quantity = now.quantity.minus(p.quantity)
      now.amount = now.amount.minus(p.amount)
    } else byTier.set(p.tier, { ...p, quantity: p.quantity.negated(), amount: p.amount.negated() })
  }
  return [...byTier.values()].filter((p) => !p.quantity.isZero() || !p.amount.isZero()).sort((a, b) => a.tier - b.tier)
}

/**
 * How much of `quantity`, added to a period that already used `before` of an allowance of `size`,
 * is free: min(before + quantity, size) − min(before, size).
 */
export function allowanceIncrement(size: Decimal, before: Decimal, quantity: Decimal): Decimal {
  const after = Decimal.min(before.plus(quantity), size)
  const was = Decimal.min(before, size)
  return after.minus(was)
}
