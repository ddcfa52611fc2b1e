import {
  applyCatalogSnapshot,
  loadBundledGenaiPrices,
  loadPublicSource,
  OVERRIDE_SOURCE,
  OverrideError,
  overrideRow,
  parseOverridesFile,
  recordSyncFailure,
  recordSyncSuccess,
  resolveGenaiPricesModel,
  resolvePendingChange,
  syncRunSummary,
  withRetry,
  type AppliedPriceChange,
  type ApplyOptions,
  type CatalogSyncSummary,
  type PublicSourceName,
  type SourceSnapshot,
} from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db, Executor } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { priceChangeEvent, type BurnratePubSub } from '../pubsub.ts'
import { withTenantOverrides } from './precedence.ts'
import { listAllPrices, listPricesAt, readCatalogVersion } from './repository.ts'
import { sourceRank } from './source-priority.ts'
import type {
  CatalogAppliedListener,
  CatalogPrice,
  CatalogService,
  PendingChangeRow,
  ResolvedModel,
  SyncSummary,
} from './types.ts'

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

interface CatalogSnapshot {
  /** catalog_state.version the rows were read at; -1 before the first load. */
  version: number
  /** provider → model → its usage types, from the one public source that wins for that model. */
  byProvider: PriceIndex
  /** tenant → provider → model → usage types: the tenant's negotiated prices. */
  byTenant: Map<string, PriceIndex>
  rows: number
}

/** Distinct (model, provider) inputs remembered; events repeat a few names, so this never churns in practice. */
const RESOLUTION_CACHE_SIZE = 10_000

function indexPrices(prices: readonly CatalogPrice[], version: number): CatalogSnapshot {
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
function byteOrder(a: string, b: string): number {
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

export interface CatalogServiceDependencies {
  db: Db
  clock: Clock
  logger: Logger
  config?: Config
  pubsub?: BurnratePubSub
}

/** Where a public source is read from, by the configuration. */
function sourceLocation(config: Config | undefined, source: PublicSourceName): string | undefined {
  if (!config) return undefined
  if (source === 'openrouter') return config.OPENROUTER_MODELS_URL
  if (source === 'litellm') return config.LITELLM_PRICES_URL
  if (source === 'genai-prices-remote') return config.GENAI_PRICES_URL
  return undefined
}

const POLL_LEASE_MS = 10 * 60_000
const BACKOFF_BASE_MS = 30_000

export function createCatalogService({
  db,
  clock,
  logger,
  config,
  pubsub,
}: CatalogServiceDependencies): CatalogService {
  let snapshot: CatalogSnapshot = { version: -1, byProvider: new Map(), byTenant: new Map(), rows: 0 }
  let sharedReload: Promise<void> | null = null
  const resolutions = new Map<string, ResolvedModel | null>()
  const listeners: CatalogAppliedListener[] = []
  let pollTimer: NodeJS.Timeout | null = null
  let polling: Promise<void> | null = null
  let lastAppliedVersion = -1

  const hasPrices = (provider: string, model: string, tenantId?: string | null) =>
    (snapshot.byProvider.get(provider)?.has(model) ?? false) ||
    (tenantId ? (snapshot.byTenant.get(tenantId)?.get(provider)?.has(model) ?? false) : false)

  async function reload(executor: Executor): Promise<void> {
    const started = performance.now()
    // Version first: a sync committing in between leaves newer rows under an older version, which
    // only costs one more reload, never a missed one.
    const version = await readCatalogVersion(executor)
    const prices = await listAllPrices(executor)
    snapshot = indexPrices(prices, version)
    logger.debug('catalog loaded', { version, rows: prices.length, ms: Math.round(performance.now() - started) })
  }

  function rememberResolution(key: string, resolved: ResolvedModel | null): void {
    // Maps iterate in insertion order: dropping the first key evicts the oldest entry.
    if (resolutions.size >= RESOLUTION_CACHE_SIZE) resolutions.delete(resolutions.keys().next().value!)
    resolutions.set(key, resolved)
  }

  /** After a commit: publish every change, then let listeners (re-pricing) follow. Never throws. */
  async function afterApply(summary: CatalogSyncSummary): Promise<void> {
    await service.ensureFresh()
    for (const change of summary.changes ?? []) {
      const event = priceChangeEvent(change)
      if (change.tenantId) pubsub?.publish('tenantPriceChange', change.tenantId, event)
      else pubsub?.publish('priceChange', event)
    }
    if ((summary.changes?.length ?? 0) > 0) await notifyListeners(summary.changes!)
  }

  async function notifyListeners(changes: readonly AppliedPriceChange[]): Promise<void> {
    lastAppliedVersion = snapshot.version
    for (const listener of listeners) {
      try {
        await listener(changes)
      } catch (error) {
        // The next poll runs every listener again over the whole catalog (e.g. the late-pricing sweep).
        lastAppliedVersion = -1
        logger.error('catalog change listener failed; the next catalog poll runs it again', {
          error: error instanceof Error ? error.message : String(error),
        })
      }
    }
  }

  async function apply(snapshotToApply: SourceSnapshot, options: ApplyOptions): Promise<CatalogSyncSummary> {
    const summary = await applyCatalogSnapshot(db, snapshotToApply, options)
    if (!options.dryRun) await afterApply(summary)
    return summary
  }

  /** A source corrected the already-billed past: say so, since only repriceUsage fixes events priced there. */
  function logCorrections(summary: CatalogSyncSummary): void {
    const corrections = summary.corrections ?? []
    if (corrections.length === 0) return
    const from = new Date(Math.min(...corrections.map((c) => c.from.getTime())))
    logger.warn('catalog source corrected the past; run repriceUsage for events since then', {
      source: summary.source,
      sourceVersion: summary.sourceVersion,
      from: from.toISOString(),
      timelines: corrections.map((c) => `${c.provider}/${c.model} ${c.usageType} from ${c.from.toISOString()}`),
    })
  }

  /** Claims a source for this process (one syncer at a time across processes) when it is due. */
  async function claim(source: string, now: Date): Promise<boolean> {
    await db
      .insertInto('catalog_source_state')
      .values({ source, next_attempt_at: now })
      .onConflict((oc) => oc.column('source').doNothing())
      .execute()
    const claimed = await db
      .updateTable('catalog_source_state')
      .set({ lease_until: new Date(now.getTime() + POLL_LEASE_MS), last_attempt_at: now })
      .where('source', '=', source)
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .returning('source')
      .executeTakeFirst()
    return claimed !== undefined
  }

  /**
   * One sync run whose outcome catalogSources shows: the poller's, the syncCatalogSource mutation's
   * and (through the same catalog-sync functions) the CLI's. A dry run records nothing.
   */
  async function recordedSync(
    name: PublicSourceName,
    attemptedAt: Date,
    options: Parameters<CatalogService['syncSource']>[1] = {},
  ): Promise<SyncSummary> {
    const intervalMs = config?.CATALOG_SYNC_INTERVAL ?? 3_600_000
    try {
      const summary = await service.syncSource(name, options)
      if (!options.dryRun) {
        await recordSyncSuccess(db, name, {
          attemptedAt,
          succeededAt: clock.now(),
          summary: { ...summary },
          nextAttemptAt: new Date(attemptedAt.getTime() + intervalMs),
        })
      }
      return summary
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      const { failures, nextAttemptAt } = await recordSyncFailure(db, name, {
        attemptedAt,
        error: message,
        backoff: { baseMs: BACKOFF_BASE_MS, maxMs: intervalMs },
      })
      logger.error('catalog source failed; the catalog is unchanged for it', {
        source: name,
        failures,
        retryInMs: nextAttemptAt.getTime() - attemptedAt.getTime(),
        error: message,
      })
      throw error
    }
  }

  const service: CatalogService = {
    resolve(model, provider, tenantId) {
      const cacheKey = `${provider ?? ''}\u0000${model}`
      let resolved = resolutions.get(cacheKey)
      if (resolved === undefined) {
        resolved = resolveGenaiPricesModel(model, provider)
        rememberResolution(cacheKey, resolved)
      }
      if (resolved && hasPrices(resolved.provider, resolved.model, tenantId)) return resolved
      // Sources other than genai-prices key rows by the provider's own ids.
      const providerId = provider?.trim().toLowerCase()
      const modelId = model.trim().toLowerCase()
      if (providerId && hasPrices(providerId, modelId, tenantId)) return { provider: providerId, model: modelId }
      return null
    },

    pricesAt(provider, model, at, tenantId) {
      const usageTypes = snapshot.byProvider.get(provider)?.get(model)
      const own = tenantId ? snapshot.byTenant.get(tenantId)?.get(provider)?.get(model) : undefined
      if (!usageTypes && !own) return []
      const time = at.getTime()
      const rowsAt = (groups: readonly UsageTypePrices[] | undefined) =>
        (groups ?? []).flatMap((group) => {
          const row = groupRowAt(group, time)
          return row ? [row.price] : []
        })
      // A negotiated price wins, usage type by usage type, over every public source.
      return withTenantOverrides(rowsAt(own), rowsAt(usageTypes))
    },

    async listPricesAt(filter) {
      await service.ensureFresh()
      // Only the public source that prices each model (the one the pricing index holds), so the
      // listing shows what events are priced at, not a lower-ranked source's row for the same model.
      const winning = (row: CatalogPrice) => {
        const usageTypes = snapshot.byProvider.get(row.provider)?.get(row.model)
        const group = usageTypes?.[0]
        const source = (group?.unwindowed[0] ?? group?.windowed[0])?.price.source
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
      const summary = await apply(source, { observedAt: clock.now() })
      logCorrections(summary)
      logger.info('catalog synced', {
        ...syncRunSummary(summary, source),
        rejected: undefined,
        rowsInCatalog: snapshot.rows,
      })
      return syncRunSummary(summary, source)
    },

    async syncSource(name, options = {}) {
      const location = options.location ?? sourceLocation(config, name)
      const source = await withRetry(
        () => loadPublicSource(name, location, { timeoutMs: config?.CATALOG_SOURCE_TIMEOUT_MS }),
        {
          attempts: options.attempts ?? 3,
          baseMs: options.retryBaseMs ?? 1_000,
          onRetry: (error, attempt, delayMs) =>
            logger.warn('catalog source failed; retrying', { source: name, attempt, delayMs, error: String(error) }),
        },
      )
      for (const rejected of source.rejected ?? []) logger.warn('catalog row rejected', { source: name, ...rejected })
      // A correction of the past: from `correctFrom` on the catalog follows the source, even where it had a price.
      const observedAt = options.correctFrom && options.correctFrom < clock.now() ? options.correctFrom : clock.now()
      const summary = await apply(source, { observedAt, dryRun: options.dryRun })
      logCorrections(summary)
      logger.info('catalog synced', {
        ...syncRunSummary(summary, source),
        rejected: source.rejected?.length ?? 0,
        correctFrom: options.correctFrom,
      })
      return syncRunSummary(summary, source)
    },

    syncSourceRecorded(name, options = {}) {
      return recordedSync(name, clock.now(), options)
    },

    async poll() {
      const sources = (config?.CATALOG_SOURCES ?? ['genai-prices']) as PublicSourceName[]
      for (const name of sources) {
        const now = clock.now()
        if (!(await claim(name, now))) continue
        // Failures are recorded (and logged) by the run itself; the next source is tried regardless.
        await recordedSync(name, now, { attempts: 1 }).catch(() => {})
      }
      // A sync by another process (or the CLI) changed the catalog: let listeners catch up too.
      await service.ensureFresh()
      if (snapshot.version !== lastAppliedVersion) await notifyListeners([])
    },

    startPolling() {
      const intervalMs = config?.CATALOG_SYNC_INTERVAL ?? 0
      if (intervalMs <= 0 || pollTimer) return
      const tick = () => {
        polling ??= service
          .poll()
          .catch((error) =>
            logger.error('catalog poll failed', { error: error instanceof Error ? error.message : String(error) }),
          )
          .finally(() => {
            polling = null
          })
      }
      pollTimer = setInterval(tick, Math.min(intervalMs, 60_000))
      pollTimer.unref()
      tick()
    },

    async stopPolling() {
      if (pollTimer) clearInterval(pollTimer)
      pollTimer = null
      await polling
    },

    onApplied(listener) {
      listeners.push(listener)
    },

    async setOverride(tenantId, input) {
      const row = overrideRow(input)
      const summary = await apply(
        {
          source: OVERRIDE_SOURCE,
          sourceVersion: `mutation:${clock.now().toISOString()}`,
          prices: [row],
          models: 1,
          skipped: [],
        },
        // From its own date on, the new price replaces the tenant's override of that usage type.
        {
          observedAt: row.effectiveFrom,
          tenantId,
          holdRatio: Infinity,
          scope: { provider: row.provider, model: row.model, usageType: row.usageType },
          changedAt: clock.now(),
        },
      )
      return {
        provider: row.provider,
        model: row.model,
        usageType: row.usageType,
        rowsOpened: summary.rowsOpened,
        rowsClosed: summary.rowsClosed,
      }
    },

    async applyOverridesFile(text, options = {}) {
      const snapshots = parseOverridesFile(text)
      const summaries: SyncSummary[] = []
      // Checked before anything is written: a file naming another tenant changes nothing at all.
      for (const tenantId of snapshots.keys()) {
        if (options.tenantId && tenantId !== options.tenantId)
          throw new OverrideError(`the document names tenant ${tenantId}; only your own tenant id is allowed`, 'tenant')
      }
      for (const [tenantId, tenantSnapshot] of snapshots) {
        const observedAt = new Date(Math.min(...tenantSnapshot.prices.map((p) => p.effectiveFrom.getTime())))
        const summary = await apply(tenantSnapshot, {
          observedAt,
          tenantId,
          holdRatio: Infinity,
          changedAt: clock.now(),
        })
        summaries.push(syncRunSummary(summary, tenantSnapshot))
      }
      return summaries
    },

    async resolvePendingChange(id, decision) {
      const resolved = await resolvePendingChange(db, id, decision, clock.now())
      if (!resolved) return null
      if (resolved.summary) await afterApply(resolved.summary)
      return resolved.change as PendingChangeRow
    },
  }
  return service
}
