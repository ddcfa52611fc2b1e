import type { BilledChangeBatch, BilledChangePipeline } from '../usage/pipeline.ts'
import { NO_CHANGE_FOLLOWERS } from '../usage/pipeline.ts'
import { createCorrections } from './corrections.ts'
import { createLatePricing } from './late-pricing.ts'
import type { RepricingDeps, RepricingService } from './types.ts'

/**
 * Re-pricing, by use case: late pricing (late-pricing.ts) and corrections (corrections.ts), both
 * pricing stored events by the one rule (stored-event.ts → pricing/price-event.ts) and moving
 * totals by deltas (deltas.ts); their SQL is in repository.ts. Every billed amount that changes
 * goes through the billed-change pipeline (usage/pipeline.ts).
 */
/** The billed-change pipeline as corrections (re-pricing, re-rating) run it: in their transaction, then after commit. */
export function changeFollowers(pipeline: BilledChangePipeline = NO_CHANGE_FOLLOWERS): RepricingDeps['followers'] {
  return {
    async changed(trx, tenantId, changes) {
      if (changes.length === 0) return null
      const batch: BilledChangeBatch = { tenantId, changes, alertsRaised: [], creditAlertsRaised: [] }
      await pipeline.inTransaction(trx, batch)
      return batch
    },
    async notify(batch) {
      if (batch) await pipeline.afterCommit(batch)
    },
  }
}

export function createRepricingService({
  pipeline = NO_CHANGE_FOLLOWERS,
  ...deps
}: Omit<RepricingDeps, 'followers'> & {
  /** What follows every billed amount that changes (Stripe outbox, budgets, webhooks): usage/pipeline.ts. */
  pipeline?: BilledChangePipeline
}): RepricingService {
  const withFollowers = { ...deps, followers: changeFollowers(pipeline) }
  return { priceUnpriced: createLatePricing(withFollowers), ...createCorrections(withFollowers) }
}
