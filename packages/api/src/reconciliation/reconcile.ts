import { billedAmount, planAt, type PlanVersion } from '../pricing/engine.ts'
import { AMOUNT_SCALE, Decimal, ZERO } from '../money/decimal.ts'

/**
 * The reconciliation itself (pure): provider-reported quantities and costs beside Burnrate's
 * metered ones, per provider, model, usage type and UTC day, classified and explained.
 */

export const RECONCILIATION_STATUSES = ['MATCHED', 'UNMETERED', 'OVER_METERED', 'PRICE_MISMATCH'] as const
export type ReconciliationStatus = (typeof RECONCILIATION_STATUSES)[number]

const HOUR = 3_600_000
const DAY = 86_400_000

/** One latest provider revision. */
export interface ProviderFact {
  provider: string
  source: 'usage' | 'cost' | 'generation' | 'credits'
  bucketStart: Date
  bucketWidth: string
  /** The model as Burnrate names it (resolved through the catalog), or as reported. */
  model: string
  /** The provider's own name for it. */
  reportedModel?: string
  usageType: string
  quantity: Decimal | null
  cost: Decimal | null
}

/** Our events of one hour, provider and model. */
export interface OurHour {
  hour: Date
  provider: string
  model: string
  events: number
  unpricedEvents: number
  /** Gross quantities by usage type (input, output, cache_read, …, requests = events). */
  quantities: Readonly<Record<string, Decimal>>
}

interface OurLineCost {
  hour: Date
  provider: string
  model: string
  /** The priced line's usage type, as stored. */
  usageType: string
  cost: Decimal
}

export interface CatalogChange {
  provider: string
  model: string
  usageType: string
  /** OPENED: a price came into force at `at`; CLOSED: the one in force ended at `at`. */
  kind: 'OPENED' | 'CLOSED'
  at: Date
  unitPrice: string
  source: string
}

export interface HourDifference {
  hour: Date
  providerQuantity: Decimal
  ourQuantity: Decimal
  difference: Decimal
  /** Our UNPRICED events of that hour and model (every usage type). */
  unpricedEvents: number
}

export interface ReconciliationRow {
  day: Date
  provider: string
  /** Our model name when we metered it, else the provider's. */
  model: string
  /** The provider's own model name(s) for this row. */
  providerModels: string[]
  usageType: string
  providerQuantity: Decimal | null
  ourQuantity: Decimal | null
  quantityDifference: Decimal | null
  quantityDifferencePercent: Decimal | null
  providerCost: Decimal | null
  ourCost: Decimal | null
  costDifference: Decimal | null
  costDifferencePercent: Decimal | null
  ourEvents: number
  ourUnpricedEvents: number
  status: ReconciliationStatus
  /** UNMETERED: the missing cost (provider's minus ours when both are known, else at our unit cost). */
  estimatedCost: Decimal | null
  /** UNMETERED: estimatedCost billed at the tenant's default plan (the customers are unknown). */
  estimatedBillableAmount: Decimal | null
  hours: HourDifference[]
  priceChanges: CatalogChange[]
  notes: string[]
}

export interface ReconcileInput {
  from: Date
  to: Date
  tolerancePercent: Decimal
  facts: readonly ProviderFact[]
  ours: readonly OurHour[]
  ourCosts: readonly OurLineCost[]
  catalogChanges: readonly CatalogChange[]
  defaultPlans: readonly PlanVersion[]
  currency: string
}

/** Model names compared without a trailing date stamp (gpt-4o-2024-08-06 ~ gpt-4o, claude-x-20250514 ~ claude-x). */
export function modelKey(model: string): string {
  return model
    .trim()
    .toLowerCase()
    .replace(/-(\d{4}-\d{2}-\d{2}|\d{8})$/, '')
}

/** How a priced line's usage type is compared with providers' cost lines. */
function costUsageType(lineType: string): string {
  if (lineType === 'reasoning') return 'output'
  if (lineType === 'cache_write_1h_tokens') return 'cache_write'
  return lineType
}

/** Whether a and b differ by more than the tolerance (percent of the larger). */
export function beyondTolerance(a: Decimal, b: Decimal, tolerancePercent: Decimal): boolean {
  if (a.equals(b)) return false
  const larger = Decimal.max(a.abs(), b.abs())
  return a.minus(b).abs().greaterThan(larger.times(tolerancePercent).dividedBy(100))
}

export function classify(
  row: Pick<ReconciliationRow, 'providerQuantity' | 'ourQuantity' | 'providerCost' | 'ourCost'>,
  tolerancePercent: Decimal,
  quantitiesAgree: boolean,
): ReconciliationStatus {
  const { providerQuantity: pq, ourQuantity: oq, providerCost: pc, ourCost: oc } = row
  if (pq !== null) {
    const ours = oq ?? ZERO
    if (beyondTolerance(pq, ours, tolerancePercent)) return pq.greaterThan(ours) ? 'UNMETERED' : 'OVER_METERED'
    if (pc !== null && oc !== null && beyondTolerance(pc, oc, tolerancePercent)) return 'PRICE_MISMATCH'
    return 'MATCHED'
  }
  if (pc !== null) {
    const ours = oc ?? ZERO
    if (!beyondTolerance(pc, ours, tolerancePercent)) return 'MATCHED'
    if (quantitiesAgree) return 'PRICE_MISMATCH'
    return pc.greaterThan(ours) ? 'UNMETERED' : 'OVER_METERED'
  }
  return 'MATCHED'
}

const percentOf = (difference: Decimal, base: Decimal | null) =>
  base === null || base.isZero()
    ? null
    : difference.times(100).dividedBy(base).toDecimalPlaces(4, Decimal.ROUND_HALF_EVEN)

const dayOf = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY)
const hourOf = (d: Date) => new Date(Math.floor(d.getTime() / HOUR) * HOUR)

interface Acc {
  day: Date
  provider: string
  key: string
  usageType: string
  ourModel: string | null
  providerModels: Set<string>
  pq: Decimal | null
  oq: Decimal | null
  pc: Decimal | null
  oc: Decimal | null
  pHours: Map<number, Decimal>
  oHours: Map<number, Decimal>
  dailyOnly: boolean
}

const TOTAL_TYPES = new Set(['total', 'credits'])

export function reconcile(input: ReconcileInput): ReconciliationRow[] {
  const tol = input.tolerancePercent
  const from = input.from.getTime()
  const to = input.to.getTime()
  const inRange = (d: Date) => d.getTime() >= from && d.getTime() < to

  // What each provider reports: the quantity types, whether costs come by usage type or as totals,
  // and the days it covers (between its first and last reported bucket).
  const quantityTypes = new Map<string, Set<string>>()
  const totalCostProviders = new Set<string>()
  const typedCostProviders = new Set<string>()
  const costDays = new Set<string>()
  const coverage = new Map<string, { first: number; last: number }>()
  for (const f of input.facts) {
    if (!inRange(f.bucketStart)) continue
    const day = dayOf(f.bucketStart).getTime()
    const c = coverage.get(f.provider)
    coverage.set(
      f.provider,
      c ? { first: Math.min(c.first, day), last: Math.max(c.last, day) } : { first: day, last: day },
    )
    if (f.quantity !== null) {
      let set = quantityTypes.get(f.provider)
      if (!set) quantityTypes.set(f.provider, (set = new Set()))
      set.add(f.usageType)
    }
    if (f.cost !== null) {
      if (f.usageType === 'total') totalCostProviders.add(f.provider)
      else if (f.usageType !== 'credits') typedCostProviders.add(f.provider)
      costDays.add(`${f.provider}|${day}`)
    }
  }
  const covered = (provider: string, day: Date) => {
    const c = coverage.get(provider)
    return !!c && day.getTime() >= c.first && day.getTime() <= c.last
  }

  const rows = new Map<string, Acc>()
  const acc = (provider: string, model: string, usageType: string, day: Date): Acc => {
    const key = modelKey(model)
    const id = `${provider}|${key}|${usageType}|${day.getTime()}`
    let a = rows.get(id)
    if (!a) {
      a = {
        day,
        provider,
        key,
        usageType,
        ourModel: null,
        providerModels: new Set(),
        pq: null,
        oq: null,
        pc: null,
        oc: null,
        pHours: new Map(),
        oHours: new Map(),
        dailyOnly: false,
      }
      rows.set(id, a)
    }
    return a
  }

  for (const f of input.facts) {
    if (!inRange(f.bucketStart)) continue
    const day = dayOf(f.bucketStart)
    const a = acc(f.provider, f.model, f.usageType, day)
    if (f.model) a.providerModels.add(f.reportedModel ?? f.model)
    if (f.quantity !== null) {
      a.pq = (a.pq ?? ZERO).plus(f.quantity)
      if (f.bucketWidth === '1h' || f.bucketWidth === 'gen') {
        const h = hourOf(f.bucketStart).getTime()
        a.pHours.set(h, (a.pHours.get(h) ?? ZERO).plus(f.quantity))
      } else a.dailyOnly = true
    }
    if (f.cost !== null) a.pc = (a.pc ?? ZERO).plus(f.cost)
  }

  // Our events: unpriced counts by (provider, model key, hour), quantities into the types the provider reports.
  const unpricedByHour = new Map<string, number>()
  const eventsByDay = new Map<string, { events: number; unpriced: number }>()
  for (const o of input.ours) {
    const day = dayOf(o.hour)
    if (!inRange(o.hour) || !covered(o.provider, day)) continue
    const key = modelKey(o.model)
    unpricedByHour.set(`${o.provider}|${key}|${hourOf(o.hour).getTime()}`, o.unpricedEvents)
    const dk = `${o.provider}|${key}|${day.getTime()}`
    const e = eventsByDay.get(dk) ?? { events: 0, unpriced: 0 }
    eventsByDay.set(dk, { events: e.events + o.events, unpriced: e.unpriced + o.unpricedEvents })
    for (const usageType of quantityTypes.get(o.provider) ?? []) {
      const q = o.quantities[usageType] ?? ZERO
      const existing = rows.get(`${o.provider}|${key}|${usageType}|${day.getTime()}`)
      if (q.isZero() && !existing) continue
      const a = acc(o.provider, o.model, usageType, day)
      a.ourModel = o.model
      a.oq = (a.oq ?? ZERO).plus(q)
      const h = hourOf(o.hour).getTime()
      a.oHours.set(h, (a.oHours.get(h) ?? ZERO).plus(q))
    }
  }

  // Our costs: by usage type where the provider states costs by type; as the model's total where it
  // states totals (OpenRouter generations); the provider's whole day against its credit usage.
  for (const c of input.ourCosts) {
    const day = dayOf(c.hour)
    if (!inRange(c.hour) || !covered(c.provider, day)) continue
    if (!costDays.has(`${c.provider}|${day.getTime()}`)) continue
    if (totalCostProviders.has(c.provider)) {
      const a = acc(c.provider, c.model, 'total', day)
      a.ourModel = c.model
      a.oc = (a.oc ?? ZERO).plus(c.cost)
    } else if (typedCostProviders.has(c.provider)) {
      const a = acc(c.provider, c.model, costUsageType(c.usageType), day)
      a.ourModel = c.model
      a.oc = (a.oc ?? ZERO).plus(c.cost)
    }
    const credits = rows.get(`${c.provider}|${modelKey('*')}|credits|${day.getTime()}`)
    if (credits) credits.oc = (credits.oc ?? ZERO).plus(c.cost)
  }

  // Rows of a provider-day with costs by type: a side with no cost line for the type cost nothing.
  for (const a of rows.values()) {
    if (costDays.has(`${a.provider}|${a.day.getTime()}`) && (a.pc !== null || a.oc !== null)) {
      a.pc ??= ZERO
      a.oc ??= ZERO
    }
    if (a.pq !== null) a.oq ??= ZERO
  }

  // Quantities agree for a provider, model and day when every quantity row of it is within tolerance.
  const quantityMismatch = new Set<string>()
  for (const a of rows.values()) {
    if (a.pq !== null && beyondTolerance(a.pq, a.oq ?? ZERO, tol))
      quantityMismatch.add(`${a.provider}|${a.key}|${a.day.getTime()}`)
  }
  const providerDayMismatch = new Set([...quantityMismatch].map((k) => k.split('|')[0] + '|' + k.split('|')[2]))

  const result: ReconciliationRow[] = []
  for (const a of rows.values()) {
    if (a.pq === null && a.pc === null && a.oq === null && a.oc === null) continue
    // Ours only, of a type the provider does not report: nothing to compare.
    if (a.pq === null && a.pc === null && a.oq !== null && a.oc === null) continue
    const dayKey = `${a.provider}|${a.key}|${a.day.getTime()}`
    const quantitiesAgree =
      a.usageType === 'credits'
        ? !providerDayMismatch.has(`${a.provider}|${a.day.getTime()}`)
        : !quantityMismatch.has(dayKey)
    const row = {
      providerQuantity: a.pq,
      ourQuantity: a.pq === null ? null : a.oq,
      providerCost: a.pc,
      ourCost: a.pc === null ? null : a.oc,
    }
    const status = classify(row, tol, quantitiesAgree)
    const events = eventsByDay.get(dayKey) ?? { events: 0, unpriced: 0 }
    const quantityDifference =
      row.providerQuantity !== null ? row.providerQuantity.minus(row.ourQuantity ?? ZERO) : null
    const costDifference = row.providerCost !== null ? row.providerCost.minus(row.ourCost ?? ZERO) : null

    const hours: HourDifference[] = []
    if (status !== 'MATCHED' && a.pq !== null && !a.dailyOnly) {
      for (const h of [...new Set([...a.pHours.keys(), ...a.oHours.keys()])].sort((x, y) => x - y)) {
        const p = a.pHours.get(h) ?? ZERO
        const o = a.oHours.get(h) ?? ZERO
        if (!beyondTolerance(p, o, tol)) continue
        hours.push({
          hour: new Date(h),
          providerQuantity: p,
          ourQuantity: o,
          difference: p.minus(o),
          unpricedEvents: unpricedByHour.get(`${a.provider}|${a.key}|${h}`) ?? 0,
        })
      }
    }

    let estimatedCost: Decimal | null = null
    if (status === 'UNMETERED') {
      if (costDifference !== null && costDifference.greaterThan(0)) estimatedCost = costDifference
      else if (quantityDifference !== null && row.ourQuantity && !row.ourQuantity.isZero() && a.oc !== null)
        estimatedCost = quantityDifference
          .times(a.oc)
          .dividedBy(row.ourQuantity)
          .toDecimalPlaces(AMOUNT_SCALE, Decimal.ROUND_HALF_EVEN)
    }
    // The default plan in force that day; for days before any, the first one set.
    const plan =
      planAt(input.defaultPlans, '\u0000no-customer', a.day) ??
      (input.defaultPlans.length > 0 ? planAt(input.defaultPlans, '\u0000no-customer', new Date(8.64e15)) : null)
    const estimatedBillableAmount = estimatedCost ? billedAmount(estimatedCost, plan) : null

    const models = new Set([a.key, ...[...a.providerModels].map(modelKey)])
    const priceChanges =
      status === 'MATCHED'
        ? []
        : input.catalogChanges.filter(
            (c) =>
              c.provider === a.provider &&
              models.has(modelKey(c.model)) &&
              (TOTAL_TYPES.has(a.usageType) || costUsageType(c.usageType) === a.usageType) &&
              dayOf(c.at).getTime() === a.day.getTime(),
          )

    result.push({
      day: a.day,
      provider: a.provider,
      model: a.ourModel ?? [...a.providerModels][0] ?? a.key,
      providerModels: [...a.providerModels].sort(),
      usageType: a.usageType,
      ...row,
      quantityDifference,
      quantityDifferencePercent: quantityDifference ? percentOf(quantityDifference, row.providerQuantity) : null,
      costDifference,
      costDifferencePercent: costDifference ? percentOf(costDifference, row.providerCost) : null,
      ourEvents: events.events,
      ourUnpricedEvents: events.unpriced,
      status,
      estimatedCost,
      estimatedBillableAmount,
      hours,
      priceChanges,
      notes: [],
    })
    const last = result[result.length - 1]!
    last.notes = explain(last, a.dailyOnly, plan !== null, input.currency)
  }
  return result.sort(
    (x, y) =>
      x.day.getTime() - y.day.getTime() ||
      x.provider.localeCompare(y.provider) ||
      x.model.localeCompare(y.model) ||
      x.usageType.localeCompare(y.usageType),
  )
}

const hhmm = (d: Date) => d.toISOString().slice(11, 16)

/** Plain sentences: what differs, where, and what the data says about why. */
function explain(row: ReconciliationRow, dailyOnly: boolean, hasPlan: boolean, currency: string): string[] {
  if (row.status === 'MATCHED') return []
  const notes: string[] = []
  const what = `${row.provider} ${row.model} ${row.usageType}`
  if (row.status === 'UNMETERED' || row.status === 'OVER_METERED') {
    if (row.quantityDifference !== null) {
      const more = row.status === 'UNMETERED' ? 'more' : 'fewer'
      notes.push(
        `${row.provider} reported ${row.quantityDifference.abs().toFixed()} ${more} ${row.usageType} than Burnrate metered for ${row.model}.`,
      )
    } else if (row.costDifference !== null) {
      notes.push(
        `${row.provider} charged ${row.costDifference.abs().toFixed()} ${currency} ${row.status === 'UNMETERED' ? 'more' : 'less'} than Burnrate's cost (${what}).`,
      )
    }
    if (row.hours.length > 0)
      notes.push(
        `Hours (UTC) that differ: ${row.hours.map((h) => `${hhmm(h.hour)} (${h.difference.toFixed()})`).join(', ')}.`,
      )
    else if (dailyOnly) notes.push('The provider reports this by day only: no hourly breakdown.')
  }
  if (row.status === 'UNMETERED') {
    if (row.estimatedBillableAmount)
      notes.push(
        `Revenue leakage: estimated billable amount ${row.estimatedBillableAmount.toFixed()} ${currency} ${hasPlan ? "at the tenant's default plan" : 'at cost (no default plan)'}; which customers made these calls is unknown.`,
      )
    else notes.push('No cost is known for this usage type: the billable amount cannot be estimated.')
  }
  if (row.status === 'PRICE_MISMATCH' && row.providerCost !== null) {
    notes.push(
      `Quantities agree but cost differs: ${row.provider} charged ${row.providerCost.toFixed()} ${currency}, Burnrate's cost is ${(row.ourCost ?? ZERO).toFixed()} ${currency} (difference ${row.costDifference?.toFixed()}).`,
    )
  }
  if (row.ourUnpricedEvents > 0)
    notes.push(
      `${row.ourUnpricedEvents} of Burnrate's events for ${row.model} that day are UNPRICED: their cost is not counted.`,
    )
  else if (row.status === 'PRICE_MISMATCH') notes.push('None of our events that day are UNPRICED.')
  if (row.priceChanges.length > 0)
    notes.push(
      `The catalog price changed that day: ${row.priceChanges
        .map(
          (c) =>
            `${c.usageType} ${c.kind === 'OPENED' ? 'from' : 'until'} ${c.at.toISOString()} at ${c.unitPrice} (${c.source})`,
        )
        .join('; ')}.`,
    )
  else if (row.status === 'PRICE_MISMATCH')
    notes.push('No catalog price changed that day: the price in force differs from what the provider charged.')
  return notes
}

/** RFC 4180 CSV of the table, for finance. */
export function toCsv(rows: readonly ReconciliationRow[], currency: string): string {
  const header = [
    'day',
    'provider',
    'model',
    'usage_type',
    'provider_quantity',
    'our_quantity',
    'quantity_difference',
    'quantity_difference_percent',
    'provider_cost',
    'our_cost',
    'cost_difference',
    'cost_difference_percent',
    'currency',
    'our_events',
    'our_unpriced_events',
    'status',
    'estimated_billable_amount',
    'explanation',
  ]
  const cell = (v: string | number | Decimal | null) => {
    if (v === null) return ''
    const text = v instanceof Decimal ? v.toFixed() : String(v)
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
  }
  const lines = [header.join(',')]
  for (const r of rows) {
    lines.push(
      [
        r.day.toISOString().slice(0, 10),
        r.provider,
        r.model,
        r.usageType,
        r.providerQuantity,
        r.ourQuantity,
        r.quantityDifference,
        r.quantityDifferencePercent,
        r.providerCost,
        r.ourCost,
        r.costDifference,
        r.costDifferencePercent,
        currency,
        r.ourEvents,
        r.ourUnpricedEvents,
        r.status,
        r.estimatedBillableAmount,
        r.notes.join(' '),
      ]
        .map(cell)
        .join(','),
    )
  }
  return lines.join('\r\n') + '\r\n'
}
