import { AMOUNT_SCALE, Decimal } from '../money/decimal.ts'

/** Pure budget arithmetic: exact decimals in, exact decimals out. */

export type Amount = string | Decimal

export const DEFAULT_THRESHOLDS = [50, 80, 100] as const

/**
 * Before this share of the period has elapsed, the burn rate is measured over this share instead:
 * one call in the first minute of a month must not project a thousandfold overspend.
 */
export const FORECAST_MIN_ELAPSED_SHARE = 0.05

/** The amount at which a threshold (a percentage of the limit) is reached. */
function thresholdAmount(limit: Amount, threshold: number): Decimal {
  return new Decimal(limit).times(threshold).dividedBy(100)
}

/** Thresholds reached at `spent` (spent ≥ limit × t / 100), ascending. */
export function reachedThresholds(thresholds: readonly number[], limit: Amount, spent: Amount): number[] {
  const s = new Decimal(spent)
  return [...thresholds].sort((a, b) => a - b).filter((t) => s.greaterThanOrEqualTo(thresholdAmount(limit, t)))
}

/** Thresholds crossed by going from `before` to `after` (reached after, not before). */
export function crossedThresholds(
  thresholds: readonly number[],
  limit: Amount,
  before: Amount,
  after: Amount,
): number[] {
  const already = new Set(reachedThresholds(thresholds, limit, before))
  return reachedThresholds(thresholds, limit, after).filter((t) => !already.has(t))
}

/** limit − spent, never negative. */
export function remainingOf(limit: Amount, spent: Amount): Decimal {
  return Decimal.max(0, new Decimal(limit).minus(spent))
}

/**
 * Projected spend at period end at the current burn rate: spent / elapsed × period length, with
 * elapsed measured from the period start to `now` but at least FORECAST_MIN_ELAPSED_SHARE of the
 * period. Once the period is over, the projection is what was spent. Rounded to AMOUNT_SCALE places.
 */
export function forecastSpend(spent: Amount, period: { start: Date; end: Date }, now: Date): Decimal {
  const length = period.end.getTime() - period.start.getTime()
  const elapsed = now.getTime() - period.start.getTime()
  if (elapsed >= length) return new Decimal(spent)
  const measured = Math.max(elapsed, Math.ceil(length * FORECAST_MIN_ELAPSED_SHARE))
  return new Decimal(spent).times(length).dividedBy(measured).toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_HALF_EVEN)
}

/**
 * Whether a hard limit lets `estimate` more through, given what is spent and held by reservations.
 * A positive estimate may fill the budget exactly; with no (or a zero) estimate the question is
 * "may anything more be spent", which is no once the limit is reached.
 */
export function fitsHardLimit(limit: Amount, spent: Amount, reserved: Amount, estimate: Amount): boolean {
  const e = new Decimal(estimate)
  const total = new Decimal(spent).plus(reserved).plus(e)
  return e.isZero() ? total.lessThan(limit) : total.lessThanOrEqualTo(limit)
}

/** The most a call may still cost under this budget: limit − spent − reserved, never negative. */
export function availableOf(limit: Amount, spent: Amount, reserved: Amount): Decimal {
  return Decimal.max(0, new Decimal(limit).minus(spent).minus(reserved))
}
