import { applyCatalogSnapshot, loadBundledGenaiPrices, resolveGenaiPricesModel } from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { listPublicPrices, readCatalogVersion } from './repository.ts'
import type { CatalogPrice, CatalogService, ResolvedModel, SyncSummary } from './types.ts'

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

interface CatalogSnapshot {
  /** catalog_state.version the rows were read at; -1 before the first load. */
  version: number
  /** provider → model → its usage types. Nested maps: a lookup builds no key string. */
  byProvider: Map<string, Map<string, UsageTypePrices[]>>
  rows: number
}

const DAY_MS = 86_400_000
/** Distinct (model, provider) inputs remembered; events repeat a few names, so this never churns in practice. */
const RESOLUTION_CACHE_SIZE = 10_000

function indexPrices(prices: readonly CatalogPrice[], version: number): CatalogSnapshot {
  const byProvider = new Map<string, Map<string, UsageTypePrices[]>>()
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
  return { version, byProvider, rows: prices.length }
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

export interface CatalogServiceDependencies {
  db: Db
  clock: Clock
  logger: Logger
}

export function createCatalogService({ db, clock, logger }: CatalogServiceDependencies): CatalogService {
  let snapshot: CatalogSnapshot = { version: -1, byProvider: new Map(), rows: 0 }
  let sharedReload: Promise<void> | null = null
  const resolutions = new Map<string, ResolvedModel | null>()

  const hasPrices = (provider: string, model: string) => snapshot.byProvider.get(provider)?.has(model) ?? false

  async function reload(executor: Executor): Promise<void> {
    const started = performance.now()
    // Version first: a sync committing in between leaves newer rows under an older version, which
    // only costs one more reload, never a missed one.
    const version = await readCatalogVersion(executor)
    const prices = await listPublicPrices(executor)
    snapshot = indexPrices(prices, version)
    logger.debug('catalog loaded', { version, rows: prices.length, ms: Math.round(performance.now() - started) })
  }

  function rememberResolution(key: string, resolved: ResolvedModel | null): void {
    // Maps iterate in insertion order: dropping the first key evicts the oldest entry.
    if (resolutions.size >= RESOLUTION_CACHE_SIZE) resolutions.delete(resolutions.keys().next().value!)
    resolutions.set(key, resolved)
  }

  const service: CatalogService = {
    resolve(model, provider) {
      const cacheKey = `${provider ?? ''}\u0000${model}`
      let resolved = resolutions.get(cacheKey)
      if (resolved === undefined) {
        resolved = resolveGenaiPricesModel(model, provider)
        rememberResolution(cacheKey, resolved)
      }
      if (resolved && hasPrices(resolved.provider, resolved.model)) return resolved
      // Sources other than genai-prices key rows by the provider's own ids.
      const providerId = provider?.trim().toLowerCase()
      const modelId = model.trim().toLowerCase()
      if (providerId && hasPrices(providerId, modelId)) return { provider: providerId, model: modelId }
      return null
    },

    pricesAt(provider, model, at) {
      const usageTypes = snapshot.byProvider.get(provider)?.get(model)
      if (!usageTypes) return []
      const time = at.getTime()
      const msOfDay = ((time % DAY_MS) + DAY_MS) % DAY_MS
      const prices: CatalogPrice[] = []
      for (const group of usageTypes) {
        // A time-of-day price (off-peak discount, peak surcharge) wins over the all-day one.
        const row = (group.windowed.length > 0 ? rowAt(group.windowed, time, msOfDay) : undefined) ?? rowAt(group.unwindowed, time, null)
        if (row) prices.push(row.price)
      }
      return prices
    },

    async ensureFresh(executor) {
      if (executor && executor !== db) {
        // Inside a caller's transaction: read through it (on PGlite there is no other connection),
        // so rows that transaction wrote are seen with the version it bumped.
        if ((await readCatalogVersion(executor)) !== snapshot.version) await reload(executor)
        return
      }
      const version = await readCatalogVersion(db)
      if (version === snapshot.version) return
      // Concurrent callers share one reload; one more covers a sync that landed while it ran.
      sharedReload ??= reload(db).finally(() => {
        sharedReload = null
      })
      await sharedReload
      if (snapshot.version !== version) await reload(db)
    },

    async syncBundled(): Promise<SyncSummary> {
      const source = await loadBundledGenaiPrices()
      const summary = await applyCatalogSnapshot(db, source, { observedAt: clock.now() })
      await service.ensureFresh()
      logger.info('catalog synced', { ...summary, skipped: source.skipped.length, rowsInCatalog: snapshot.rows })
      return summary
    },
  }
  return service
}
