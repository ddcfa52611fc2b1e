/** A long-context tier: when the event's total input tokens exceed `start`, `unitPrice` prices the whole line. */
export interface PriceTier {
  start: number
  /** Exact decimal price of one unit. */
  unitPrice: string
}

/** A daily UTC window, [startSecond, endSecond) after midnight; endSecond < startSecond wraps past midnight. */
export interface TimeWindow {
  startSecond: number
  endSecond: number
}

/** One effective-dated price as a source states it, before it becomes a catalog row. */
export interface NormalizedPrice {
  provider: string
  model: string
  /** A usage type of USAGE_UNITS (input, output, cache_read, …). */
  usageType: string
  unit: string
  /** Exact decimal price of one `unit`. Never derived through a float. */
  unitPrice: string
  currency: 'USD'
  tiers: PriceTier[] | null
  /** Time-of-day price; a matching windowed row wins over an unwindowed one. */
  timeWindow: TimeWindow | null
  effectiveFrom: Date
  /** null: in force until a later sync says otherwise. */
  effectiveTo: Date | null
}

/** Everything one source says at one version: the desired timeline of its rows. */
export interface SourceSnapshot {
  source: string
  sourceVersion: string
  prices: NormalizedPrice[]
  /** Distinct (provider, model) pairs that produced at least one price. */
  models: number
  /**
   * What the source states but no row carries (a price in a unit we have no usage type for, a
   * documentation entry, an alias of a model priced by its own entry), each with its reason. Stored
   * with the sync run, so nothing a feed says is dropped without a trace.
   */
  skipped: FeedIssue[]
  /** Values refused as invalid (negative, NaN, missing or malformed price), each with its reason. */
  rejected?: RejectedPrice[]
  /**
   * Models whose entry had a rejected value: the sync leaves their rows exactly as they are (the
   * price in force stays) instead of treating them as withdrawn. `provider` absent: any provider.
   */
  unreadable?: { provider?: string; model: string }[]
  /**
   * The source states no dates at all (OpenRouter, LiteLLM): its prices hold from the sync that
   * observes them, so a model first seen now is not priced for the past. Without it, a price at
   * SOURCE_EPOCH is the source's price for all time (genai-prices base prices).
   */
  undatedFromObservation?: boolean
}

/** One thing a feed said that became no catalog row, with why. */
export interface FeedIssue {
  /** The model as the feed names it (an OpenRouter id, a LiteLLM key). */
  model: string
  /** The feed's field; null when the whole entry is meant. */
  field: string | null
  /** What the feed wrote there, as JSON text (truncated); null when nothing. */
  rawValue: string | null
  reason: string
}

export type RejectedPrice = FeedIssue

/** One applied change, as the change log and the priceChange topic carry it. */
export interface AppliedPriceChange {
  provider: string
  model: string
  usageType: string
  oldUnitPrice: string | null
  newUnitPrice: string | null
  effectiveFrom: Date
  source: string
  sourceVersion: string
  tenantId: string | null
  priceId: number | null
}

/**
 * A timeline whose priced past a sync corrected because the source stated an earlier start date:
 * from `from` on the catalog follows the source. Events since then keep their price until the
 * tenant runs repriceUsage.
 */
export interface CatalogCorrection {
  provider: string
  model: string
  usageType: string
  timeWindow: TimeWindow | null
  from: Date
}

/** A price move beyond the safety ratio, held instead of applied. */
export interface HeldPriceChange {
  provider: string
  model: string
  usageType: string
  oldUnitPrice: string
  newUnitPrice: string
}

/** What one sync did; structurally the api's SyncSummary. */
export interface CatalogSyncSummary {
  source: string
  sourceVersion: string
  models: number
  rowsOpened: number
  rowsClosed: number
  /** Rows of this source already in the catalog that the sync left untouched. */
  unchanged: number
  /** Timelines whose price moved more than the safety ratio: left as they were, recorded as pending. */
  held?: number
  /** Every change written (for the change log and pubsub), oldest effective date first. */
  changes?: AppliedPriceChange[]
  /** Values the source stated but that were refused as invalid. */
  rejected?: number
  /** What the source stated that no row carries (see SourceSnapshot.skipped). */
  skipped?: number
  /** The recorded sync run (catalog_sync_runs.id); null for a dry run, a tenant's or a scoped apply. */
  syncRunId?: number | null
  /** Timelines whose past was corrected from a start date the source stated (held ones excluded), earliest first. */
  corrections?: CatalogCorrection[]
}
