import { addDecimals, compareDecimals, ratio, shiftDecimal } from './decimal.ts'
import { languageFor, type MessageKey, type Translate } from './messages.ts'
import type { Budget, UsageGroup } from './types.ts'

const english = languageFor('en').t

const DAY_MS = 86_400_000

// Intl formatters are costly to build; the widget re-renders every few seconds.
const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>()
function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  let f = cache.get(key)
  if (!f) cache.set(key, (f = make()))
  return f as T
}

/**
 * Money for people: cents for ordinary amounts, more digits for sub-cent ones (AI usage is often
 * fractions of a cent, and "$0.00" for a real charge would look wrong). The decimal string goes to
 * Intl as is (exact, no float rounding on the way).
 */
export function formatMoney(value: string, currency: string, locale?: string, precise = false): string {
  const abs = Math.abs(Number(value))
  // precise (charge details): enough digits that the lines visibly add up to the event.
  const digits = abs === 0 || abs >= (precise ? 100 : 0.995) ? 2 : abs >= 0.01 && !precise ? 3 : 6
  const format = cached(
    `m${locale}${currency}${digits}`,
    () =>
      new Intl.NumberFormat(locale, {
        style: 'currency',
        currency,
        minimumFractionDigits: 2,
        maximumFractionDigits: digits,
      }),
  ) as Intl.NumberFormat
  return format.format(value as unknown as number)
}

export function formatNumber(value: string | number, locale?: string): string {
  const format = cached(
    `n${locale}`,
    () => new Intl.NumberFormat(locale, { maximumFractionDigits: 6 }),
  ) as Intl.NumberFormat
  return format.format(value as number)
}

export function formatPercent(fraction: number, locale?: string): string {
  const format = cached(
    `p${locale}`,
    () => new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 }),
  ) as Intl.NumberFormat
  return format.format(fraction)
}

export function formatDate(
  iso: string | number,
  locale: string | undefined,
  options: Intl.DateTimeFormatOptions,
): string {
  const format = cached(
    `d${locale}${JSON.stringify(options)}`,
    () => new Intl.DateTimeFormat(locale, options),
  ) as Intl.DateTimeFormat
  return format.format(new Date(iso))
}

/** A UTC day bucket, as the API groups DAY: "Nov 12". */
export const formatDay = (iso: string, locale?: string) =>
  formatDate(iso, locale, { month: 'short', day: 'numeric', timeZone: 'UTC' })

export const formatDateTime = (iso: string, locale?: string) =>
  formatDate(iso, locale, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' })

const TOKEN_TYPES = new Set([
  'input',
  'output',
  'cache_read',
  'cache_write',
  'reasoning',
  'input_audio',
  'output_audio',
])
export const isTokenUsage = (usageType: string) => TOKEN_TYPES.has(usageType) || usageType.endsWith('_tokens')

/** Token prices per million tokens (how providers quote them); other units per unit. */
export function formatUnitPrice(
  unitPrice: string,
  usageType: string,
  currency: string,
  locale?: string,
  t: Translate = english,
): string {
  return isTokenUsage(usageType)
    ? t('perMillion', { price: formatMoney(shiftDecimal(unitPrice, 6), currency, locale) })
    : t('perUnit', { price: formatMoney(unitPrice, currency, locale) })
}

/** The catalog's word for a usage type where it has one ("Cache read"), else the name made readable. */
export function usageTypeLabel(usageType: string, t: Translate = english): string {
  const key = `usage_${usageType}` as MessageKey
  const known = t(key)
  if (known !== key) return known
  const label = usageType.replace(/_/g, ' ')
  return label.charAt(0).toUpperCase() + label.slice(1)
}

/** "MARKUP 30" → "30% markup" (the percent sign as the locale writes it); null → "at cost". */
export function planLabel(plan: string | null, locale?: string, t: Translate = english): string {
  if (!plan) return t('atCost')
  const [kind, percent] = plan.split(' ')
  const formatted = cached(
    `pp${locale}`,
    () => new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 4 }),
  ) as Intl.NumberFormat
  // percent / 100 as a float is fine here: a plan's percentage has a few digits, shown, not summed.
  return t(kind === 'MARGIN' ? 'margin' : 'markup', { percent: formatted.format(Number(percent ?? 0) / 100) })
}

export interface DayBar {
  /** The first UTC day of the bar. */
  day: string
  amount: string
  events: number
  future: boolean
  /** Days in the bar: 1, or more where the chart is too narrow for a bar a day. */
  days: number
}

/**
 * Every UTC day of [from, to) with its spend, zero where nothing was used, so the chart's x axis
 * is the whole period and gaps are visible. At most 62 days (a long period shows its last ones).
 */
export function fillDays(groups: readonly UsageGroup[], from: string, to: string, now: number): DayBar[] {
  const byDay = new Map<number, UsageGroup>()
  for (const g of groups) if (g.bucketStart) byDay.set(Date.parse(g.bucketStart), g)
  const first = Math.floor(Date.parse(from) / DAY_MS) * DAY_MS
  const end = Date.parse(to)
  const bars: DayBar[] = []
  for (let t = first; t < end; t += DAY_MS) {
    const g = byDay.get(t)
    bars.push({
      day: new Date(t).toISOString(),
      amount: g?.amount ?? '0',
      events: g?.events ?? 0,
      future: t > now,
      days: 1,
    })
  }
  return bars.slice(-62)
}

/** Bars are at least this wide: a pointer target of 24 × 24 CSS px (WCAG 2.2 target size). */
export const MIN_BAR_PX = 24

/** How many days one bar must hold so that `count` days fit `width` px with bars of MIN_BAR_PX. */
export function daysPerBar(count: number, width: number): number {
  if (!(width > 0) || count <= 0) return 1
  let per = Math.max(1, Math.ceil((MIN_BAR_PX * count) / width))
  while (per < count && width / Math.ceil(count / per) < MIN_BAR_PX) per++
  return per
}

/** Consecutive days merged `per` to a bar, amounts summed exactly (a narrow chart on a phone). */
export function groupDays(days: readonly DayBar[], per: number): DayBar[] {
  if (per <= 1) return [...days]
  const bars: DayBar[] = []
  for (let i = 0; i < days.length; i += per) {
    const chunk = days.slice(i, i + per)
    bars.push({
      day: chunk[0]!.day,
      amount: addDecimals(chunk.map((d) => d.amount)),
      events: chunk.reduce((n, d) => n + d.events, 0),
      future: chunk.every((d) => d.future),
      days: chunk.length,
    })
  }
  return bars
}

/** What a budget's spend leaves: the remaining amount, or by how much it is over. */
export function remainingOf(spent: string, limit: string): { over: boolean; amount: string } {
  const over = compareDecimals(spent, limit) > 0
  return { over, amount: over ? addDecimals([spent, negate(limit)]) : addDecimals([limit, negate(spent)]) }
}

const negate = (v: string) => (v.startsWith('-') ? v.slice(1) : `-${v}`)

export interface Ranked {
  key: string
  label: string
  amount: string
  events: number
  share: number
  other?: boolean
}

/** Largest first; beyond `limit` rows the rest are summed (exactly) into one "Other" row. */
export function rankGroups(
  groups: readonly UsageGroup[],
  key: 'model' | 'feature',
  total: string,
  limit = 5,
  none = 'Unlabelled',
  t: Translate = english,
): Ranked[] {
  const sorted = [...groups].sort((a, b) => compareDecimals(b.amount, a.amount) || b.events - a.events)
  const row = (g: UsageGroup): Ranked => ({
    key: g[key] ?? '',
    label: g[key] ?? none,
    amount: g.amount,
    events: g.events,
    share: ratio(g.amount, total),
  })
  if (sorted.length <= limit) return sorted.map(row)
  const rest = sorted.slice(limit - 1)
  const amount = addDecimals(rest.map((g) => g.amount))
  return [
    ...sorted.slice(0, limit - 1).map(row),
    {
      key: '',
      label: t('others', { count: rest.length }),
      amount,
      events: rest.reduce((n, g) => n + g.events, 0),
      share: ratio(amount, total),
      other: true,
    },
  ]
}

/** The budget to show: the most used one (spent ÷ limit), the one a customer should watch. */
export function pickBudget(budgets: readonly Budget[]): Budget | null {
  let best: Budget | null = null
  for (const b of budgets) if (!best || ratio(b.spent, b.limit) > ratio(best.spent, best.limit)) best = b
  return best
}

/** The current calendar month in UTC, for customers without a budget. */
export function monthOf(now: number): { from: string; to: string } {
  const d = new Date(now)
  return {
    from: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)).toISOString(),
    to: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString(),
  }
}

export type Level = 'ok' | 'warn' | 'over'

/** ok below the second-highest threshold, warn from there, over at or beyond the limit. */
export function levelOf(spent: string, limit: string, thresholds: readonly number[]): Level {
  const used = ratio(spent, limit) * 100
  if (compareDecimals(spent, limit) >= 0 && Number(limit) > 0) return 'over'
  const warnAt = [...thresholds].filter((t) => t < 100).sort((a, b) => b - a)[0] ?? 80
  return used >= warnAt ? 'warn' : 'ok'
}

export function periodLabel(budget: Budget | null, t: Translate = english): string {
  if (!budget) return t('periodMonth')
  return t(budget.period === 'DAY' ? 'periodDay' : budget.period === 'WEEK' ? 'periodWeek' : 'periodMonth')
}

/** Nice rounded maximum for a chart axis: 1, 2 or 5 × 10^n at or above the largest value. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power
  return 10 * power
}
