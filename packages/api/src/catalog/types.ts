import type { PriceTierJson, TimeWindowJson } from '../db/types.ts'
import type { Executor } from '../db/database.ts'

/** One effective-dated catalog row as the pricing engine sees it. */
export interface CatalogPrice {
  id: string
  provider: string
  model: string
  usageType: string
  unit: string
  /** Exact decimal price of one unit. */
  unitPrice: string
  currency: string
  /** Long-context tiers: when the event's total input tokens exceed `start`, the tier's price applies to the whole line. */
  tiers: PriceTierJson[] | null
  /** Time-of-day prices (off-peak discounts); a matching windowed row wins over an unwindowed one. */
  timeWindow: TimeWindowJson | null
  effectiveFrom: Date
  effectiveTo: Date | null
  source: string
}

export interface ResolvedModel {
  provider: string
  model: string
}

export interface SyncSummary {
  source: string
  sourceVersion: string
  models: number
  rowsOpened: number
  rowsClosed: number
  unchanged: number
}

export interface CatalogService {
  /** Canonical provider and model for what an event reported; null when no price source knows it. */
  resolve(model: string, provider?: string | null): ResolvedModel | null
  /** The rows that price a call to a canonical model at `at`: one per usage type. */
  pricesAt(provider: string, model: string, at: Date): CatalogPrice[]
  /** Reload the in-memory snapshot if another process (or a sync) changed the catalog. */
  ensureFresh(db?: Executor): Promise<void>
  /** Load the price data bundled in @pydantic/genai-prices into the catalog (append-only; a re-run writes nothing). */
  syncBundled(): Promise<SyncSummary>
}
