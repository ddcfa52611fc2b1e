/**
 * The in-memory catalog as pricing reads it (pure): every row indexed by provider, model and usage
 * type, the winning public source per model, each tenant's negotiated rows beside them, and the
 * rules that pick the row in force at an instant. Built from rows, read without I/O.
 */
import { withTenantOverrides } from './precedence.ts'
import type { CatalogPrice } from './repository.ts'
import { sourceRank } from './source-priority.ts'

/** A row with its bounds as numbers, so picking a price compares numbers and allocates nothing. */
interface IndexedPrice {
  price: CatalogPrice
  id: number
  from: number
  /** +Infinity while open. */
  to: number
  /** Milliseconds after 00:00 UTC; only meaningful on windowed rows. */
  windowStart: number
  windowEnd: number
}

/** One usage type's rows of one model, each list sorted by (effective_from, id). */
interface UsageTypePrices {
  unwindowed: IndexedPrice[]
  windowed: IndexedPrice[]
}

type PriceIndex = Map<string, Map<string, UsageTypePrices[]>>

export interface CatalogSnapshot {
  /** catalog_state.version the rows were read at; -1 before the first load. */
  version: number
  /** provider → model → its usage types, from the one public source that wins for that model. */
  byProvider: PriceIndex
  /** tenant → provider → model → usage types: the tenant's negotiated prices. */
  byTenant: Map<string, PriceIndex>
  rows: number
}

export function indexPrices(prices: readonly CatalogPrice[], version: number): CatalogSnapshot {
  const publicRows: CatalogPrice[] = []
  const tenantRows = new Map<string, CatalogPrice[]>()
  // The winning public source of each model.
  const winner = new Map<string, string>()
  for (const price of prices) {
    if (price.tenantId) {
      let rows = tenantRows.get(price.tenantId)
      if (!rows) tenantRows.set(price.tenantId, (rows = []))
      rows.push(price)
      continue
    }
    publicRows.push(price)
    const key = `${price.provider}\u0000${price.model}`
    const current = winner.get(key)
    if (
      current === undefined ||
      sourceRank(price.source) < sourceRank(current) ||
      (sourceRank(price.source) === sourceRank(current) && price.source < current)
    ) {
      winner.set(key, price.source)
    }
  }
  const byProvider = buildIndex(
    publicRows.filter((price) => winner.get(`${price.provider}\u0000${price.model}`) === price.source),
  )
  const byTenant = new Map<string, PriceIndex>()
  for (const [tenantId, rows] of tenantRows) byTenant.set(tenantId, buildIndex(rows))
  return { version, byProvider, byTenant, rows: prices.length }
}

function buildIndex(prices: readonly CatalogPrice[]): PriceIndex {
  const byProvider: PriceIndex = new Map()
  const byUsageType = new Map<string, UsageTypePrices>()
  for (const price of prices) {
    let models = byProvider.get(price.provider)
    if (!models) byProvider.set(price.provider, (models = new Map()))
    let usageTypes = models.get(price.model)
    if (!usageTypes) models.set(price.model, (usageTypes = []))
    const key = `${price.provider}\u0000${price.model}\u0000${price.usageType}`
    let group = byUsageType.get(key)
    if (!group) {
      group = { unwindowed: [], windowed: [] }
      byUsageType.set(key, group)
      usageTypes.push(group)
    }
    const indexed: IndexedPrice = {
      price,
      id: Number(price.id),
      from: price.effectiveFrom.getTime(),
      to: price.effectiveTo ? price.effectiveTo.getTime() : Number.POSITIVE_INFINITY,
      windowStart: (price.timeWindow?.startSecond ?? 0) * 1000,
      windowEnd: (price.timeWindow?.endSecond ?? 0) * 1000,
    }
    ;(price.timeWindow ? group.windowed : group.unwindowed).push(indexed)
  }
  const byStartThenId = (a: IndexedPrice, b: IndexedPrice) => a.from - b.from || a.id - b.id
  for (const group of byUsageType.values()) {
    group.unwindowed.sort(byStartThenId)
    group.windowed.sort(byStartThenId)
  }
  return byProvider
}

const DAY = 86_400_000

/** PostgreSQL's "C" collation: UTF-8 byte order. */
export function byteOrder(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** One usage type's row in force at `time`: a time-of-day price wins over the all-day one. */
function groupRowAt(group: UsageTypePrices, time: number): IndexedPrice | undefined {
  const msOfDay = ((time % DAY) + DAY) % DAY
  return (
    (group.windowed.length > 0 ? rowAt(group.windowed, time, msOfDay) : undefined) ??
    rowAt(group.unwindowed, time, null)
  )
}

function inWindow(row: IndexedPrice, msOfDay: number): boolean {
  return row.windowStart < row.windowEnd
    ? msOfDay >= row.windowStart && msOfDay < row.windowEnd
    : msOfDay >= row.windowStart || msOfDay < row.windowEnd
}

/**
 * The row in force at `at` among rows sorted by (effective_from, id): scanning from the end, the
 * first that covers `at` has the latest start (then the latest id), the same rule the sync's diff
 * uses. A usage type has a handful of rows, so a reverse scan beats a binary search.
 */
function rowAt(rows: readonly IndexedPrice[], at: number, msOfDay: number | null): IndexedPrice | undefined {
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i]!
    if (row.from <= at && at < row.to && (msOfDay === null || inWindow(row, msOfDay))) return row
  }
  return undefined
}

export const EMPTY_SNAPSHOT: CatalogSnapshot = { version: -1, byProvider: new Map(), byTenant: new Map(), rows: 0 }

/** Whether the snapshot has any row for a canonical model (public, or the tenant's own). */
export function hasPrices(snapshot: CatalogSnapshot, provider: string, model: string, tenantId?: string | null) {
  return (
    (snapshot.byProvider.get(provider)?.has(model) ?? false) ||
    (tenantId ? (snapshot.byTenant.get(tenantId)?.get(provider)?.has(model) ?? false) : false)
  )
}

/** The rows that price a call at `at`, one per usage type; a tenant's negotiated price wins, usage type by usage type. */
export function pricesAtIn(
  snapshot: CatalogSnapshot,
  provider: string,
  model: string,
  at: Date,
  tenantId?: string | null,
): CatalogPrice[] {
  const usageTypes = snapshot.byProvider.get(provider)?.get(model)
  const own = tenantId ? snapshot.byTenant.get(tenantId)?.get(provider)?.get(model) : undefined
  if (!usageTypes && !own) return []
  const time = at.getTime()
  const rowsAt = (groups: readonly UsageTypePrices[] | undefined) =>
    (groups ?? []).flatMap((group) => {
      const row = groupRowAt(group, time)
      return row ? [row.price] : []
    })
  return withTenantOverrides(rowsAt(own), rowsAt(usageTypes))
}

/** The public source the snapshot prices a model with (undefined when it has no public row). */
export function winningSource(snapshot: CatalogSnapshot, provider: string, model: string): string | undefined {
  const group = snapshot.byProvider.get(provider)?.get(model)?.[0]
  return (group?.unwindowed[0] ?? group?.windowed[0])?.price.source
}
