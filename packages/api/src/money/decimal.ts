import { Decimal as DecimalJs } from 'decimal.js'

/**
 * The one Decimal constructor for money. 60 significant digits is far beyond any price times any
 * token count we accept, so multiplication and addition are exact; division (margin) is the only
 * operation that rounds, and it does so explicitly to AMOUNT_SCALE places.
 */
export const Decimal = DecimalJs.clone({
  precision: 60,
  rounding: DecimalJs.ROUND_HALF_EVEN,
  toExpNeg: -60,
  toExpPos: 60,
})
export type Decimal = InstanceType<typeof Decimal>

/** Decimals are immutable, so one zero serves every sum's start and every absent quantity. */
export const ZERO = new Decimal(0)

/** Decimal places kept for billed amounts (DESIGN.md: at least 12). */
export const AMOUNT_SCALE = 18

const DECIMAL_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)$/

/** Plain decimal notation only: no exponent, no NaN or Infinity, no hex. */
export function isExactDecimalString(value: string): boolean {
  return DECIMAL_RE.test(value) && value.length <= 80
}
