import type { Insertable, PricedLineJson, UsageEventRow, UsageEventTable } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import type { UnpricedReason } from '../pricing/price-event.ts'
import {
  mergeLineRollups,
  mergeRollups,
  negateRollup,
  rollupDeltas,
  rollupKeyOf,
  type LineRollupDelta,
  type RollupDelta,
} from '../usage/rollups.ts'

/**
 * What re-pricing changes, as deltas (pure): per usage type billed amounts (Stripe, budgets) and
 * rollup rows. Late pricing and corrections both move totals only by these.
 */

/** Per usage type, new minus old billed amount; usage types whose amount did not move are left out. */
export function lineDeltas(
  oldLines: readonly Pick<PricedLineJson, 'usageType' | 'amount'>[],
  newLines: readonly Pick<PricedLineJson, 'usageType' | 'amount'>[],
): { usageType: string; amount: string }[] {
  const byType = new Map<string, Decimal>()
  for (const line of oldLines)
    byType.set(line.usageType, (byType.get(line.usageType) ?? new Decimal(0)).minus(line.amount))
  for (const line of newLines)
    byType.set(line.usageType, (byType.get(line.usageType) ?? new Decimal(0)).plus(line.amount))
  return [...byType.entries()]
    .filter(([, amount]) => !amount.isZero())
    .map(([usageType, amount]) => ({ usageType, amount: amount.toFixed() }))
}

export const sameReason = (stored: UnpricedReason | null, next: UnpricedReason) =>
  stored !== null && stored.code === next.code && stored.usageTypes.join() === next.usageTypes.join()

export const sameLines = (a: readonly PricedLineJson[], b: readonly PricedLineJson[]) =>
  a.length === b.length &&
  a.every((line, i) => {
    const other = b[i]!
    return (
      line.usageType === other.usageType &&
      line.priceId === other.priceId &&
      new Decimal(line.quantity).eq(other.quantity) &&
      new Decimal(line.cost).eq(other.cost) &&
      new Decimal(line.amount).eq(other.amount)
    )
  })

const asInsertable = (row: UsageEventRow): Insertable<UsageEventTable> =>
  ({
    ...row,
    lines: JSON.stringify(row.lines),
    units: row.units ? JSON.stringify(row.units) : null,
    metadata: row.metadata ? JSON.stringify(row.metadata) : null,
  }) as Insertable<UsageEventTable>

/**
 * Rollup deltas of events going from UNPRICED to PRICED: out of their rollup rows as they were
 * (keyed by the names they reported), into those of the priced rows (canonical names), with their
 * new lines. An UNPRICED event has no lines, so line rollups only gain.
 */
export function latePricingRollups(
  tenantId: string,
  done: readonly { before: UsageEventRow; after: UsageEventRow }[],
): { rollups: RollupDelta[]; lineRollups: LineRollupDelta[] } {
  const removed = rollupDeltas(
    tenantId,
    done.map((d) => asInsertable(d.before)),
  )
  const added = rollupDeltas(
    tenantId,
    done.map((d) => asInsertable(d.after)),
  )
  return {
    rollups: mergeRollups([...removed.rollups.map(negateRollup), ...added.rollups]),
    lineRollups: mergeLineRollups(added.lineRollups),
  }
}

interface Billed {
  lines: PricedLineJson[]
  cost: string
  amount: string
}

/**
 * Rollup deltas of a correction: the event's count and tokens stay, its cost and amount move by
 * new − old, and its line rollups swap the current lines for the new ones.
 */
export function correctionRollups(
  tenantId: string,
  event: UsageEventRow,
  current: Billed,
  next: Billed,
): { rollups: RollupDelta[]; lineRollups: LineRollupDelta[] } {
  const base = { tenant_id: tenantId, ...rollupKeyOf(event) }
  const rollups: RollupDelta[] = [
    {
      ...base,
      events: 0,
      unpriced_events: 0,
      input_tokens: 0,
      output_tokens: 0,
      cost: new Decimal(next.cost).minus(current.cost).toFixed(),
      amount: new Decimal(next.amount).minus(current.amount).toFixed(),
    },
  ]
  const lineRollups: LineRollupDelta[] = []
  for (const line of current.lines)
    lineRollups.push({
      ...base,
      usage_type: line.usageType,
      events: -1,
      quantity: new Decimal(line.quantity).negated().toFixed(),
      cost: new Decimal(line.cost).negated().toFixed(),
      amount: new Decimal(line.amount).negated().toFixed(),
    })
  for (const line of next.lines)
    lineRollups.push({
      ...base,
      usage_type: line.usageType,
      events: 1,
      quantity: line.quantity,
      cost: line.cost,
      amount: line.amount,
    })
  return { rollups, lineRollups }
}
