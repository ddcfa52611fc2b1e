import { Decimal as DecimalJs } from 'decimal.js'
import { SOURCE_EPOCH } from './source-epoch.ts'
import type { CatalogCorrection, NormalizedPrice, PriceTier, TimeWindow } from './types.ts'

/** A catalog row of the source being synced, as read back from the database. */
export interface ExistingRow {
  id: number
  provider: string
  model: string
  usageType: string
  unit: string
  unitPrice: string
  currency: string
  tiers: PriceTier[] | null
  timeWindow: TimeWindow | null
  effectiveFrom: Date
  effectiveTo: Date | null
}

export interface CatalogDiff {
  /** Rows to insert. */
  open: NormalizedPrice[]
  /** Rows whose effective_to moves earlier (never before the sync's observedAt, or a timeline's correction start). */
  close: { id: number; effectiveTo: Date }[]
  /** Existing rows left exactly as they are. */
  unchanged: number
  /**
   * Timelines whose already-priced past the source corrects: it states a start date before
   * observedAt at which the catalog had another price (or none) for the model. From `from` on the
   * timeline follows the source; events since then can be re-priced (repriceUsage), never automatically.
   */
  corrections: CatalogCorrection[]
}

interface PriceFields {
  unit: string
  unitPrice: string
  currency: string
  tiers: PriceTier[] | null
}

/** Same price: unit, currency, and exactly equal decimals (the database may write "0.50" for "0.5"). */
export function samePrice(a: PriceFields, b: PriceFields): boolean {
  if (a.unit !== b.unit || a.currency !== b.currency || !new DecimalJs(a.unitPrice).eq(b.unitPrice)) return false
  if (a.tiers === null || b.tiers === null) return a.tiers === b.tiers
  return (
    a.tiers.length === b.tiers.length &&
    a.tiers.every(
      (tier, i) => tier.start === b.tiers![i]!.start && new DecimalJs(tier.unitPrice).eq(b.tiers![i]!.unitPrice),
    )
  )
}

export function timeWindowKey(window: TimeWindow | null): string {
  return window ? `${window.startSecond}-${window.endSecond}` : ''
}

const SEP = '\u0000'
const modelKey = (row: { provider: string; model: string }) => `${row.provider}${SEP}${row.model}`
/** A row's timeline: a windowed price and an unwindowed one of the same usage type never replace each other. */
const timelineKey = (row: { provider: string; model: string; usageType: string; timeWindow: TimeWindow | null }) =>
  `${modelKey(row)}${SEP}${row.usageType}${SEP}${timeWindowKey(row.timeWindow)}`

function pushTo<T>(groups: Map<string, T[]>, key: string, item: T): void {
  const group = groups.get(key)
  if (group) group.push(item)
  else groups.set(key, [item])
}

const OPEN = Number.POSITIVE_INFINITY
const toMs = (date: Date | null) => (date === null ? OPEN : date.getTime())

interface Span {
  from: number
  to: number
}

/**
 * Which of a timeline's rows is in force at `at`: among the rows covering it, the latest
 * effective_from, and on a tie the latest id. Rows normally never overlap; the tie rule only
 * matters when a price announced for the future was replaced before it took effect (a row can
 * not be closed at its own start), and the catalog service applies the same rule.
 */
export function rowInForce<T extends { id: number; effectiveFrom: Date; effectiveTo: Date | null }>(
  rows: readonly T[],
  at: number,
): T | undefined {
  let best: T | undefined
  for (const row of rows) {
    const from = row.effectiveFrom.getTime()
    if (from > at || toMs(row.effectiveTo) <= at) continue
    const bestFrom = best?.effectiveFrom.getTime() ?? Number.NEGATIVE_INFINITY
    if (!best || from > bestFrom || (from === bestFrom && row.id > best.id)) best = row
  }
  return best
}

/**
 * The part of a model's history that a sync may not change: every instant before `observedAt` at
 * which the model already had a row. Events there may have been priced and billed with those rows.
 * Instants where the model had no row at all are gaps, filled from the source (events there were
 * stored UNPRICED and wait for exactly that).
 */
function frozenSpans(rows: readonly ExistingRow[], observedAt: number): Span[] {
  const spans = rows
    .map((row) => ({ from: row.effectiveFrom.getTime(), to: Math.min(toMs(row.effectiveTo), observedAt) }))
    .filter((span) => span.from < span.to)
    .sort((a, b) => a.from - b.from)
  const merged: Span[] = []
  for (const span of spans) {
    const last = merged.at(-1)
    if (last && span.from <= last.to) last.to = Math.max(last.to, span.to)
    else merged.push({ ...span })
  }
  return merged
}

const SOURCE_EPOCH_MS = SOURCE_EPOCH.getTime()

function isFrozenAt(frozen: readonly Span[], at: number): boolean {
  return frozen.some((span) => span.from <= at && at < span.to)
}

/**
 * Where a timeline's frozen past must give way to the source: the earliest start date the source
 * states (anything but SOURCE_EPOCH) before observedAt, at which the model already had a row
 * (otherwise it is a gap, filled anyway) and this timeline's row in force has another price or
 * there is none. null: nothing to correct. Only the stated start is compared: a source saying
 * "P since D" corrects the past when the catalog disagrees at D, not wherever it differs later.
 */
function correctionStart(
  existing: readonly ExistingRow[],
  desired: readonly NormalizedPrice[],
  frozen: readonly Span[],
  observedAt: number,
): number | null {
  let earliest: number | null = null
  for (const price of desired) {
    const from = price.effectiveFrom.getTime()
    if (from === SOURCE_EPOCH_MS || from >= observedAt || (earliest !== null && from >= earliest)) continue
    if (!isFrozenAt(frozen, from)) continue
    const current = rowInForce(existing, from)
    if (!current || !samePrice(current, price)) earliest = from
  }
  return earliest
}

/** `spans` minus `cuts`; both sorted by start and without overlaps. */
function subtractSpans(spans: readonly Span[], cuts: readonly Span[]): Span[] {
  const out: Span[] = []
  for (const span of spans) {
    let from = span.from
    for (const cut of cuts) {
      if (cut.to <= from || cut.from >= span.to) continue
      if (cut.from > from) out.push({ from, to: cut.from })
      from = Math.max(from, cut.to)
      if (from >= span.to) break
    }
    if (from < span.to) out.push({ from, to: span.to })
  }
  return out
}

function priceOf(row: ExistingRow): NormalizedPrice {
  const { id: _id, ...price } = row
  return { ...price, currency: row.currency as NormalizedPrice['currency'] }
}

type Target =
  /** `price`: the desired price equal to the row's, absent where the past is kept whatever the source says. */
  | { kind: 'keep'; row: ExistingRow; price: NormalizedPrice | undefined }
  | { kind: 'open'; price: NormalizedPrice }
  | { kind: 'none' }

interface Run {
  target: Target
  from: number
  to: number
}

/**
 * Brings one timeline (provider, model, usage type, window) to the source's desired state without
 * rewriting history: the past that the catalog already priced is kept, and from `observedAt` on
 * the row in force at every instant carries the desired price. Only two writes exist: inserting a
 * row, and moving an effective_to earlier (to a point at or after observedAt). A correction (see
 * correctionStart) moves this timeline's observedAt back to the start date the source stated.
 */
function diffTimeline(
  existing: readonly ExistingRow[],
  desired: readonly NormalizedPrice[],
  modelFrozen: readonly Span[],
  syncObservedAt: number,
  out: CatalogDiff,
): void {
  const desiredSorted = [...desired].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime())
  for (let i = 1; i < desiredSorted.length; i++) {
    if (toMs(desiredSorted[i - 1]!.effectiveTo) > desiredSorted[i]!.effectiveFrom.getTime()) {
      const row = desiredSorted[i]!
      throw new Error(
        `source rows overlap for ${row.provider}/${row.model} ${row.usageType} at ${row.effectiveFrom.toISOString()}`,
      )
    }
  }
  const correctFrom = correctionStart(existing, desiredSorted, modelFrozen, syncObservedAt)
  const observedAt = correctFrom ?? syncObservedAt
  // Corrected: from correctFrom to observedAt, the instants where the source states a price are no
  // longer frozen. Where it states none the billed past stays, so the model never loses coverage it
  // had (which a later sync would otherwise fill, and the result would not be stable).
  const frozen =
    correctFrom === null
      ? modelFrozen
      : subtractSpans(
          modelFrozen,
          desiredSorted
            .map((price) => ({
              from: Math.max(price.effectiveFrom.getTime(), correctFrom),
              to: Math.min(toMs(price.effectiveTo), syncObservedAt),
            }))
            .filter((span) => span.from < span.to),
        )
  if (correctFrom !== null) {
    const sample = desiredSorted[0]!
    out.corrections.push({
      provider: sample.provider,
      model: sample.model,
      usageType: sample.usageType,
      timeWindow: sample.timeWindow,
      from: new Date(correctFrom),
    })
  }

  // Every instant where something may change: the timeline is constant between two of them.
  const boundaries = new Set<number>([observedAt])
  for (const row of [...existing, ...desiredSorted]) {
    boundaries.add(row.effectiveFrom.getTime())
    if (row.effectiveTo) boundaries.add(row.effectiveTo.getTime())
  }
  for (const span of frozen) boundaries.add(span.from).add(span.to)
  const points = [...boundaries].sort((a, b) => a - b)

  const runs: Run[] = []
  let desiredIndex = 0
  let frozenIndex = 0
  for (let i = 0; i < points.length; i++) {
    const from = points[i]!
    const to = points[i + 1] ?? OPEN
    while (desiredIndex < desiredSorted.length && toMs(desiredSorted[desiredIndex]!.effectiveTo) <= from) desiredIndex++
    const candidate = desiredSorted[desiredIndex]
    const wanted = candidate && candidate.effectiveFrom.getTime() <= from ? candidate : undefined
    while (frozenIndex < frozen.length && frozen[frozenIndex]!.to <= from) frozenIndex++
    const isFrozen = frozenIndex < frozen.length && frozen[frozenIndex]!.from <= from
    const current = rowInForce(existing, from)

    let target: Target
    if (isFrozen) target = current ? { kind: 'keep', row: current, price: undefined } : { kind: 'none' }
    else if (wanted && current && samePrice(current, wanted)) target = { kind: 'keep', row: current, price: wanted }
    else if (wanted) target = { kind: 'open', price: wanted }
    else target = { kind: 'none' }

    const last = runs.at(-1)
    const continues =
      last !== undefined &&
      ((last.target.kind === 'keep' && target.kind === 'keep' && last.target.row === target.row) ||
        (last.target.kind === 'none' && target.kind === 'none') ||
        (last.target.kind === 'open' &&
          target.kind === 'open' &&
          samePrice(last.target.price, target.price) &&
          // A row that starts later than the run would win over the run's new row; start a new one there.
          !(current && current.effectiveFrom.getTime() > last.from)))
    if (!continues) runs.push({ target, from, to })
    else {
      last.to = to
      if (last.target.kind === 'keep' && target.kind === 'keep') last.target.price ??= target.price
    }
  }

  // One ordered pass: closing a row at the end of its run, so rows never overlap where avoidable.
  const closedAt = new Map<ExistingRow, number>()
  const endOf = (row: ExistingRow) => closedAt.get(row) ?? toMs(row.effectiveTo)
  const close = (row: ExistingRow, at: number) => {
    // Only the future moves: the past stays as billed, and a row cannot end where it starts.
    if (at > row.effectiveFrom.getTime() && at >= observedAt && at < endOf(row)) closedAt.set(row, at)
  }
  const open = (price: NormalizedPrice, run: Run) =>
    out.open.push({
      ...price,
      effectiveFrom: new Date(run.from),
      effectiveTo: run.to === OPEN ? null : new Date(run.to),
    })

  for (const run of runs) {
    const target = run.target
    if (target.kind === 'open') {
      open(target.price, run)
    } else if (target.kind === 'keep') {
      // The row was closed earlier in this pass (the price left and came back): reopen it as a new row.
      // After observedAt the desired price is known; inside a corrected past it is the row's own
      // (the source states no price there, so the billed price stays, in a copy of the row).
      if (endOf(target.row) <= run.from) open(target.price ?? priceOf(target.row), run)
      else close(target.row, run.to)
    } else if (run.from >= observedAt) {
      // The source no longer prices this (a dropped model or usage type): close whatever still
      // covers the instant, including rows an earlier sync superseded. A row that starts inside the
      // gap cannot be closed (it would end where it starts); only a scheduled price the source
      // withdrew before it took effect can be in that position.
      for (const row of existing) {
        if (row.effectiveFrom.getTime() < run.from && endOf(row) > run.from) close(row, run.from)
      }
    }
  }
  for (const [row, at] of closedAt) out.close.push({ id: row.id, effectiveTo: new Date(at) })
}

/**
 * What a sync must write so that the catalog follows `desired` (one source's full snapshot) from
 * `observedAt` on. Append-only: a row's price is never edited; a changed price closes the row in
 * force and opens a new one; a price the source dates in the future (a start_date entry) is
 * scheduled at that date; a model the catalog has never priced gets the source's whole timeline.
 * A price the source dates in the past (a stated start, not SOURCE_EPOCH) that disagrees with the
 * catalog at that date corrects the timeline from that date on, and is listed in `corrections`;
 * undated prices only ever apply from observedAt. Running it again on its own result writes nothing.
 */
export function diffCatalog(
  existing: readonly ExistingRow[],
  desired: readonly NormalizedPrice[],
  observedAt: Date,
): CatalogDiff {
  const observed = observedAt.getTime()
  const out: CatalogDiff = { open: [], close: [], unchanged: 0, corrections: [] }

  const existingByTimeline = new Map<string, ExistingRow[]>()
  const existingByModel = new Map<string, ExistingRow[]>()
  for (const row of existing) {
    pushTo(existingByTimeline, timelineKey(row), row)
    pushTo(existingByModel, modelKey(row), row)
  }
  const desiredByTimeline = new Map<string, NormalizedPrice[]>()
  for (const price of desired) pushTo(desiredByTimeline, timelineKey(price), price)
  const frozenByModel = new Map<string, Span[]>()
  for (const [model, rows] of existingByModel) frozenByModel.set(model, frozenSpans(rows, observed))

  for (const timeline of new Set([...existingByTimeline.keys(), ...desiredByTimeline.keys()])) {
    const existingRows = existingByTimeline.get(timeline) ?? []
    const desiredRows = desiredByTimeline.get(timeline) ?? []
    const sample = existingRows[0] ?? desiredRows[0]!
    diffTimeline(existingRows, desiredRows, frozenByModel.get(modelKey(sample)) ?? [], observed, out)
  }
  out.unchanged = existing.length - out.close.length
  out.corrections.sort((a, b) => a.from.getTime() - b.from.getTime())
  return out
}
