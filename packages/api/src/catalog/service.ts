/**
 * The catalog domain, composed from its use cases: the in-memory lookup pricing reads (lookup.ts),
 * every write and what follows it (applied.ts), syncing and polling sources (sync.ts, polling.ts),
 * negotiated prices (overrides.ts), held changes (held-changes.ts) and the listings the API shows
 * (listings.ts). Each part owns its own state; nothing is shared between calls but the caches.
 */
import { isPublicSource, OverrideError, PUBLIC_SOURCES, SourceError } from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { BurnratePubSub } from '../pubsub.ts'
import { badInput, userError } from '../shared/errors.ts'
import { createCatalogWriter } from './applied.ts'
import { pendingChanges, resolvePendingChange } from './held-changes.ts'
import { checkName, createCatalogListings, type CatalogListings } from './listings.ts'
import { createCatalogLookup } from './lookup.ts'
import { applyOverridesFile, setOverride } from './overrides.ts'
import { createPoller, pollOnce } from './polling.ts'
import type { CatalogPrice } from './repository.ts'
import { recordedSync, syncBundled, syncSource, type SyncDeps } from './sync.ts'
import type { CatalogService, PendingChangeRow, SyncSummary } from './types.ts'

export interface CatalogServiceDependencies {
  db: Db
  clock: Clock
  logger: Logger
  config?: Config
  pubsub?: BurnratePubSub
}

/** What the API's catalog fields call: arguments checked, catalog-sync's errors turned into domain errors. */
interface CatalogRequests {
  /** Held public price changes waiting for a decision, oldest first. */
  pendingChanges(): Promise<PendingChangeRow[]>
  /** setPriceOverride: the tenant's negotiated price, answered with its rows of that usage type. */
  setPriceOverride(
    tenantId: string,
    input: {
      provider: string
      model: string
      usageType: string
      unitPrice: string | number
      effectiveFrom: Date
      effectiveTo?: Date | null
    },
  ): Promise<CatalogPrice[]>
  /** importPriceOverrides: a YAML or JSON document whose every entry names this tenant. */
  importPriceOverrides(tenantId: string, document: string): Promise<SyncSummary[]>
  /** syncCatalogSource: catalog admins only; the run is recorded like a poll's. */
  syncSourceRequested(tenantId: string, source: string, options: { dryRun?: boolean | null }): Promise<SyncSummary>
  /** confirmPriceChange / rejectPriceChange: catalog admins only; NOT_FOUND when there is no such held change. */
  decidePendingChange(tenantId: string, id: string | number, decision: 'CONFIRM' | 'REJECT'): Promise<PendingChangeRow>
}

export type CatalogServices = CatalogService & CatalogListings & CatalogRequests

export function createCatalogService({
  db,
  clock,
  logger,
  config,
  pubsub,
}: CatalogServiceDependencies): CatalogServices {
  const lookup = createCatalogLookup({ db, logger })
  const writer = createCatalogWriter({ db, logger, pubsub, lookup })
  const sync: SyncDeps = { db, clock, logger, config, lookup, writer }
  const held = { db, clock, writer }
  const poller = createPoller(sync, () => service.poll())

  const requireCatalogAdmin = (tenantId: string) => {
    if (!(config?.CATALOG_ADMIN_TENANTS ?? []).includes(tenantId)) {
      throw userError(
        'FORBIDDEN',
        'The public catalog can only be changed by a tenant listed in CATALOG_ADMIN_TENANTS, or by the operator with the CLI (`catalog-sync confirm <id>`, `catalog-sync reject <id>`, `catalog-sync --source <name>`).',
      )
    }
  }

  const service: CatalogServices = {
    resolve: lookup.resolve,
    pricesAt: lookup.pricesAt,
    listPricesAt: lookup.listPricesAt,
    ensureFresh: lookup.ensureFresh,
    version: lookup.version,

    syncBundled: () => syncBundled(sync),
    syncSource: (name, options) => syncSource(sync, name, options),
    syncSourceRecorded: (name, options = {}) => recordedSync(sync, name, clock.now(), options),
    poll: () => pollOnce(sync),
    startPolling: poller.start,
    stopPolling: poller.stop,
    onApplied: writer.onApplied,

    setOverride: (tenantId, input) => setOverride(held, tenantId, input),
    applyOverridesFile: (text, options) => applyOverridesFile(held, text, options),
    resolvePendingChange: (id, decision) => resolvePendingChange(held, id, decision),

    ...createCatalogListings({ db, lookup }),

    pendingChanges: () => pendingChanges(db),

    async setPriceOverride(tenantId, input) {
      const provider = checkName(input.provider, 'input.provider')!
      const model = checkName(input.model, 'input.model')!
      let result
      try {
        result = await service.setOverride(tenantId, { ...input, provider, model, unitPrice: String(input.unitPrice) })
      } catch (error) {
        if (error instanceof OverrideError) throw badInput(error.message, `input.${error.field}`)
        throw error
      }
      return service.negotiatedRows(tenantId, result)
    },

    async importPriceOverrides(tenantId, document) {
      if (document.length > 1_000_000) throw badInput('document must be at most 1 MB', 'document')
      try {
        return await service.applyOverridesFile(document, { tenantId })
      } catch (error) {
        if (error instanceof OverrideError) throw badInput(error.message, 'document')
        if (error instanceof SourceError) throw badInput(error.message, 'document')
        throw error
      }
    },

    async syncSourceRequested(tenantId, source, options) {
      requireCatalogAdmin(tenantId)
      if (!isPublicSource(source)) throw badInput(`source must be one of ${PUBLIC_SOURCES.join(', ')}`, 'source')
      try {
        return await service.syncSourceRecorded(source, { dryRun: options.dryRun ?? false })
      } catch (error) {
        // The feed failed (HTTP error, timeout, malformed, a changed schema): nothing changed, the run is in catalogSources.
        if (error instanceof SourceError)
          throw badInput(
            `${source} failed (${error.kind}); the catalog is unchanged for it: ${error.message}`,
            'source',
          )
        throw error
      }
    },

    async decidePendingChange(tenantId, id, decision) {
      requireCatalogAdmin(tenantId)
      if (!/^\d{1,15}$/.test(String(id))) throw badInput('no such pending price change', 'id')
      const resolved = await service.resolvePendingChange(Number(id), decision)
      if (!resolved) throw userError('NOT_FOUND', 'no such pending price change', 'id')
      return resolved
    },
  }
  return service
}
