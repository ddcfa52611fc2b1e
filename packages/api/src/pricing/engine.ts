import { UNIT_BY_USAGE_KEY, UNIT_BY_USAGE_TYPE, USAGE_UNITS, isPartOf, type UsageUnit } from '@burnrate/catalog-sync'
import type { CatalogPrice } from '../catalog/types.ts'
import { AMOUNT_SCALE, Decimal, ZERO } from '../money/decimal.ts'

/** Reported quantities by usage key (input_tokens, cache_read_tokens, web_searches, …). */
export type ReportedUsage = ReadonlyMap<string, Decimal>

export interface CostLine {
  usageType: string
  quantity: Decimal
  unitPrice: Decimal
  cost: Decimal
  priceId: string
}

export interface BilledLine extends CostLine {
  amount: Decimal
}

export interface Plan {
  kind: 'MARKUP' | 'MARGIN'
  percent: string
}

export class UsageShapeError extends Error {
  constructor(
    message: string,
    readonly usageKey: string,
  ) {
    super(message)
  }
}

const bySpecificity = (a: UsageUnit, b: UsageUnit) =>
  Object.keys(b.dimensions).length - Object.keys(a.dimensions).length || a.usageKey.localeCompare(b.usageKey)

/**
 * The unit vocabulary is fixed, so its order (most specific first) and the part-of relation are
 * computed once here rather than per event: RANK sorts any subset as bySpecificity would, and
 * PARTS lists each unit's parts.
 */
const RANK: ReadonlyMap<UsageUnit, number> = new Map([...USAGE_UNITS].sort(bySpecificity).map((u, i) => [u, i]))
const PARTS: ReadonlyMap<UsageUnit, ReadonlySet<UsageUnit>> = new Map(
  USAGE_UNITS.map((whole) => [whole, new Set(USAGE_UNITS.filter((part) => isPartOf(part, whole)))]),
)
const byRank = (a: UsageUnit, b: UsageUnit) => (RANK.get(a) ?? 0) - (RANK.get(b) ?? 0)

/**
 * Splits reported quantities into exclusive parts. A quantity's exclusive part is what is left
 * after its parts (more specific quantities in `units`) are taken out, so cache reads priced as
 * cache reads are not also priced as input. `units` must be ordered most specific first. An
 * absent quantity counts as zero.
 */
function exclusiveParts(units: readonly UsageUnit[], reported: ReportedUsage): Map<string, Decimal> {
  const exclusive = new Map<string, Decimal>()
  for (const unit of units) {
    let rest = reported.get(unit.usageKey) ?? ZERO
    const parts = PARTS.get(unit)
    if (parts && parts.size > 0) {
      for (const part of units) {
        if (!parts.has(part)) continue
        const taken = exclusive.get(part.usageKey)
        if (taken && !taken.isZero()) rest = rest.minus(taken)
      }
    }
    if (rest.isNegative()) {
      const named = units.filter((p) => parts?.has(p) && reported.has(p.usageKey)).map((p) => p.usageKey)
      throw new UsageShapeError(
        `${named.join(' + ')} exceed${named.length === 1 ? 's' : ''} ${unit.usageKey} (${(reported.get(unit.usageKey) ?? ZERO).toFixed()})`,
        named[0] ?? unit.usageKey,
      )
    }
    exclusive.set(unit.usageKey, rest)
  }
  return exclusive
}

/**
 * Checks that no reported part exceeds its whole, whatever the model. Throws UsageShapeError.
 * `alsoCheck` names quantities to check as wholes even when absent from `reported` (zero).
 */
export function checkUsageShape(given: ReportedUsage, alsoCheck: readonly string[] = []): void {
  const reported = withReportedWholes(given)
  const keys = alsoCheck.length ? new Set([...alsoCheck, ...reported.keys()]) : reported.keys()
  const units: UsageUnit[] = []
  for (const k of keys) {
    const unit = UNIT_BY_USAGE_KEY.get(k)
    if (unit) units.push(unit)
  }
  exclusiveParts(units.sort(byRank), reported)
}

/** Parsed unit prices, per catalog row (rows are immutable snapshots) and per tier. */
const parsedPrices = new WeakMap<object, Decimal>()
function parsedPrice(owner: object, text: string): Decimal {
  let value = parsedPrices.get(owner)
  if (value === undefined) {
    value = new Decimal(text)
    parsedPrices.set(owner, value)
  }
  return value
}

function tieredUnitPrice(price: CatalogPrice, inputTokens: Decimal): Decimal {
  let unitPrice = parsedPrice(price, price.unitPrice)
  // Long-context pricing: the highest tier whose threshold the call's input exceeds prices the whole line.
  if (price.tiers)
    for (const tier of price.tiers)
      if (inputTokens.greaterThan(tier.start)) unitPrice = parsedPrice(tier, tier.unitPrice)
  return unitPrice
}

/**
 * What one call costs at the given catalog rows: a line per priced usage type with a positive
 * quantity. Pure and exact. Semantics follow @pydantic/genai-prices' calcPrice (the oracle test
 * holds us to it): prices apply to exclusive parts, tiers switch on total input tokens, and a
 * per-request price charges one request per call unless `requests` is reported.
 */
export function priceUsage(
  reported: ReportedUsage,
  prices: readonly CatalogPrice[],
): { lines: CostLine[]; cost: Decimal } {
  const priced: { unit: UsageUnit; price: CatalogPrice }[] = []
  for (const price of prices) {
    const unit = UNIT_BY_USAGE_TYPE.get(price.usageType)
    if (unit) priced.push({ unit, price })
  }
  const metered: UsageUnit[] = []
  for (const p of priced) if (p.unit.usageKey !== 'requests') metered.push(p.unit)
  const exclusive = exclusiveParts(metered.sort(byRank), reported)
  const inputTokens = reported.get('input_tokens') ?? ZERO

  const lines: CostLine[] = []
  let cost = ZERO
  for (const { unit, price } of priced) {
    const quantity =
      unit.usageKey === 'requests' ? (reported.get('requests') ?? new Decimal(1)) : exclusive.get(unit.usageKey)
    if (!quantity || quantity.isZero()) continue
    const unitPrice = tieredUnitPrice(price, inputTokens)
    const lineCost = quantity.times(unitPrice)
    cost = cost.plus(lineCost)
    lines.push({ usageType: unit.usageType, quantity, unitPrice, cost: lineCost, priceId: price.id })
  }
  if (lines.length > 1)
    lines.sort((a, b) => lineOrder(a.usageType) - lineOrder(b.usageType) || a.usageType.localeCompare(b.usageType))
  return { lines, cost }
}

/** Units whose quantity events cannot state: a whole (e.g. audio_seconds) events report through its parts. */
const FILLABLE_WHOLES = USAGE_UNITS.filter((u) => u.unit !== 'token' && [...(PARTS.get(u) ?? [])].length > 0)
const disjoint = (a: UsageUnit, b: UsageUnit) =>
  Object.entries(a.dimensions).some(([k, v]) => b.dimensions[k] !== undefined && b.dimensions[k] !== v)

/**
 * A non-token whole that was not reported is the sum of its reported parts: a call with 60
 * input_audio_seconds has 60 audio_seconds, so a model priced per audio second (either way)
 * prices it. Token wholes are always reported (inputTokens counts all input). Throws
 * UsageShapeError when the reported parts may overlap, so the whole cannot be known.
 */
export function withReportedWholes(reported: ReportedUsage): ReportedUsage {
  let out: Map<string, Decimal> | null = null
  for (const whole of FILLABLE_WHOLES) {
    if (reported.has(whole.usageKey)) continue
    const parts = PARTS.get(whole)!
    const given: UsageUnit[] = []
    for (const [key, quantity] of reported) {
      const unit = UNIT_BY_USAGE_KEY.get(key)
      if (unit && parts.has(unit) && !quantity.isZero()) given.push(unit)
    }
    const outermost = given.filter((u) => !given.some((other) => isPartOf(u, other)))
    if (outermost.length === 0) continue
    for (const [i, a] of outermost.entries()) {
      for (const b of outermost.slice(i + 1)) {
        if (!disjoint(a, b))
          throw new UsageShapeError(
            `${a.usageKey} and ${b.usageKey} may overlap: report ${whole.usageKey} too`,
            b.usageKey,
          )
      }
    }
    out ??= new Map(reported)
    out.set(
      whole.usageKey,
      outermost.reduce((sum, u) => sum.plus(reported.get(u.usageKey)!), ZERO),
    )
  }
  return out ?? reported
}

/**
 * The usage types a reported quantity would go unpriced under: every reported quantity must land
 * in a priced line, its own usage type's or a priced whole's that contains it (cache reads billed
 * as input, reasoning as output when the model has no price of their own). `requests` is the one
 * exception: every call is a request, and a model without a per-request price charges none.
 * `usage` has its wholes filled in (withReportedWholes). Sorted; empty when everything is priced.
 */
export function unpricedUsageTypes(usage: ReportedUsage, prices: readonly CatalogPrice[]): string[] {
  const pricedUnits = new Set<UsageUnit>()
  for (const price of prices) {
    const unit = UNIT_BY_USAGE_TYPE.get(price.usageType)
    if (unit) pricedUnits.add(unit)
  }
  // Where each reported quantity goes: the exclusive parts over everything reported or priced.
  const considered = new Set<UsageUnit>(pricedUnits)
  for (const [key, quantity] of usage) {
    const unit = UNIT_BY_USAGE_KEY.get(key)
    if (unit && !quantity.isZero()) considered.add(unit)
  }
  considered.forEach((u) => u.usageKey === 'requests' && considered.delete(u))
  const exclusive = exclusiveParts([...considered].sort(byRank), usage)
  const missing: string[] = []
  for (const unit of considered) {
    if (pricedUnits.has(unit) || exclusive.get(unit.usageKey)?.isZero() !== false) continue
    if (![...pricedUnits].some((whole) => isPartOf(unit, whole))) missing.push(unit.usageType)
  }
  return missing.sort()
}

const LINE_ORDER = ['input', 'cache_read', 'cache_write', 'output', 'reasoning']
const lineOrder = (usageType: string) => {
  const i = LINE_ORDER.indexOf(usageType)
  return i === -1 ? LINE_ORDER.length : i
}

/**
 * The billed amount of a cost under a plan (DESIGN.md §Money).
 * MARKUP p: cost × (1 + p/100), exact. MARGIN p: cost / (1 − p/100), rounded half-even to
 * AMOUNT_SCALE places — the only rounding in pricing.
 */
export function billedAmount(cost: Decimal, plan: Plan | null): Decimal {
  if (!plan) return cost
  const percent = new Decimal(plan.percent)
  if (plan.kind === 'MARKUP')
    return cost.times(percent.dividedBy(100).plus(1)).toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_HALF_EVEN)
  if (percent.greaterThanOrEqualTo(100)) throw new RangeError('MARGIN must be below 100 %')
  return cost
    .dividedBy(new Decimal(1).minus(percent.dividedBy(100)))
    .toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_HALF_EVEN)
}

/**
 * Applies a plan line by line. The event's amount is the sum of its line amounts, so every
 * breakdown (per usage type, per model, per day) adds up to exactly the same total.
 */
export function applyPlan(lines: readonly CostLine[], plan: Plan | null): { lines: BilledLine[]; amount: Decimal } {
  let amount = ZERO
  const billed = lines.map((line) => {
    const lineAmount = billedAmount(line.cost, plan)
    amount = amount.plus(lineAmount)
    return { ...line, amount: lineAmount }
  })
  return { lines: billed, amount }
}

export interface PlanVersion extends Plan {
  customerId: string | null
  effectiveFrom: Date
}

/**
 * The plan in force for a customer at a time: the customer's own latest plan that had started,
 * else the tenant default's, else none (billed at cost). Plans change prospectively only.
 */
export function planAt(plans: readonly PlanVersion[], customerId: string, at: Date): Plan | null {
  let own: PlanVersion | undefined
  let fallback: PlanVersion | undefined
  for (const plan of plans) {
    if (plan.effectiveFrom.getTime() > at.getTime()) continue
    if (plan.customerId === customerId) {
      if (!own || plan.effectiveFrom >= own.effectiveFrom) own = plan
    } else if (plan.customerId === null) {
      if (!fallback || plan.effectiveFrom >= fallback.effectiveFrom) fallback = plan
    }
  }
  const chosen = own ?? fallback
  return chosen ? { kind: chosen.kind, percent: chosen.percent } : null
}
