/**
 * The catalog as ingest, late pricing and the gateway read it: an in-memory snapshot of every row
 * (snapshot.ts), reloaded when catalog_state's version moves, and the model-name resolution cache.
 * Both are caches owned here and replaced whole, never edited in place.
 */
import { resolveGenaiPricesModel } from '@burnrate/catalog-sync'
import type { Db, Executor } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { withTenantOverrides } from './precedence.ts'
import { listAllPrices, listPricesAt, readCatalogVersion, type CatalogPrice } from './repository.ts'
import { byteOrder, EMPTY_SNAPSHOT, hasPrices, indexPrices, pricesAtIn, winningSource } from './snapshot.ts'
import type { CatalogService } from './types.ts'

/** Distinct (model, provider) inputs remembered; events repeat a few names, so this never churns in practice. */
const RESOLUTION_CACHE_SIZE = 10_000

export type CatalogLookup = Pick<
  CatalogService,
  'resolve' | 'pricesAt' | 'listPricesAt' | 'ensureFresh' | 'version'
> & {
  /** Rows in the snapshot (for logs). */
  rows(): number
}

export function createCatalogLookup({ db, logger }: { db: Db; logger: Logger }): CatalogLookup {
  let snapshot = EMPTY_SNAPSHOT
  let sharedReload: Promise<void> | null = null
  const resolutions = new Map<string, ReturnType<typeof resolveGenaiPricesModel>>()

  async function reload(executor: Executor): Promise<void> {
    const started = performance.now()
    // Version first: a sync committing in between leaves newer rows under an older version, which
    // only costs one more reload, never a missed one.
    const version = await readCatalogVersion(executor)
    const prices = await listAllPrices(executor)
    snapshot = indexPrices(prices, version)
    logger.debug('catalog loaded', { version, rows: prices.length, ms: Math.round(performance.now() - started) })
  }

  function resolveName(model: string, provider: string | null | undefined) {
    const cacheKey = `${provider ?? ''}\u0000${model}`
    let resolved = resolutions.get(cacheKey)
    if (resolved === undefined) {
      resolved = resolveGenaiPricesModel(model, provider)
      // Maps iterate in insertion order: dropping the first key evicts the oldest entry.
      if (resolutions.size >= RESOLUTION_CACHE_SIZE) resolutions.delete(resolutions.keys().next().value!)
      resolutions.set(cacheKey, resolved)
    }
    return resolved
  }

  const lookup: CatalogLookup = {
    resolve(model, provider, tenantId) {
      const resolved = resolveName(model, provider)
      if (resolved && hasPrices(snapshot, resolved.provider, resolved.model, tenantId)) return resolved
      // Sources other than genai-prices key rows by the provider's own ids.
      const providerId = provider?.trim().toLowerCase()
      const modelId = model.trim().toLowerCase()
      if (providerId && hasPrices(snapshot, providerId, modelId, tenantId))
        return { provider: providerId, model: modelId }
      return null
    },

    pricesAt(provider, model, at, tenantId) {
      return pricesAtIn(snapshot, provider, model, at, tenantId)
    },

    async listPricesAt(filter) {
      await lookup.ensureFresh()
      // Only the public source that prices each model (the one the pricing index holds), so the
      // listing shows what events are priced at, not a lower-ranked source's row for the same model.
      const winning = (row: CatalogPrice) => {
        const source = winningSource(snapshot, row.provider, row.model)
        return source === undefined || source === row.source
      }
      const publicRows = (
        await listPricesAt(db, { provider: filter.provider, model: filter.model, at: filter.at })
      ).filter(winning)
      if (!filter.tenantId) return publicRows
      const own = await listPricesAt(db, {
        provider: filter.provider,
        model: filter.model,
        at: filter.at,
        tenantId: filter.tenantId,
      })
      // Same order as the listing: provider, model, usage type (byte order); each usage type's rows keep theirs.
      return withTenantOverrides(own, publicRows).sort(
        (a, b) =>
          byteOrder(a.provider, b.provider) || byteOrder(a.model, b.model) || byteOrder(a.usageType, b.usageType),
      )
    },

    version() {
      return snapshot.version
    },

    rows() {
      return snapshot.rows
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
  }
  return lookup
}
