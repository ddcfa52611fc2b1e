import { Decimal as DecimalJs } from 'decimal.js'

const Decimal = DecimalJs.clone({ precision: 80, toExpNeg: -80, toExpPos: 80 })
const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** Longest raw value kept in a feed issue: a hostile feed must not fill the database through it. */
const RAW_VALUE_LIMIT = 200

/** What a feed wrote, as JSON text for a feed issue; null when it wrote nothing. */
export function rawValueText(value: unknown): string | null {
  if (value === undefined) return null
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length > RAW_VALUE_LIMIT ? `${text.slice(0, RAW_VALUE_LIMIT)}…` : text
}

export type PriceValue = { ok: true; unitPrice: string } | { ok: false; reason: string }

/**
 * An exact unit price from what a feed wrote: a decimal string (OpenRouter) or a JSON number
 * (LiteLLM; String(number) is the shortest text that round-trips the double, i.e. what the file
 * said). Missing, non-numeric, NaN, infinite and negative prices are refused with a reason.
 */
export function parsePrice(value: unknown): PriceValue {
  if (value === undefined || value === null || value === '') return { ok: false, reason: 'missing price' }
  let text: string
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return { ok: false, reason: 'price is NaN' }
    if (!Number.isFinite(value)) return { ok: false, reason: 'price is infinite' }
    text = String(value)
  } else if (typeof value === 'string') {
    text = value.trim()
    if (/^nan$/i.test(text)) return { ok: false, reason: 'price is NaN' }
    if (!DECIMAL_TEXT.test(text)) return { ok: false, reason: `price ${JSON.stringify(value)} is not a decimal number` }
  } else {
    return { ok: false, reason: `price is a ${typeof value}, not a number` }
  }
  const price = new Decimal(text)
  if (price.isNegative() && !price.isZero()) return { ok: false, reason: `negative price ${text}` }
  return { ok: true, unitPrice: price.abs().toFixed() }
}
