import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import { invoiceUseCases } from './invoice.ts'
import { meteringUseCases } from './metering.ts'
import { planVersionUseCases } from './plan-versions.ts'
import type { CreditsForInvoice, RatingService } from './types.ts'

export type { MeteredItem, RatingService } from './types.ts'

/**
 * The rating service, composed of its use cases: plan versions (plan-versions.ts), rating events
 * against their period meters (metering.ts) and the period's bill (invoice.ts); the rules
 * themselves are pure (rules.ts, plans.ts, rate.ts).
 */
export function createRatingService({
  db,
  clock,
  billedAmount,
  credits = null,
  audit = null,
}: {
  db: Db
  clock: Clock
  /** Plan versions are recorded in the audit log in the transaction that writes them (`ratingPlan.set`). */
  audit?: Pick<AuditService, 'record'> | null
  /** The ledger's billed amount of a customer's range (usage/summary), for the preview's subtotal check. */
  billedAmount: (executor: Executor, tenantId: string, customerId: string, from: Date, to: Date) => Promise<string>
  credits?: CreditsForInvoice | null
}): RatingService {
  return {
    ...planVersionUseCases({ db, clock, audit }),
    ...meteringUseCases(db),
    ...invoiceUseCases({ db, clock, billedAmount, credits }),
  }
}
