import type { PricedLineJson } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'

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
