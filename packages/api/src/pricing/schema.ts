import { tenantOf } from '../schema/auth-scopes.ts'
import { badInput } from '../shared/errors.ts'
import { Decimal } from '../money/decimal.ts'
import { builder } from '../schema/builder.ts'
import * as repo from './repository.ts'

const PricingKind = builder.enumType('PricingKind', { values: ['MARKUP', 'MARGIN'] as const })

interface PlanView {
  customerId: string | null
  kind: 'MARKUP' | 'MARGIN'
  percent: string
  effectiveFrom: Date | null
}

const PricingPlan = builder.objectRef<PlanView>('PricingPlan').implement({
  fields: (t) => ({
    customerId: t.exposeString('customerId', { nullable: true }),
    kind: t.field({ type: PricingKind, resolve: (p) => p.kind }),
    percent: t.field({ type: 'Decimal', resolve: (p) => p.percent }),
    effectiveFrom: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When this plan started to apply; null for the implicit plan (billed at cost).',
      resolve: (p) => p.effectiveFrom,
    }),
  }),
})

const PricingPlanInput = builder.inputType('PricingPlanInput', {
  fields: (t) => ({
    customerId: t.string({ description: "null: the tenant's default plan." }),
    kind: t.field({ type: PricingKind, required: true }),
    percent: t.field({ type: 'Decimal', required: true, description: '30 means 30 %. MARGIN must be below 100.' }),
  }),
})

builder.queryFields((t) => ({
  pricingPlan: t.field({
    type: PricingPlan,
    description:
      'The plan in force now for a customer (its own, else the tenant default), or the tenant default when customerId is null. No plan means MARKUP 0: billed at cost.',
    args: { customerId: t.arg.string() },
    authScopes: { tenant: true },
    resolve: async (_root, { customerId }, ctx) => {
      const tenant = tenantOf(ctx)
      const now = ctx.services.clock.now()
      const rows = await repo.plansFor(ctx.services.db, tenant.id, customerId ?? null)
      // Oldest first, so the last match is the one in force.
      const latest = (owner: string | null) =>
        rows.filter((r) => r.customer_id === owner && new Date(r.effective_from) <= now).at(-1)
      const inForce = (customerId ? latest(customerId) : undefined) ?? latest(null)
      if (!inForce)
        return { customerId: customerId ?? null, kind: 'MARKUP' as const, percent: '0', effectiveFrom: null }
      return {
        customerId: inForce.customer_id,
        kind: inForce.kind,
        percent: inForce.percent,
        effectiveFrom: new Date(inForce.effective_from),
      }
    },
  }),
}))

builder.mutationFields((t) => ({
  setPricingPlan: t.field({
    type: PricingPlan,
    description:
      'Sets the markup or margin from now on. Events are billed with the plan in force at their own timestamp; past events keep theirs.',
    args: { input: t.arg({ type: PricingPlanInput, required: true }) },
    authScopes: { tenant: true },
    resolve: async (_root, { input }, ctx) => {
      const tenant = tenantOf(ctx)
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
      const row = await repo.insertPlan(ctx.services.db, {
        tenantId: tenant.id,
        customerId: input.customerId ?? null,
        kind: input.kind,
        percent: percent.toFixed(),
        effectiveFrom: ctx.services.clock.now(),
      })
      return {
        customerId: row.customer_id,
        kind: row.kind,
        percent: row.percent,
        effectiveFrom: new Date(row.effective_from),
      }
    },
  }),
}))
