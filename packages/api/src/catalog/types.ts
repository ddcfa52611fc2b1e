import type { AppliedPriceChange, OverrideInput, PublicSourceName, SyncRunSummary } from '@burnrate/catalog-sync'
import type { Executor } from '../db/database.ts'
import type { CatalogPendingChangeTable, Selectable } from '../db/types.ts'
import type { CatalogPrice } from './repository.ts'

export type { CatalogPrice } from './repository.ts'
export type PendingChangeRow = Selectable<CatalogPendingChangeTable>

interface ResolvedModel {
  provider: string
  model: string
}

/** What one sync of a source did (catalog-sync builds it, so the CLI records the same shape). */
export type SyncSummary = SyncRunSummary

/** Called after every committed catalog change (and when another process changed the catalog: empty list). */
export type CatalogAppliedListener = (changes: readonly AppliedPriceChange[]) => Promise<void>

export interface OverrideResult {
  provider: string
  model: string
  usageType: string
  rowsOpened: number
  rowsClosed: number
}

export interface CatalogService {
  /** Canonical provider and model for what an event reported; null when no price source (nor the tenant's overrides) knows it. */
  resolve(model: string, provider?: string | null, tenantId?: string | null): ResolvedModel | null
  /**
   * The rows that price a call to a canonical model at `at`: one per usage type. With a tenant id,
   * that tenant's negotiated price wins for every usage type it covers.
   */
  pricesAt(provider: string, model: string, at: Date, tenantId?: string | null): CatalogPrice[]
  /**
   * The rows in force at `at` for a listing (providerPrices): public rows, and with a tenant id that
   * tenant's negotiated rows in place of the public ones they override (the pricesAt rule). No
   * other tenant's rows, ever.
   */
  listPricesAt(filter: {
    provider?: string | null
    model?: string | null
    at: Date
    tenantId?: string | null
  }): Promise<CatalogPrice[]>
  /** Reload the in-memory snapshot if another process (or a sync) changed the catalog. */
  ensureFresh(db?: Executor): Promise<void>
  /**
   * The catalog_state version the in-memory snapshot was read at (it holds at least every row
   * committed up to that version): what resolve and pricesAt price with right now.
   */
  version(): number
  /** Load the price data bundled in @pydantic/genai-prices into the catalog (append-only; a re-run writes nothing). */
  syncBundled(): Promise<SyncSummary>
  /** Fetch one public source (retried with backoff) and apply it; a failure throws and changes nothing. */
  syncSource(
    name: PublicSourceName,
    options?: {
      location?: string
      dryRun?: boolean
      attempts?: number
      retryBaseMs?: number
      /** Apply the source's prices from this past instant on (a correction; events since then can be re-priced). */
      correctFrom?: Date
    },
  ): Promise<SyncSummary>
  /** syncSource, with the outcome recorded for catalogSources like a poll's (the syncCatalogSource mutation). */
  syncSourceRecorded(name: PublicSourceName, options?: { dryRun?: boolean }): Promise<SyncSummary>
  /** One poll: every configured source that is due and not being synced by another process. */
  poll(): Promise<void>
  startPolling(): void
  stopPolling(): Promise<void>
  onApplied(listener: CatalogAppliedListener): void
  /** A tenant's negotiated price from `effectiveFrom` on (throws OverrideError on bad input). */
  setOverride(tenantId: string, input: OverrideInput): Promise<OverrideResult>
  /** An overrides file (YAML/JSON); with tenantId, every entry must be that tenant's. */
  applyOverridesFile(text: string, options?: { tenantId?: string }): Promise<SyncSummary[]>
  /** Confirm (apply) or reject a held price change; null when there is no such pending change. */
  resolvePendingChange(id: number, decision: 'CONFIRM' | 'REJECT'): Promise<PendingChangeRow | null>
}
