import type { CatalogService } from '../catalog/types.ts'
import type { Clock } from '../clock.ts'
import type { Db, Tx } from '../db/database.ts'
import type { Selectable, UsageCorrectionTable } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import type { UnpricedReason } from '../pricing/price-event.ts'
import type { RatingService } from '../rating/service.ts'
import type { BilledChange, BilledChangeBatch } from '../usage/pipeline.ts'

export interface RepriceResult {
  /** Events looked at. */
  examined: number
  /** Correction entries written (0 on a re-run). */
  corrected: number
  costDelta: string
  amountDelta: string
  /** Events the catalog can no longer price (a usage type they report has no price): left at their current bill. */
  unpriced: number
  /** Why, once per distinct reason. */
  unpricedReasons: UnpricedReason[]
  /** Events billed under a rating plan, left at their bill: re-pricing would re-bill them by markup alone. */
  ratedKept: number
}

/** Which UNPRICED events a late-pricing sweep looks at; everything when empty. */
export interface UnpricedScope {
  /** Only this tenant's events. */
  tenantId?: string
  /**
   * Only events whose model resolves to one of these canonical models (of this tenant, or of
   * every tenant when tenantId is null) and stamped at or after `from`: what a catalog change
   * can have made priceable.
   */
  models?: readonly { tenantId: string | null; provider: string; model: string; from: Date }[]
  /** Only these events (an ingest batch that stored UNPRICED events while the catalog changed). */
  eventIds?: readonly string[]
}

/** A repriceUsage request as the API receives it (validated by the service). */
interface RepriceRequest {
  from: Date
  to: Date
  model: string
  provider?: string | null | undefined
  reason?: string | null | undefined
}

interface CorrectionsQuery {
  from: Date
  to: Date
  customerId?: string | null | undefined
  first?: number | null | undefined
}

export interface RepricingService {
  /** Prices every UNPRICED event in scope the catalog can now price; returns how many. Idempotent. */
  priceUnpriced(scope?: UnpricedScope): Promise<number>
  /** Re-prices a tenant's priced events of one model in [from, to) with the catalog as it is now, writing corrections. */
  repriceUsage(
    tenantId: string,
    range: { from: Date; to: Date; provider: string; model: string; reason: string },
  ): Promise<RepriceResult>
  /** repriceUsage for an API request: checks the range and reason, resolves the model. Coded errors. */
  repriceRequest(tenantId: string, request: RepriceRequest): Promise<RepriceResult>
  /** The audit trail of corrections of events in [from, to), oldest first. */
  listCorrections(tenantId: string, query: CorrectionsQuery): Promise<Selectable<UsageCorrectionTable>[]>
}

/** What both use cases are built from (service.ts wires them). */
export interface RepricingDeps {
  db: Db
  clock: Clock
  catalog: CatalogService
  logger: Logger
  /** Plans in force and metered rating (src/rating/): late pricing bills by the customer's plan as ingest does. */
  rating: Pick<RatingService, 'book' | 'rateMetered'>
  /** Runs the billed-change pipeline's in-transaction steps; `notify` runs the rest after commit. */
  followers: {
    changed(trx: Tx, tenantId: string, changes: readonly BilledChange[]): Promise<BilledChangeBatch | null>
    notify(batch: BilledChangeBatch | null): Promise<void>
  }
}
