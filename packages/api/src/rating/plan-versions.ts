import { randomUUID } from 'node:crypto'
import type { AuditService } from '../audit/service.ts'
import type { Clock } from '../clock.ts'
import type { Db, Executor } from '../db/database.ts'
import { badInput } from '../shared/errors.ts'
import { costPlanVersion, planAt, type PlanBook } from './plans.ts'
import * as repo from './repository.ts'
import { parseRules, type RatingPlan } from './rules.ts'
import type { RatingService } from './types.ts'

const toPlan = (r: repo.PlanVersionRow): RatingPlan => ({
  id: r.id,
  customerId: r.customer_id,
  version: r.version,
  effectiveFrom: r.effective_from,
  prepaidOnly: r.prepaid_only,
  rules: r.rules,
})

function checkCustomerId(customerId: string | null | undefined, field: string): string | null {
  if (customerId === null || customerId === undefined) return null
  if (customerId.length === 0 || customerId.length > 255) throw badInput('customerId must be 1-255 characters', field)
  return customerId
}

/**
 * Every plan version (rating plans and setPricingPlan's markups) of a tenant's customers, oldest
 * first. Read afresh on each call (no cache), so it needs nothing but the executor it is given.
 */
export async function loadBook(
  executor: Executor,
  tenantId: string,
  customerIds: readonly string[] | null,
): Promise<PlanBook> {
  const { rated, costs } = await repo.planBookRows(executor, tenantId, customerIds)
  const versions = [...rated.map(toPlan), ...costs.map(costPlanVersion)].sort(
    (a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime() || a.version - b.version,
  )
  return { versions }
}

/** Plan versions: written (append-only, audited), listed, and resolved for an instant. */
export function planVersionUseCases(deps: {
  db: Db
  clock: Clock
  audit: Pick<AuditService, 'record'> | null
}): Pick<RatingService, 'setPlan' | 'planHistory' | 'planInForce' | 'book'> {
  const { db, clock, audit } = deps
  return {
    async setPlan(tenant, input) {
      const customerId = checkCustomerId(input.customerId, 'input.customerId')
      const now = clock.now()
      const effectiveFrom = input.effectiveFrom ?? now
      const retroactive = input.retroactive === true
      if (retroactive && effectiveFrom.getTime() < now.getTime() - 400 * 86_400_000)
        throw badInput('a retroactive effectiveFrom is at most 400 days in the past', 'input.effectiveFrom')
      if (!retroactive && effectiveFrom.getTime() < now.getTime() - 1000)
        throw badInput(
          'effectiveFrom must not be in the past: a plan change never rewrites what was billed (set retroactive: true, then re-rate the periods explicitly with rerateUsage)',
          'input.effectiveFrom',
        )
      if (input.rules.length === 0) throw badInput('a plan has at least one rule', 'input.rules')
      const rules = parseRules(input.rules)
      for (let attempt = 0; ; attempt++) {
        try {
          // The new version and its audit entry commit together.
          return await db.transaction().execute(async (trx) => {
            const previous = (await repo.planVersions(trx, tenant.id, customerId === null ? [] : [customerId]))
              .filter((r) => r.customer_id === customerId)
              .sort((a, b) => a.version - b.version)
              .at(-1)
            const row = toPlan(
              await repo.insertPlanVersion(trx, {
                tenantId: tenant.id,
                id: randomUUID(),
                customerId,
                effectiveFrom: effectiveFrom < now && !retroactive ? now : effectiveFrom,
                prepaidOnly: input.prepaidOnly ?? false,
                rules,
              }),
            )
            await audit?.record(trx, {
              tenantId: tenant.id,
              action: 'ratingPlan.set',
              entityType: 'RatingPlan',
              entityId: customerId ?? 'default',
              before: previous ? toPlan(previous) : null,
              after: row,
            })
            return row
          })
        } catch (error) {
          // Two versions written at once for one owner: the unique version index refuses one; take the next.
          if (attempt < 3 && /rating_plans_version|duplicate key/.test(String(error))) continue
          throw error
        }
      }
    },

    async planHistory(tenantId, customerId) {
      const owner = checkCustomerId(customerId, 'customerId')
      const { versions } = await loadBook(db, tenantId, owner === null ? [] : [owner])
      return versions.filter((v) => v.customerId === owner)
    },

    async planInForce(tenantId, customerId, at, executor = db) {
      return planAt(await loadBook(executor, tenantId, [customerId]), customerId, at)
    },

    book: loadBook,
  }
}
