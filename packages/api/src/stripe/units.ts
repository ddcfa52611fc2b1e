import { createHash } from 'node:crypto'
import { Decimal } from '../money/decimal.ts'

/**
 * The reporting unit: 1/1000 of the currency's minor unit (USD: $0.00001). Stripe meter values
 * are whole numbers, so the billed amount goes out as an integer count of these units and the
 * metered price charges 0.001 minor units per unit (`unit_amount_decimal: "0.001"`). A thousandth
 * of a cent keeps each push within $0.00001 of the exact amount (the rest carries forward), leaves
 * Stripe a single rounding to cents on the invoice line, and keeps values far from 2^53
 * ($90 billion per event).
 */
export const UNIT_AMOUNT_DECIMAL = '0.001'

const ZERO_DECIMAL = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'ugx',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
])

/** Stripe's smallest currency unit per major unit (amounts such as `amount_total` are in it). */
export function minorPerMajor(currency: string): string {
  return ZERO_DECIMAL.has(currency.toLowerCase()) ? '1' : '100'
}

/** Reporting units per major currency unit: 10^(minor digits + 3). */
export function unitsPerMajor(currency: string): string {
  return ZERO_DECIMAL.has(currency.toLowerCase()) ? '1000' : '100000'
}

/** Splits an amount (currency, exact) into whole units and the residue (currency) below one unit. */
export function toUnits(amount: Decimal, perMajor: string): { units: bigint; residue: Decimal } {
  const scaled = amount.times(perMajor)
  const whole = scaled.floor()
  return { units: BigInt(whole.toFixed(0)), residue: scaled.minus(whole).dividedBy(perMajor) }
}

/** An hour-long reporting window: events go out as deltas per customer, dimension and hour. */
export const WINDOW_MS = 3_600_000

/** Stripe accepts meter events up to 35 calendar days old; we stop an hour short of that edge. */
export const STRIPE_MAX_AGE_MS = 35 * 86_400_000 - 3_600_000

export function windowStart(ts: Date): Date {
  return new Date(Math.floor(ts.getTime() / WINDOW_MS) * WINDOW_MS)
}

/**
 * Deterministic meter event identifier from tenant, customer, dimension, window and sequence:
 * a retry (by this process or another after a crash) re-sends the same identifier, so Stripe
 * counts it once. Readable prefix, hashed tail, well under Stripe's 100 characters.
 */
export function pushIdentifier(
  tenantId: string,
  customerId: string,
  dimension: string,
  window: Date,
  seq: number,
): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([tenantId, customerId, dimension, window.toISOString(), seq]))
    .digest('hex')
    .slice(0, 32)
  const hour = window.toISOString().slice(0, 13).replace(/[-T]/g, '')
  return `br_${hour}_${seq}_${hash}`
}

export function stableHash(...parts: string[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24)
}

export { Decimal }
