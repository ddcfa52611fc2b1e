/** The limits of the budgets domain and the checks its inputs pass before anything is read or written. */
import { AMOUNT_SCALE, Decimal, isExactDecimalString } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import { DEFAULT_THRESHOLDS } from './evaluate.ts'

export const BUDGET_LIMITS = {
  customerIdLength: 255,
  maxAmount: new Decimal('1e15'),
  maxThresholds: 10,
  maxThresholdPercent: 1000,
  alertsDefaultFirst: 50,
  alertsMaxFirst: 500,
  reservationDefaultTtlSeconds: 300,
  reservationMaxTtlSeconds: 3600,
} as const

export function checkCustomerId(customerId: string, field = 'customerId'): void {
  if (customerId.length === 0 || customerId.length > BUDGET_LIMITS.customerIdLength) {
    throw badInput(`customerId must be 1-${BUDGET_LIMITS.customerIdLength} characters`, field)
  }
}

/** A money amount from the API: plain decimal, at most AMOUNT_SCALE places, within bounds. */
export function parseAmount(value: string, field: string, { allowZero }: { allowZero: boolean }): Decimal {
  if (!isExactDecimalString(value)) throw badInput(`${field} must be a decimal string such as "12.50"`, field)
  const d = new Decimal(value)
  if (d.isNegative() || (!allowZero && d.isZero()))
    throw badInput(`${field} must be ${allowZero ? 'zero or more' : 'more than zero'}`, field)
  if (d.greaterThan(BUDGET_LIMITS.maxAmount))
    throw badInput(`${field} must be at most ${BUDGET_LIMITS.maxAmount.toFixed()}`, field)
  if (d.decimalPlaces() > AMOUNT_SCALE) throw badInput(`${field} has more than ${AMOUNT_SCALE} decimal places`, field)
  return d
}

export function checkThresholds(thresholds: readonly number[] | null | undefined): number[] {
  if (thresholds === null || thresholds === undefined) return [...DEFAULT_THRESHOLDS]
  if (thresholds.length > BUDGET_LIMITS.maxThresholds)
    throw badInput(`at most ${BUDGET_LIMITS.maxThresholds} thresholds`, 'input.thresholds')
  const unique = new Set<number>()
  for (const [i, t] of thresholds.entries()) {
    if (!Number.isInteger(t) || t < 1 || t > BUDGET_LIMITS.maxThresholdPercent) {
      throw badInput(
        `thresholds are percentages of the limit from 1 to ${BUDGET_LIMITS.maxThresholdPercent}`,
        `input.thresholds[${i}]`,
      )
    }
    if (unique.has(t)) throw badInput(`threshold ${t} is given twice`, `input.thresholds[${i}]`)
    unique.add(t)
  }
  return [...unique].sort((a, b) => a - b)
}
