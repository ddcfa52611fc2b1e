import Decimal from 'decimal.js'

/**
 * Display formatting. Money arrives as exact decimal strings and is handed to Intl.NumberFormat as a
 * string (exact: no float on the way); sums and differences use decimal.js.
 */
const locale = () => navigator.language || 'en-US'
const cache = new Map<string, Intl.NumberFormat>()
function nf(key: string, options: Intl.NumberFormatOptions) {
  let f = cache.get(key)
  if (!f) cache.set(key, (f = new Intl.NumberFormat(locale(), options)))
  return f
}

type Num = string | number | Decimal | null | undefined

const str = (v: Num) => (v instanceof Decimal ? v.toFixed() : String(v))

/** "$1,234.56" with at least the currency's digits and up to 6 for small amounts (exact, not rounded up to 0). */
export function money(value: Num, currency = 'USD', precise = false): string {
  if (value === null || value === undefined || value === '') return '—'
  const d = new Decimal(str(value))
  const small = !d.isZero() && d.abs().lt(0.01)
  // Amounts under a cent keep 3 significant digits (never shown as $0.00); unit prices and charge lines are exact.
  const f = precise
    ? nf(`m:${currency}:p`, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 10 })
    : small
      ? nf(`m:${currency}:s`, { style: 'currency', currency, maximumSignificantDigits: 3 })
      : nf(`m:${currency}`, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 2 })
  // Intl formats a decimal string exactly (no float conversion).
  return f.format(str(value) as unknown as number)
}

/** An amount Stripe states in the currency's minor units (cents; yen have none), as money. */
export function minorUnits(amountMinor: Num, currency = 'USD'): string {
  if (amountMinor === null || amountMinor === undefined || amountMinor === '') return '—'
  const digits = nf(`d:${currency}`, { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2
  return money(new Decimal(str(amountMinor)).div(new Decimal(10).pow(digits)), currency)
}

/** A price per 1M units, as catalogs state them. */
export function perMillion(unitPrice: Num, currency = 'USD'): string {
  if (unitPrice === null || unitPrice === undefined) return '—'
  return money(new Decimal(str(unitPrice)).mul(1_000_000), currency, true)
}

export function num(value: Num, digits = 0): string {
  if (value === null || value === undefined) return '—'
  return nf(`n:${digits}`, { maximumFractionDigits: digits }).format(str(value) as unknown as number)
}

export function percent(value: Num, digits = 1): string {
  if (value === null || value === undefined) return '—'
  return nf(`p:${digits}`, { style: 'percent', maximumFractionDigits: digits }).format(
    new Decimal(str(value)).div(100).toNumber(),
  )
}

export const sub = (a: Num, b: Num) => new Decimal(str(a ?? 0)).minus(str(b ?? 0))
/** Margin as a share of the billed amount; null when nothing was billed. */
export function marginPercent(billed: Num, cost: Num): Decimal | null {
  const b = new Decimal(str(billed ?? 0))
  return b.isZero()
    ? null
    : b
        .minus(str(cost ?? 0))
        .div(b)
        .mul(100)
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  // The bundled catalog's rows are in force "since always" (the epoch).
  if (new Date(iso).getTime() <= 0) return 'always'
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso))
}
export function day(iso: string, timeZone = 'UTC'): string {
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric', timeZone }).format(new Date(iso))
}
export function relative(iso: string | null | undefined): string {
  if (!iso) return 'never'
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' })
  const abs = Math.abs(seconds)
  if (abs < 60) return rtf.format(Math.round(seconds), 'second')
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), 'hour')
  return rtf.format(Math.round(seconds / 86400), 'day')
}
