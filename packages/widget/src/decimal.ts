/**
 * Exact decimal strings for the few sums the widget does itself ("Other" rows, a day's lines).
 * The API sends money as decimal strings with up to 18 decimal places; BigInt keeps them exact.
 * Floats are used only for proportions on screen (bar lengths), never for an amount shown.
 */
const SCALE = 18
const DECIMAL = /^([+-])?(\d*)(?:\.(\d*))?$/

export function toUnits(value: string): bigint {
  const match = DECIMAL.exec(value.trim())
  if (!match || (!match[2] && !match[3])) {
    const n = Number(value)
    if (!Number.isFinite(n)) throw new Error(`not a decimal: ${value}`)
    return toUnits(n.toFixed(SCALE))
  }
  const units = BigInt((match[2] || '0') + (match[3] ?? '').slice(0, SCALE).padEnd(SCALE, '0'))
  return match[1] === '-' ? -units : units
}

export function fromUnits(units: bigint): string {
  const negative = units < 0n
  const digits = (negative ? -units : units).toString().padStart(SCALE + 1, '0')
  const fraction = digits.slice(-SCALE).replace(/0+$/, '')
  return (negative ? '-' : '') + digits.slice(0, -SCALE) + (fraction ? '.' + fraction : '')
}

export function addDecimals(values: readonly string[]): string {
  return fromUnits(values.reduce((sum, v) => sum + toUnits(v), 0n))
}

export function compareDecimals(a: string, b: string): number {
  const d = toUnits(a) - toUnits(b)
  return d === 0n ? 0 : d < 0n ? -1 : 1
}

/** value × 10^power, exact (per-token prices shown per million tokens). */
export function shiftDecimal(value: string, power: number): string {
  const units = toUnits(value) * 10n ** BigInt(power)
  return fromUnits(units)
}

/** a ÷ b as a float, for proportions on screen only; 0 when b is zero. */
export function ratio(a: string, b: string): number {
  const denominator = Number(b)
  return denominator === 0 ? 0 : Number(a) / denominator
}
