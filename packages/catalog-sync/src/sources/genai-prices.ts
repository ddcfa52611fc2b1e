import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Decimal as DecimalJs } from 'decimal.js'
import {
  calcPrice,
  findProvider,
  waitForUpdate,
  type ConditionalPrice,
  type ModelInfo,
  type ModelPrice,
  type Provider,
  type TieredPrices,
} from '@pydantic/genai-prices'
import { z } from 'zod'
import { modelKey } from '../model-key.ts'
import { SOURCE_EPOCH } from '../source-epoch.ts'
import type { FeedIssue, NormalizedPrice, PriceTier, SourceSnapshot, TimeWindow } from '../types.ts'
import { UNIT_BY_PRICE_KEY, type UsageUnit } from '../units.ts'
import { contentVersion, fetchJson, SourceError, type FetchOptions } from './fetch.ts'
import { parsePrice, rawValueText } from './price-value.ts'

export const GENAI_PRICES_SOURCE = 'genai-prices'
const GENAI_PRICES_PACKAGE = '@pydantic/genai-prices'

/** A base price has no start date of its own: it is what genai-prices charges for any timestamp. */
export { SOURCE_EPOCH }

/**
 * Prices per hour become prices per second by dividing by 3600, which is not always a finite
 * decimal (0.04 / 3600 = 0.0000111…). Such quotients are rounded at this scale: the error on a
 * billion seconds stays below 1e-21, far under the 18 places kept for amounts. Divisions by 1e3
 * and 1e6 are exact and never rounded.
 */
export const UNIT_PRICE_SCALE = 30
const Decimal = DecimalJs.clone({ precision: 80, rounding: DecimalJs.ROUND_HALF_EVEN, toExpNeg: -80, toExpPos: 80 })

/** Exact unit price from a genai-prices number, which is the price of `per` units. */
export function unitPriceOf(pricePerUnits: number, per: number): string {
  // String(number) is the shortest text that round-trips the double: the decimal the data file wrote.
  const quotient = new Decimal(String(pricePerUnits)).div(per)
  const exact = quotient.decimalPlaces() <= UNIT_PRICE_SCALE
  return (exact ? quotient : quotient.toDecimalPlaces(UNIT_PRICE_SCALE)).toFixed()
}

/** Seconds after 00:00 UTC of a genai-prices time of day ("00:30:00Z", "08:00:00+08:00"), as genai-prices reads it. */
export function secondOfDay(time: string): number {
  const match = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(time)
  if (!match) throw new Error(`invalid time of day: ${time}`)
  const [, hours, minutes, seconds, fraction = '', zone, sign, offsetHours = '00', offsetMinutes = '00'] = match
  const local = Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds) + Number(`0.${fraction}`)
  const offset = zone === 'Z' ? 0 : (sign === '+' ? 1 : -1) * (Number(offsetHours) * 3600 + Number(offsetMinutes) * 60)
  return (local - offset + 86_400) % 86_400
}

function isTiered(value: number | TieredPrices): value is TieredPrices {
  return typeof value === 'object'
}

/** Where one conditional price wins under genai-prices' rule, restated as an effective period. */
interface EntryPeriod {
  prices: ModelPrice
  from: number
  to: number
  timeWindow: TimeWindow | null
}

/**
 * genai-prices scans a model's conditional prices from last to first and takes the first whose
 * constraint matches (entry 0 when none does). Restated as rows: an unwindowed entry wins from its
 * start date until the earliest start date of any later unwindowed entry; entry 0 also covers
 * everything before the first start date. A time_of_date entry matches at any date, so it is in
 * force from the epoch until a later start_date entry takes over, and within its window it beats
 * every unwindowed entry (in the bundled data windows always come last, so this is exact).
 */
function entryPeriods(model: ModelInfo): EntryPeriod[] {
  const entries: ConditionalPrice[] = Array.isArray(model.prices) ? model.prices : [{ prices: model.prices }]
  // Where each unwindowed entry starts to match; null for a time window, which matches at any date.
  const starts = entries.map((entry, index): number | null => {
    const constraint = entry.constraint
    // Entry 0 is also the fallback when nothing matches, so whatever its constraint it covers all time.
    if (index === 0 || !constraint) return SOURCE_EPOCH.getTime()
    if (constraint.type === 'time_of_date') return null
    const start = new Date(`${constraint.start_date}T00:00:00Z`).getTime()
    if (Number.isNaN(start))
      throw new Error(`genai-prices model ${model.id}: invalid start_date ${constraint.start_date}`)
    return start
  })
  const periods: EntryPeriod[] = []
  entries.forEach((entry, index) => {
    let supersededAt = Number.POSITIVE_INFINITY
    for (const later of starts.slice(index + 1)) if (later !== null) supersededAt = Math.min(supersededAt, later)
    const start = starts[index]
    const constraint = entry.constraint
    if (start === null && constraint?.type === 'time_of_date') {
      const window = { startSecond: secondOfDay(constraint.start_time), endSecond: secondOfDay(constraint.end_time) }
      // An empty window never matches in genai-prices.
      if (window.startSecond !== window.endSecond) {
        periods.push({ prices: entry.prices, from: SOURCE_EPOCH.getTime(), to: supersededAt, timeWindow: window })
      }
    } else if (start !== null && start !== undefined && start < supersededAt) {
      periods.push({ prices: entry.prices, from: start, to: supersededAt, timeWindow: null })
    }
  })
  return periods
}

function tiersOf(value: TieredPrices, unit: UsageUnit): PriceTier[] {
  // genai-prices lets the last exceeded tier in array order win; sorted by start, that is the highest one.
  return [...value.tiers]
    .sort((a, b) => a.start - b.start)
    .map((tier) => ({ start: tier.start, unitPrice: unitPriceOf(tier.price, unit.per) }))
}

function sameTiers(a: PriceTier[] | null, b: PriceTier[] | null): boolean {
  if (a === null || b === null) return a === b
  return a.length === b.length && a.every((tier, i) => tier.start === b[i]!.start && tier.unitPrice === b[i]!.unitPrice)
}

/** One key's rows in time order, with back-to-back rows of the same price joined into one. */
function mergeEqualNeighbours(timeline: NormalizedPrice[]): NormalizedPrice[] {
  const merged: NormalizedPrice[] = []
  for (const row of [...timeline].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime())) {
    const previous = merged.at(-1)
    if (
      previous &&
      previous.effectiveTo?.getTime() === row.effectiveFrom.getTime() &&
      previous.unitPrice === row.unitPrice &&
      sameTiers(previous.tiers, row.tiers)
    ) {
      previous.effectiveTo = row.effectiveTo
    } else {
      merged.push({ ...row })
    }
  }
  return merged
}

/**
 * The bundled genai-prices data as effective-dated rows. Pure: the same providers and version
 * always give the same snapshot. Consecutive periods with the same price are merged into one row,
 * so a start_date entry only opens rows for the usage types whose price actually changes there.
 */
export function fromGenaiPrices(providers: readonly Provider[], version: string): SourceSnapshot {
  const prices: NormalizedPrice[] = []
  const skipped = new Map<string, FeedIssue>()
  let models = 0
  for (const provider of providers) {
    for (const model of provider.models) {
      // Per (usage type, window): that key's rows, merged below where neighbours share a price.
      const timelines = new Map<string, NormalizedPrice[]>()
      for (const period of entryPeriods(model)) {
        for (const [priceKey, value] of Object.entries(period.prices)) {
          if (value === undefined) continue
          const unit = UNIT_BY_PRICE_KEY.get(priceKey)
          if (!unit) {
            // Once per model and key, however many dated periods repeat it.
            const name = `${provider.id}/${model.id}`
            if (!skipped.has(`${name}\u0000${priceKey}`)) {
              skipped.set(`${name}\u0000${priceKey}`, {
                model: name,
                field: priceKey,
                rawValue: rawValueText(value),
                reason: `unknown unit: no usage type for ${priceKey}`,
              })
            }
            continue
          }
          const key = `${unit.usageType}|${period.timeWindow ? `${period.timeWindow.startSecond}-${period.timeWindow.endSecond}` : ''}`
          const timeline = timelines.get(key) ?? []
          timelines.set(key, timeline)
          timeline.push({
            provider: provider.id,
            model: model.id,
            usageType: unit.usageType,
            unit: unit.unit,
            unitPrice: unitPriceOf(isTiered(value) ? value.base : value, unit.per),
            currency: 'USD',
            tiers: isTiered(value) && value.tiers.length > 0 ? tiersOf(value, unit) : null,
            timeWindow: period.timeWindow,
            effectiveFrom: new Date(period.from),
            effectiveTo: Number.isFinite(period.to) ? new Date(period.to) : null,
          })
        }
      }
      for (const timeline of timelines.values()) prices.push(...mergeEqualNeighbours(timeline))
      if (timelines.size > 0) models++
    }
  }
  return {
    source: GENAI_PRICES_SOURCE,
    sourceVersion: version,
    prices,
    models,
    skipped: [...skipped.values()].sort((a, b) => a.model.localeCompare(b.model) || a.field!.localeCompare(b.field!)),
  }
}

/** The installed @pydantic/genai-prices version: the version of the data it bundles. */
export function bundledGenaiPricesVersion(): string {
  // The package's `exports` hide package.json, so find it next to the resolved entry point (dist/).
  const require = createRequire(import.meta.url)
  const manifestPath = join(dirname(require.resolve(GENAI_PRICES_PACKAGE)), '..', 'package.json')
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name?: string; version?: string }
  if (manifest.name !== GENAI_PRICES_PACKAGE || !manifest.version) {
    throw new Error(`could not read the ${GENAI_PRICES_PACKAGE} version from ${manifestPath}`)
  }
  return manifest.version
}

/** The price data bundled in @pydantic/genai-prices (no network), as a snapshot. */
export async function loadBundledGenaiPrices(): Promise<SourceSnapshot> {
  const providers = await waitForUpdate()
  if (!providers) throw new Error(`${GENAI_PRICES_PACKAGE} returned no provider data`)
  return fromGenaiPrices(providers, bundledGenaiPricesVersion())
}

export interface GenaiPricesModelId {
  provider: string
  model: string
}

function matchModel(model: string, providerId: string | undefined): GenaiPricesModelId | null {
  let match
  try {
    // Usage is irrelevant here: calcPrice is the library's only public entry to its match rules.
    match = calcPrice({}, model, { providerId })
  } catch {
    return null
  }
  if (!match) return null
  // Through fallback_model_providers (azure → openai, …) the model belongs to another provider;
  // the catalog keys rows by the provider that owns the model.
  if (match.provider.models.includes(match.model)) return { provider: match.provider.id, model: match.model.id }
  for (const fallbackId of match.provider.fallback_model_providers ?? []) {
    const owner = findProvider({ providerId: fallbackId })
    if (owner?.models.includes(match.model)) return { provider: owner.id, model: match.model.id }
  }
  return null
}

/**
 * The canonical genai-prices (provider, model) for a model name as an event reported it, through
 * the library's own match rules: aliases, date suffixes (gpt-4o-2024-08-06 → gpt-4o), fallback
 * providers, and provider inference when none is given. Gateway-style names ("openai/gpt-4o") that
 * the library does not know as such are retried as provider "openai", model "gpt-4o".
 */
export function resolveGenaiPricesModel(model: string, provider?: string | null): GenaiPricesModelId | null {
  const modelName = model.trim().toLowerCase()
  const providerId = provider?.trim().toLowerCase() || undefined
  if (!modelName) return null
  const direct = matchModel(modelName, providerId)
  if (direct) return direct
  const slash = modelName.indexOf('/')
  if (slash > 0 && slash < modelName.length - 1) {
    return matchModel(modelName.slice(slash + 1), providerId ?? modelName.slice(0, slash))
  }
  return null
}

/** The published data file (the same shape the package bundles), newer than any installed version. */
export const GENAI_PRICES_DATA_URL = 'https://raw.githubusercontent.com/pydantic/genai-prices/main/prices/data.json'

const genaiPricesDataSchema = z
  .array(
    z.looseObject({
      id: z.string().min(1),
      models: z.array(
        z.looseObject({
          id: z.string().min(1),
          prices: z.union([z.looseObject({}), z.array(z.looseObject({ prices: z.looseObject({}) }))]),
        }),
      ),
    }),
  )
  .min(1)

/** A genai-prices data.json document (fetched or read from a file) as a snapshot of the same source as the bundled data. */
export function fromGenaiPricesJson(input: unknown, version = contentVersion(input)): SourceSnapshot {
  const parsed = genaiPricesDataSchema.safeParse(input)
  if (!parsed.success)
    throw new SourceError(GENAI_PRICES_SOURCE, 'schema', `unexpected data.json shape: ${z.prettifyError(parsed.error)}`)
  let snapshot: SourceSnapshot
  try {
    snapshot = fromGenaiPrices(parsed.data as unknown as Provider[], version)
  } catch (error) {
    throw new SourceError(
      GENAI_PRICES_SOURCE,
      'schema',
      `unreadable price data: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  // The adapter trusts numbers from the bundled package; a fetched file is checked row by row.
  // A model with a bad value keeps the rows it has (unreadable), rather than losing that usage type.
  const rejected: FeedIssue[] = []
  const unreadable = new Map<string, { provider: string; model: string }>()
  for (const price of snapshot.prices) {
    const values = [price.unitPrice, ...(price.tiers ?? []).map((tier) => tier.unitPrice)]
    const bad = values.find((value) => !parsePrice(value).ok)
    if (bad === undefined) continue
    rejected.push({
      model: modelKey(price.provider, price.model),
      field: price.usageType,
      rawValue: rawValueText(bad),
      reason: (parsePrice(bad) as { reason: string }).reason,
    })
    unreadable.set(`${price.provider}/${price.model}`, { provider: price.provider, model: price.model })
  }
  const prices = snapshot.prices.filter((price) => !unreadable.has(`${price.provider}/${price.model}`))
  return { ...snapshot, prices, rejected, unreadable: [...unreadable.values()] }
}

export async function fetchGenaiPrices(
  url = GENAI_PRICES_DATA_URL,
  options: FetchOptions = {},
): Promise<SourceSnapshot> {
  const { json } = await fetchJson(GENAI_PRICES_SOURCE, url, options)
  return fromGenaiPricesJson(json)
}
