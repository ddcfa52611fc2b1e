import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import type { PlanView } from './service.ts'

const PricingKind = builder.enumType('PricingKind', { values: ['MARKUP', 'MARGIN'] as const })

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
    resolve: (_root, { customerId }, ctx) => ctx.services.pricing.planInForce(tenantOf(ctx).id, customerId ?? null),
  }),
}))

builder.mutationFields((t) => ({
  setPricingPlan: t.field({
    type: PricingPlan,
    description:
      'Sets the markup or margin from now on. Events are billed with the plan in force at their own timestamp; past events keep theirs.',
    args: { input: t.arg({ type: PricingPlanInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) => ctx.services.pricing.setPlan(tenantOf(ctx).id, input),
  }),
}))
