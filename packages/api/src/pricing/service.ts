import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import { Decimal } from '../money/decimal.ts'
import { badInput } from '../shared/errors.ts'
import * as repo from './repository.ts'

/** A pricing plan as the API shows it; effectiveFrom null: the implicit plan (billed at cost). */
export interface PlanView {
  customerId: string | null
  kind: 'MARKUP' | 'MARGIN'
  percent: string
  effectiveFrom: Date | null
}

export interface PricingService {
  /** The plan in force now for a customer (its own, else the tenant default), or the tenant default for null. */
  planInForce(tenantId: string, customerId: string | null): Promise<PlanView>
  /** Sets a markup or margin from now on (checked: coded errors on field input.*). */
  setPlan(
    tenantId: string,
    input: { customerId?: string | null | undefined; kind: 'MARKUP' | 'MARGIN'; percent: string },
  ): Promise<PlanView>
}

/** The tenant's pricing plans (markup or margin over cost; pricing/price-event.ts billAtPlan applies them). */
export function createPricingService({
  db,
  clock,
  audit,
}: {
  db: Db
  clock: Clock
  audit: AuditService
}): PricingService {
  return {
    async planInForce(tenantId, customerId) {
      const now = clock.now()
      const rows = await repo.plansFor(db, tenantId, customerId)
      // Oldest first, so the last match is the one in force.
      const latest = (owner: string | null) =>
        rows.filter((r) => r.customer_id === owner && new Date(r.effective_from) <= now).at(-1)
      const inForce = (customerId ? latest(customerId) : undefined) ?? latest(null)
      if (!inForce) return { customerId, kind: 'MARKUP', percent: '0', effectiveFrom: null }
      return {
        customerId: inForce.customer_id,
        kind: inForce.kind,
        percent: inForce.percent,
        effectiveFrom: new Date(inForce.effective_from),
      }
    },

    async setPlan(tenantId, input) {
      const percent = new Decimal(input.percent)
      if (percent.isNegative()) throw badInput('percent must not be negative', 'input.percent')
      if (percent.greaterThan(10_000)) throw badInput('percent must be at most 10000', 'input.percent')
      if (percent.decimalPlaces() > 6) throw badInput('percent has at most 6 decimal places', 'input.percent')
      if (input.kind === 'MARGIN' && percent.greaterThanOrEqualTo(100)) {
        throw badInput('a MARGIN must be below 100 %: a 100 % margin would bill an infinite amount', 'input.percent')
      }
      if (
        input.customerId !== null &&
        input.customerId !== undefined &&
        (input.customerId.length === 0 || input.customerId.length > 255)
      ) {
        throw badInput('customerId must be 1-255 characters', 'input.customerId')
      }
      const customerId = input.customerId ?? null
      const planOf = (r: { kind: string; percent: string; effective_from: Date | string } | undefined) =>
        r ? { customerId, kind: r.kind, percent: r.percent, effectiveFrom: r.effective_from } : null
      // The new version and its audit entry commit together.
      const row = await db.transaction().execute(async (trx) => {
        const previous = (await repo.plansFor(trx, tenantId, customerId))
          .filter((p) => p.customer_id === customerId)
          .at(-1)
        const row = await repo.insertPlan(trx, {
          tenantId,
          customerId,
          kind: input.kind,
          percent: percent.toFixed(),
          effectiveFrom: clock.now(),
        })
        await audit.record(trx, {
          tenantId,
          action: 'pricingPlan.set',
          entityType: 'PricingPlan',
          entityId: customerId ?? 'default',
          before: planOf(previous),
          after: planOf(row),
        })
        return row
      })
      return {
        customerId: row.customer_id,
        kind: row.kind,
        percent: row.percent,
        effectiveFrom: new Date(row.effective_from),
      }
    },
  }
}
