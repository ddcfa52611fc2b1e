import type { CatalogPrice } from '../catalog/types.ts'
import type { PricedLineJson } from '../db/types.ts'
import type { Decimal } from '../money/decimal.ts'
import {
  applyPlan,
  priceUsage,
  unpricedUsageTypes,
  withReportedWholes,
  type BilledLine,
  type CostLine,
  type Plan,
  type ReportedUsage,
} from './engine.ts'

/**
 * Pricing one event, written once. Ingest (usage/service.ts), late pricing and corrections
 * (repricing/) and the gateway's worst-case estimate (gateway/estimate.ts) all take the same two
 * pure steps:
 *
 *   1. priceEvent:  catalog rows in force + reported usage → cost lines, or UNPRICED with a reason;
 *   2. billAtPlan:  cost lines → billed lines and amount, under the tenant's pricing (markup or
 *                   margin). This is the one place a billed amount comes from a cost; a rating
 *                   layer replaces this step, not the first.
 *
 * storedPricing turns the result into the strings a usage_events row (or a correction) keeps.
 */

/**
 * Why an event is UNPRICED (UsageEvent.unpricedReason): no source knows the model, none had a price
 * for it at the event's time, or the prices in force leave a reported usage type unpriced.
 */
type UnpricedCode = 'UNKNOWN_MODEL' | 'NO_PRICE_AT_TIME' | 'MISSING_USAGE_PRICE'
export interface UnpricedReason {
  code: UnpricedCode
  /** The usage types with a quantity and no price (MISSING_USAGE_PRICE), sorted. */
  usageTypes: string[]
}

export interface PricedEvent {
  status: 'PRICED'
  lines: CostLine[]
  cost: Decimal
}
export type EventPricing = PricedEvent | { status: 'UNPRICED'; reason: UnpricedReason }

export function unpricedMessage(reason: UnpricedReason): string {
  if (reason.code === 'UNKNOWN_MODEL') return 'no price source (nor a negotiated price) knows this model'
  if (reason.code === 'NO_PRICE_AT_TIME') return "the model had no price in force at the event's timestamp"
  return `no price in force for ${reason.usageTypes.join(', ')}, neither negotiated nor public`
}

/**
 * Step 1, the one pricing rule. `prices` are the rows in force for the event — a tenant's
 * negotiated rows already put in place of the public rows of the usage types they name
 * (withTenantOverrides), so a usage type the negotiation leaves out keeps its public price — or
 * null when no source knows the model.
 *
 * An event is never priced at zero for want of a price: every reported quantity must land in a
 * priced line (unpricedUsageTypes), otherwise the event is UNPRICED, naming each usage type left
 * without a price. Throws UsageShapeError when the reported parts exceed their wholes.
 */
export function priceEvent(reported: ReportedUsage, prices: readonly CatalogPrice[] | null): EventPricing {
  if (prices === null) return { status: 'UNPRICED', reason: { code: 'UNKNOWN_MODEL', usageTypes: [] } }
  if (prices.length === 0) return { status: 'UNPRICED', reason: { code: 'NO_PRICE_AT_TIME', usageTypes: [] } }
  const usage = withReportedWholes(reported)
  const missing = unpricedUsageTypes(usage, prices)
  if (missing.length > 0) return { status: 'UNPRICED', reason: { code: 'MISSING_USAGE_PRICE', usageTypes: missing } }
  const { lines, cost } = priceUsage(usage, prices)
  return { status: 'PRICED', lines, cost }
}

export interface BilledEvent {
  lines: BilledLine[]
  cost: Decimal
  amount: Decimal
  /** The tenant pricing the amount was billed under (kept on the event); null: billed at cost. */
  plan: Plan | null
}

/**
 * Step 2, the tenant's pricing: a priced event's cost lines → billed lines and amount under the
 * plan in force (pricing/engine.ts applyPlan, line by line). The seam where a billed amount is
 * computed from cost.
 */
export function billAtPlan(priced: PricedEvent, plan: Plan | null): BilledEvent {
  const billed = applyPlan(priced.lines, plan)
  return { lines: billed.lines, cost: priced.cost, amount: billed.amount, plan }
}

/** A billed event as stored: decimal strings, lines as usage_events.lines / usage_corrections keep them. */
export function storedPricing(billed: BilledEvent): { lines: PricedLineJson[]; cost: string; amount: string } {
  const lines = billed.lines.map((l) => {
    const lineCost = l.cost.toFixed()
    return {
      usageType: l.usageType,
      quantity: l.quantity.toFixed(),
      unitPrice: l.unitPrice.toFixed(),
      cost: lineCost,
      // Without a plan the amount is the cost itself (the same Decimal): one conversion.
      amount: l.amount === l.cost ? lineCost : l.amount.toFixed(),
      priceId: l.priceId,
    }
  })
  const cost = billed.cost.toFixed()
  return { lines, cost, amount: billed.amount === billed.cost ? cost : billed.amount.toFixed() }
}
