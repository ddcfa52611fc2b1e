import type { Executor } from '../db/database.ts'
import type { PricingPlanRow } from '../db/types.ts'

export function insertPlan(
  db: Executor,
  plan: {
    tenantId: string
    customerId: string | null
    kind: 'MARKUP' | 'MARGIN'
    percent: string
    effectiveFrom: Date
  },
): Promise<PricingPlanRow> {
  return db
    .insertInto('pricing_plans')
    .values({
      tenant_id: plan.tenantId,
      customer_id: plan.customerId,
      kind: plan.kind,
      percent: plan.percent,
      effective_from: plan.effectiveFrom,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** The plan versions that can apply to a customer (its own and the tenant default), oldest first. */
export function plansFor(db: Executor, tenantId: string, customerId: string | null): Promise<PricingPlanRow[]> {
  return db
    .selectFrom('pricing_plans')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      customerId === null
        ? eb('customer_id', 'is', null)
        : eb.or([eb('customer_id', 'is', null), eb('customer_id', '=', customerId)]),
    )
    .orderBy('effective_from')
    .orderBy('id')
    .execute()
}
