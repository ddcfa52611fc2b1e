import { AMOUNT_SCALE, Decimal, ZERO } from '../money/decimal.ts'
import { billedAmount, type CostLine } from '../pricing/engine.ts'
import { allowanceIncrement, tierIncrement } from './meter.ts'
import { costRule, globMatches, PER_MILLION, tiersOf, type RatingPlan, type RuleJson, type RuleType } from './rules.ts'

/**
 * Rating one event under a plan version, pure: its cost lines (pricing/engine.ts) become billed
 * lines, each with the parts that explain it (which rule, which tier). The order is fixed
 * (docs/rating.md):
 *
 * 1. per cost line (usage type): a TOKEN_ALLOWANCE takes its free tokens first; the rest is priced
 *    by the first FIXED_PRICE or TOKEN_TIERS rule matching the model and usage type, else by the
 *    COST_BASED rule (markup / margin), else at cost;
 * 2. a line per UNIT_FEE for the event's units;
 * 3. over the event's amount so far: AMOUNT_ALLOWANCE, then AMOUNT_TIERS, spread over the lines.
 *
 * Meters (allowances, tiers) read and advance `counters` (rule id → the period's quantity so
 * far), so successive calls with the same map rate a period incrementally.
 */

interface RatedPart {
  ruleId: string | null
  rule: RuleType | 'AT_COST'
  /** 1-based tier (TOKEN_TIERS, AMOUNT_TIERS). */
  tier?: number
  quantity: Decimal
  unitPrice?: Decimal
  amount: Decimal
}

interface RatedLine extends CostLine {
  amount: Decimal
  parts: RatedPart[]
}

export interface RatedEvent {
  lines: RatedLine[]
  amount: Decimal
}

type Of<T extends RuleType> = Extract<RuleJson, { type: T }>

const matches = (rule: { model: string; usageType: string }, model: string, usageType: string) =>
  (rule.usageType === '*' || rule.usageType === usageType) && globMatches(rule.model, model)

/** The fee lines' usage type: `fee:<unit>` (a unit's catalog price, if any, keeps its own line). */
export const feeUsageType = (unit: string) => `fee:${unit}`

const get = (counters: Map<string, Decimal>, id: string) => counters.get(id) ?? ZERO

function rateLine(plan: RatingPlan, line: CostLine, model: string, counters: Map<string, Decimal>): RatedLine {
  const parts: RatedPart[] = []
  let billable = line.quantity
  let free = ZERO
  const allowance = plan.rules.find(
    (r): r is Of<'TOKEN_ALLOWANCE'> => r.type === 'TOKEN_ALLOWANCE' && matches(r, model, line.usageType),
  )
  if (allowance) {
    const before = get(counters, allowance.id)
    free = allowanceIncrement(new Decimal(allowance.quantity), before, line.quantity)
    counters.set(allowance.id, before.plus(line.quantity))
    billable = line.quantity.minus(free)
    if (free.greaterThan(0)) parts.push({ ruleId: allowance.id, rule: 'TOKEN_ALLOWANCE', quantity: free, amount: ZERO })
  }
  const price = plan.rules.find(
    (r): r is Of<'FIXED_PRICE'> | Of<'TOKEN_TIERS'> =>
      (r.type === 'FIXED_PRICE' || r.type === 'TOKEN_TIERS') && matches(r, model, line.usageType),
  )
  if (price?.type === 'FIXED_PRICE') {
    const unitPrice = new Decimal(price.pricePerMillion).dividedBy(PER_MILLION)
    if (billable.greaterThan(0))
      parts.push({
        ruleId: price.id,
        rule: 'FIXED_PRICE',
        quantity: billable,
        unitPrice,
        amount: billable.times(unitPrice),
      })
  } else if (price?.type === 'TOKEN_TIERS') {
    const before = get(counters, price.id)
    for (const p of tierIncrement(price.mode, tiersOf(price.tiers, PER_MILLION), before, billable))
      parts.push({ ruleId: price.id, rule: 'TOKEN_TIERS', ...p })
    counters.set(price.id, before.plus(billable))
  } else if (billable.greaterThan(0)) {
    const rule = costRule(plan)
    let amount = billedAmount(line.cost, rule)
    // Part of the line is free: the rest pays its share of the line's cost-based amount.
    if (free.greaterThan(0))
      amount = amount.times(billable).dividedBy(line.quantity).toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_DOWN)
    parts.push({ ruleId: rule?.id ?? null, rule: rule ? 'COST_BASED' : 'AT_COST', quantity: billable, amount })
  }
  let amount = ZERO
  for (const p of parts) amount = amount.plus(p.amount)
  return { ...line, amount, parts }
}

function spread(lines: RatedLine[], adjustment: Decimal, base: Decimal, part: Omit<RatedPart, 'amount'>) {
  if (adjustment.isZero() || lines.length === 0) return
  let left = adjustment
  // The last line with a weight takes the remainder, so the shares add up to the adjustment exactly.
  let last = lines.length - 1
  while (last > 0 && lines[last]!.amount.isZero()) last -= 1
  for (const [i, line] of lines.entries()) {
    const share =
      i === last
        ? left
        : base.isZero()
          ? ZERO
          : adjustment.times(line.amount).dividedBy(base).toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_DOWN)
    if (share.isZero()) continue
    left = left.minus(share)
    line.parts.push({ ...part, amount: share })
  }
}

export function rateEvent(
  plan: RatingPlan,
  event: { lines: readonly CostLine[]; model: string; units: readonly { unit: string; quantity: string }[] },
  counters: Map<string, Decimal>,
): RatedEvent {
  const lines = event.lines.map((l) => rateLine(plan, l, event.model, counters))
  for (const { unit, quantity } of event.units) {
    const fee = plan.rules.find((r): r is Of<'UNIT_FEE'> => r.type === 'UNIT_FEE' && r.unit === unit)
    const q = new Decimal(quantity)
    if (!fee || q.isZero()) continue
    const unitPrice = new Decimal(fee.unitPrice)
    const amount = q.times(unitPrice)
    lines.push({
      usageType: feeUsageType(unit),
      quantity: q,
      unitPrice,
      cost: ZERO,
      priceId: '',
      amount,
      parts: [{ ruleId: fee.id, rule: 'UNIT_FEE', quantity: q, unitPrice, amount }],
    })
  }
  const base = lines.reduce((s, l) => s.plus(l.amount), ZERO)
  const amountAllowance = plan.rules.find((r): r is Of<'AMOUNT_ALLOWANCE'> => r.type === 'AMOUNT_ALLOWANCE')
  const amountTiers = plan.rules.find((r): r is Of<'AMOUNT_TIERS'> => r.type === 'AMOUNT_TIERS')
  if (amountAllowance || amountTiers) {
    // Shares are taken from the lines as they stand before either adjustment.
    const weights = lines.map((l) => ({ ...l }))
    let billable = base
    if (amountAllowance) {
      const before = get(counters, amountAllowance.id)
      const free = allowanceIncrement(new Decimal(amountAllowance.amount), before, base)
      counters.set(amountAllowance.id, before.plus(base))
      billable = base.minus(free)
      spreadInto(lines, weights, free.negated(), base, {
        ruleId: amountAllowance.id,
        rule: 'AMOUNT_ALLOWANCE',
        quantity: free,
      })
    }
    if (amountTiers) {
      const before = get(counters, amountTiers.id)
      const tierParts = tierIncrement(amountTiers.mode, tiersOf(amountTiers.tiers, new Decimal(1)), before, billable)
      counters.set(amountTiers.id, before.plus(billable))
      const charged = tierParts.reduce((s, p) => s.plus(p.amount), ZERO)
      spreadInto(lines, weights, charged.minus(billable), base, {
        ruleId: amountTiers.id,
        rule: 'AMOUNT_TIERS',
        quantity: billable,
        ...(tierParts.length ? { tier: tierParts.at(-1)!.tier, unitPrice: tierParts.at(-1)!.unitPrice } : {}),
      })
    }
  }
  let amount = ZERO
  for (const line of lines) {
    line.amount = line.parts.reduce((s, p) => s.plus(p.amount), ZERO)
    amount = amount.plus(line.amount)
  }
  return { lines, amount }
}

/** Spreads an event-level adjustment over the lines in proportion to their amounts before it. */
function spreadInto(
  lines: RatedLine[],
  weights: readonly RatedLine[],
  adjustment: Decimal,
  base: Decimal,
  part: Omit<RatedPart, 'amount'>,
) {
  if (adjustment.isZero()) return
  const shares = weights.map((w) => ({ ...w, parts: [] as RatedPart[] }))
  spread(shares, adjustment, base, { ...part, quantity: ZERO })
  // The rule's quantity (amount billable or free) is stated once per event, on its first share.
  const first = shares.find((s) => s.parts.length > 0)
  if (first) first.parts[0]!.quantity = part.quantity
  for (const [i, s] of shares.entries()) lines[i]!.parts.push(...s.parts)
}
