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
  /** What the source priced but we could not represent (`provider/model: price_key`), for the sync log. */
  skipped: string[]
  /** Rows refused as invalid (negative, NaN or missing price), each with its reason. */
  rejected?: RejectedPrice[]
}

export interface RejectedPrice {
  /** `provider/model: field` as the source named it. */
  key: string
  reason: string
}

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
  /** Rows the source stated but that were refused as invalid. */
  rejected?: number
  /** Timelines whose past was corrected from a start date the source stated (held ones excluded), earliest first. */
  corrections?: CatalogCorrection[]
}
