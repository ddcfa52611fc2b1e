import type { RatedPartJson } from '../db/types.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { PricedLine } from '../usage/schema.ts'
import { isPricingPlan } from './plans.ts'
import { RULE_TYPES, type RatingPlan, type RuleJson } from './rules.ts'
import type { InvoiceLineView, InvoicePreviewView } from './types.ts'

const RatingRuleType = builder.enumType('RatingRuleType', {
  description: 'What a plan rule does; docs/rating.md states the order rules apply in.',
  values: RULE_TYPES,
})
const TierMode = builder.enumType('TierMode', {
  description:
    "GRADUATED: each unit at its own tier's price. VOLUME: every unit of the period at the price of the tier the period's total falls in.",
  values: ['GRADUATED', 'VOLUME'] as const,
})
const RatingPlanSource = builder.enumType('RatingPlanSource', {
  values: {
    RATING_PLAN: { description: 'Written by setRatingPlan.' },
    PRICING_PLAN: { description: 'A markup or margin written by setPricingPlan: one COST_BASED rule.' },
  } as const,
})

const RatingTier = builder.objectRef<{ upTo: string | null; unitPrice: string }>('RatingTier').implement({
  fields: (t) => ({
    upTo: t.field({
      type: 'Decimal',
      nullable: true,
      description: "Inclusive upper bound of the period's quantity in this tier; null for the last tier.",
      resolve: (x) => x.upTo,
    }),
    unitPrice: t.field({
      type: 'Decimal',
      description:
        'TOKEN_TIERS: price per 1M tokens. AMOUNT_TIERS: what each 1 of amount in this tier bills (0.9 = 10 % off).',
      resolve: (x) => x.unitPrice,
    }),
  }),
})

const pick = <K extends string>(r: RuleJson, key: K): string | null =>
  key in r ? ((r as unknown as Record<K, string>)[key] ?? null) : null

const RatingRule = builder.objectRef<RuleJson>('RatingRule').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    type: t.field({ type: RatingRuleType, resolve: (r) => r.type }),
    kind: t.string({ nullable: true, description: 'COST_BASED: MARKUP or MARGIN.', resolve: (r) => pick(r, 'kind') }),
    percent: t.field({ type: 'Decimal', nullable: true, resolve: (r) => pick(r, 'percent') }),
    model: t.string({
      nullable: true,
      description: 'Model or glob (claude-sonnet-*) the rule applies to.',
      resolve: (r) => pick(r, 'model'),
    }),
    usageType: t.string({ nullable: true, resolve: (r) => pick(r, 'usageType') }),
    price: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'FIXED_PRICE: per 1M tokens. UNIT_FEE: per unit.',
      resolve: (r) => (r.type === 'FIXED_PRICE' ? r.pricePerMillion : r.type === 'UNIT_FEE' ? r.unitPrice : null),
    }),
    mode: t.field({
      type: TierMode,
      nullable: true,
      resolve: (r) => (r.type === 'TOKEN_TIERS' || r.type === 'AMOUNT_TIERS' ? r.mode : null),
    }),
    tiers: t.field({
      type: [RatingTier],
      nullable: true,
      resolve: (r) => (r.type === 'TOKEN_TIERS' || r.type === 'AMOUNT_TIERS' ? r.tiers : null),
    }),
    quantity: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'TOKEN_ALLOWANCE: free tokens per period.',
      resolve: (r) => pick(r, 'quantity'),
    }),
    amount: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'AMOUNT_ALLOWANCE: free amount per period. MINIMUM: the commitment per period.',
      resolve: (r) => pick(r, 'amount'),
    }),
    unit: t.string({
      nullable: true,
      description: 'UNIT_FEE: the unit (a catalog unit or custom.<name>).',
      resolve: (r) => pick(r, 'unit'),
    }),
  }),
})

const RatingPlanRef = builder.objectRef<RatingPlan>('RatingPlan').implement({
  description: 'One version of a plan: an ordered list of rules, effective from a time, never edited.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The version id; `pricing:<n>` for a setPricingPlan markup or margin.' }),
    customerId: t.exposeString('customerId', { nullable: true, description: "null: the tenant's default plan." }),
    version: t.exposeInt('version', { description: '1, 2, … per owner; 0 for a setPricingPlan markup or margin.' }),
    effectiveFrom: t.field({ type: 'DateTime', resolve: (p) => p.effectiveFrom }),
    prepaidOnly: t.exposeBoolean('prepaidOnly', {
      description: 'Usage is refused once prepaid credits are exhausted (checkBudget, reservations, gateway).',
    }),
    source: t.field({ type: RatingPlanSource, resolve: (p) => (isPricingPlan(p) ? 'PRICING_PLAN' : 'RATING_PLAN') }),
    rules: t.field({ type: [RatingRule], resolve: (p) => [...p.rules] }),
  }),
})

const RatingTierInput = builder.inputType('RatingTierInput', {
  fields: (t) => ({
    upTo: t.field({ type: 'Decimal', description: 'Inclusive upper bound; omit (null) on the last tier only.' }),
    unitPrice: t.field({ type: 'Decimal', required: true }),
  }),
})

const RatingRuleInput = builder.inputType('RatingRuleInput', {
  description: 'One rule; the fields its type needs (docs/rating.md), the others left out.',
  fields: (t) => ({
    id: t.string({ description: 'Stable id the billed lines cite; defaults to r1, r2, … by position.' }),
    type: t.field({ type: RatingRuleType, required: true }),
    kind: t.string({ description: 'COST_BASED: MARKUP or MARGIN.' }),
    percent: t.field({ type: 'Decimal', description: 'COST_BASED: 30 means 30 %.' }),
    model: t.string({
      description: 'FIXED_PRICE, TOKEN_TIERS, TOKEN_ALLOWANCE: model or glob (* = any run of characters); default *.',
    }),
    usageType: t.string({
      description: 'FIXED_PRICE, TOKEN_TIERS, TOKEN_ALLOWANCE: input, output, cache_read, … or *.',
    }),
    price: t.field({ type: 'Decimal', description: 'FIXED_PRICE: per 1M tokens. UNIT_FEE: per unit.' }),
    mode: t.field({ type: TierMode, description: 'TOKEN_TIERS, AMOUNT_TIERS; default GRADUATED.' }),
    tiers: t.field({
      type: [RatingTierInput],
      description: 'TOKEN_TIERS (per 1M tokens), AMOUNT_TIERS (per 1 of amount).',
    }),
    quantity: t.field({ type: 'Decimal', description: 'TOKEN_ALLOWANCE: free tokens per period.' }),
    amount: t.field({
      type: 'Decimal',
      description: 'AMOUNT_ALLOWANCE: free amount per period. MINIMUM: commitment per period.',
    }),
    unit: t.string({ description: 'UNIT_FEE: a catalog unit (web_searches) or a custom one (custom.agent_task).' }),
  }),
})

const RatingPlanInput = builder.inputType('RatingPlanInput', {
  fields: (t) => ({
    customerId: t.string({ description: "null: the tenant's default plan." }),
    effectiveFrom: t.field({
      type: 'DateTime',
      description: 'Default now; never in the past unless retroactive.',
    }),
    retroactive: t.boolean({
      description:
        'true: effectiveFrom may be in the past (at most 400 days) to fix a plan retroactively. What was billed stays billed until rerateUsage re-rates the periods from effectiveFrom.',
    }),
    prepaidOnly: t.boolean({ description: 'Default false.' }),
    rules: t.field({ type: [RatingRuleInput], required: true }),
  }),
})

const RatedPart = builder.objectRef<RatedPartJson>('RatedPart').implement({
  description: "One rule's share of a billed line (explain this charge); a line's parts add up to its amount.",
  fields: (t) => ({
    ruleId: t.exposeString('ruleId', { nullable: true }),
    rule: t.exposeString('rule', { description: 'A RatingRuleType, or AT_COST when no rule priced the line.' }),
    tier: t.exposeInt('tier', { nullable: true }),
    quantity: t.field({
      type: 'Decimal',
      description:
        'Tokens or units; for AMOUNT_* rules the amount they applied to (stated on the first line of the event).',
      resolve: (p) => p.quantity,
    }),
    unitPrice: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'The customer price per unit the rule charged.',
      resolve: (p) => p.unitPrice ?? null,
    }),
    amount: t.field({ type: 'Decimal', resolve: (p) => p.amount }),
  }),
})

builder.objectFields(PricedLine, (t) => ({
  planId: t.string({
    nullable: true,
    description: 'The rating plan version that billed this line (null: a setPricingPlan markup or margin, or at cost).',
    resolve: (l) => l.planId ?? null,
  }),
  planVersion: t.int({ nullable: true, resolve: (l) => l.planVersion ?? null }),
  parts: t.field({
    type: [RatedPart],
    description: 'Which rules (and tiers) produced the amount.',
    resolve: (l) => l.parts ?? [],
  }),
}))

const InvoiceLineKind = builder.enumType('InvoiceLineKind', {
  values: [
    'USAGE',
    'COST_BASED',
    'AT_COST',
    'FIXED_PRICE',
    'TOKEN_TIERS',
    'TOKEN_ALLOWANCE',
    'UNIT_FEE',
    'AMOUNT_ALLOWANCE',
    'AMOUNT_TIERS',
    'ADJUSTMENT',
    'MINIMUM_TRUE_UP',
  ] as const,
})

const InvoiceLine = builder.objectRef<InvoiceLineView>('InvoiceLine').implement({
  fields: (t) => ({
    kind: t.field({ type: InvoiceLineKind, resolve: (l) => l.kind }),
    description: t.exposeString('description'),
    planId: t.exposeString('planId', { nullable: true }),
    planVersion: t.exposeInt('planVersion', { nullable: true }),
    ruleId: t.exposeString('ruleId', { nullable: true }),
    tier: t.exposeInt('tier', { nullable: true }),
    usageType: t.exposeString('usageType', { nullable: true }),
    quantity: t.field({ type: 'Decimal', nullable: true, resolve: (l) => l.quantity }),
    unitPrice: t.field({ type: 'Decimal', nullable: true, resolve: (l) => l.unitPrice }),
    amount: t.field({ type: 'Decimal', resolve: (l) => l.amount }),
  }),
})

const InvoicePreview = builder.objectRef<InvoicePreviewView>('InvoicePreview').implement({
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    currency: t.exposeString('currency'),
    periodStart: t.field({ type: 'DateTime', resolve: (p) => p.periodStart }),
    periodEnd: t.field({ type: 'DateTime', resolve: (p) => p.periodEnd }),
    plan: t.field({
      type: RatingPlanRef,
      nullable: true,
      description:
        'The plan in force at the end of the period (or now). Hidden from widget sessions without price details.',
      authScopes: { priceDetails: true },
      resolve: (p) => p.plan,
    }),
    lines: t.field({ type: [InvoiceLine], resolve: (p) => p.lines }),
    subtotal: t.field({ type: 'Decimal', resolve: (p) => p.subtotal }),
    creditsApplied: t.field({ type: 'Decimal', resolve: (p) => p.creditsApplied }),
    creditsRemaining: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'Null while no prepaid credits service is wired in.',
      resolve: (p) => p.creditsRemaining,
    }),
    total: t.field({ type: 'Decimal', resolve: (p) => p.total }),
    projectedUsage: t.field({
      type: 'Decimal',
      description: "The period's usage projected to its end at the current burn rate.",
      resolve: (p) => p.projectedUsage,
    }),
    projectedSubtotal: t.field({
      type: 'Decimal',
      description: 'The subtotal the projection would give (minimum commitment applied, before credits).',
      resolve: (p) => p.projectedSubtotal,
    }),
  }),
})

builder.queryFields((t) => ({
  ratingPlan: t.field({
    type: RatingPlanRef,
    nullable: true,
    description:
      "The plan version in force now for a customer (its own, else the tenant default), or the tenant default's when customerId is null; null: billed at cost.",
    args: { customerId: t.arg.string() },
    authScopes: { tenant: true },
    resolve: async (_root, { customerId }, ctx) => {
      const tenant = tenantOf(ctx)
      const now = ctx.services.clock.now()
      if (customerId) return ctx.services.rating.planInForce(tenant.id, customerId, now)
      const history = await ctx.services.rating.planHistory(tenant.id, null)
      return history.filter((v) => v.effectiveFrom <= now).at(-1) ?? null
    },
  }),
  ratingPlanHistory: t.field({
    type: [RatingPlanRef],
    description:
      "Every version of a customer's own plan (or the tenant default's), oldest first, including scheduled ones.",
    args: { customerId: t.arg.string() },
    authScopes: { tenant: true },
    resolve: (_root, { customerId }, ctx) => ctx.services.rating.planHistory(tenantOf(ctx).id, customerId ?? null),
  }),
  invoicePreview: t.field({
    type: InvoicePreview,
    description:
      "A customer's bill for a period (a UTC month; default the current one): lines per plan rule and tier, the minimum commitment's true-up, credits, total and a projection to the period's end.",
    args: { customerId: t.arg.string({ required: true }), periodStart: t.arg({ type: 'DateTime' }) },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: (_root, { customerId, periodStart }, ctx) =>
      ctx.services.rating.invoicePreview(tenantOf(ctx), customerId, periodStart ?? null),
  }),
}))

builder.mutationFields((t) => ({
  setRatingPlan: t.field({
    type: RatingPlanRef,
    description:
      'Appends a version of a plan (a customer’s, or the tenant default). Events are rated under the version in force at their own timestamp; what was billed stays billed.',
    args: { input: t.arg({ type: RatingPlanInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) =>
      ctx.services.rating.setPlan(tenantOf(ctx), {
        customerId: input.customerId,
        effectiveFrom: input.effectiveFrom,
        retroactive: input.retroactive,
        prepaidOnly: input.prepaidOnly,
        rules: input.rules.map((r) => ({
          ...r,
          kind: r.kind as 'MARKUP' | 'MARGIN' | null | undefined,
          tiers: r.tiers?.map((x) => ({ upTo: x.upTo, unitPrice: x.unitPrice })),
        })),
      }),
  }),
}))
