import type { CatalogPrice } from '../catalog/types.ts'
import type { PricedLineJson, UsageEventRow } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { Plan, ReportedUsage } from '../pricing/engine.ts'
import {
  billAtPlan,
  priceEvent,
  storedPricing,
  type EventPricing,
  type UnpricedReason,
} from '../pricing/price-event.ts'
import { canonicalUnitName } from '../usage/validation.ts'

/** What an event reported, rebuilt from its stored row the way validation built it. */
function reportedOf(
  event: Pick<
    UsageEventRow,
    'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cache_write_tokens' | 'reasoning_tokens' | 'units'
  >,
): ReportedUsage {
  const reported = new Map<string, Decimal>([
    ['input_tokens', new Decimal(event.input_tokens)],
    ['output_tokens', new Decimal(event.output_tokens)],
    ['cache_read_tokens', new Decimal(event.cache_read_tokens)],
    ['cache_write_tokens', new Decimal(event.cache_write_tokens)],
    ['output_reasoning_tokens', new Decimal(event.reasoning_tokens)],
  ])
  // Events stored before aliases were mapped at validation may carry an alias.
  for (const unit of event.units ?? [])
    reported.set(canonicalUnitName(unit.unit) ?? unit.unit, new Decimal(unit.quantity))
  return reported
}

/**
 * A stored event priced again at these catalog rows under this plan, by the same two steps as
 * ingest (pricing/price-event.ts): its stored lines, cost and amount, or why it cannot be priced.
 * Throws UsageShapeError for a stored shape the rules now refuse.
 */
export function repriceStoredEvent(
  prices: readonly CatalogPrice[] | null,
  event: UsageEventRow,
  plan: Plan | null,
): { unpriced: UnpricedReason } | { unpriced?: undefined; lines: PricedLineJson[]; cost: string; amount: string } {
  const priced = priceEvent(reportedOf(event), prices)
  if (priced.status === 'UNPRICED') return { unpriced: priced.reason }
  return storedPricing(billAtPlan(priced, plan))
}

/** A stored event's cost lines at these catalog rows (priceEvent), before any plan bills them. */
export function priceStoredEvent(prices: readonly CatalogPrice[] | null, event: UsageEventRow): EventPricing {
  return priceEvent(reportedOf(event), prices)
}
