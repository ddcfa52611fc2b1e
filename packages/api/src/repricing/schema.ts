import { tenantOf } from '../schema/auth-scopes.ts'
import { PricedLine, UnpricedReason } from '../usage/schema.ts'
import { Decimal } from '../money/decimal.ts'
import { builder } from '../schema/builder.ts'
import type { PricedLineJson } from '../db/types.ts'
import type { RerateResult, ReratingView } from './rerating.ts'
import type { RepriceResult } from './types.ts'

interface CorrectionView {
  id: number
  event_id: string
  customer_id: string
  ts: Date
  provider: string
  model: string
  feature: string
  old_lines: PricedLineJson[]
  new_lines: PricedLineJson[]
  old_cost: string
  new_cost: string
  old_amount: string
  new_amount: string
  reason: string
  created_at: Date
}

const UsageCorrection = builder.objectRef<CorrectionView>('UsageCorrection').implement({
  description:
    'A billed event re-priced after a price correction: the event is never edited; summaries add newCost − oldCost.',
  fields: (t) => ({
    id: t.id({ resolve: (c) => String(c.id) }),
    eventId: t.exposeString('event_id'),
    customerId: t.exposeString('customer_id'),
    timestamp: t.field({ type: 'DateTime', resolve: (c) => c.ts }),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    oldLines: t.field({ type: [PricedLine], resolve: (c) => c.old_lines }),
    newLines: t.field({ type: [PricedLine], resolve: (c) => c.new_lines }),
    oldPriceIds: t.idList({ resolve: (c) => c.old_lines.map((l) => l.priceId) }),
    newPriceIds: t.idList({ resolve: (c) => c.new_lines.map((l) => l.priceId) }),
    oldCost: t.field({ type: 'Decimal', resolve: (c) => c.old_cost }),
    newCost: t.field({ type: 'Decimal', resolve: (c) => c.new_cost }),
    costDelta: t.field({ type: 'Decimal', resolve: (c) => subtract(c.new_cost, c.old_cost) }),
    oldAmount: t.field({ type: 'Decimal', resolve: (c) => c.old_amount }),
    newAmount: t.field({ type: 'Decimal', resolve: (c) => c.new_amount }),
    amountDelta: t.field({ type: 'Decimal', resolve: (c) => subtract(c.new_amount, c.old_amount) }),
    reason: t.exposeString('reason'),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.created_at }),
  }),
})

const subtract = (a: string, b: string) => new Decimal(a).minus(b).toFixed()

const RepriceUsageResult = builder.objectRef<RepriceResult>('RepriceUsageResult').implement({
  fields: (t) => ({
    examined: t.exposeInt('examined'),
    corrected: t.exposeInt('corrected', { description: 'Correction entries written; 0 when re-run.' }),
    costDelta: t.field({ type: 'Decimal', resolve: (r) => r.costDelta }),
    amountDelta: t.field({ type: 'Decimal', resolve: (r) => r.amountDelta }),
    ratedKept: t.exposeInt('ratedKept', {
      description:
        'Events billed under a rating plan (setRatingPlan), left at their bill and cost: re-pricing would re-bill them by markup alone. Re-rate them with rerateUsage.',
    }),
    unpriced: t.exposeInt('unpriced', {
      description:
        'Events left at their current bill because the catalog now has no price for a usage type they report (never re-billed at zero).',
    }),
    unpricedReasons: t.field({
      type: [UnpricedReason],
      description: 'Why, once per distinct reason.',
      resolve: (r) => r.unpricedReasons,
    }),
  }),
})

builder.mutationFields((t) => ({
  repriceUsage: t.field({
    type: RepriceUsageResult,
    description:
      "Re-prices this tenant's priced events of one model in [from, to) with the catalog as it is now (negotiated prices included). Each changed event gets a correction entry; history is never overwritten; re-running is a no-op.",
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      model: t.arg.string({ required: true }),
      provider: t.arg.string(),
      reason: t.arg.string({ description: 'Kept on every correction (default: "price correction").' }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.repricing.repriceRequest(tenantOf(ctx).id, args),
  }),
}))

builder.queryFields((t) => ({
  usageCorrections: t.field({
    type: [UsageCorrection],
    description: 'Audit trail of re-pricing: corrections of events in [from, to), oldest first.',
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      customerId: t.arg.string(),
      first: t.arg.int(),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.repricing.listCorrections(tenantOf(ctx).id, args),
  }),
}))

const RatingRerating = builder.objectRef<ReratingView>('RatingRerating').implement({
  description:
    "One customer period re-rated by rerateUsage: how many of its events the re-rating corrected and by how much (each correction is a UsageCorrection with the run's reason).",
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeString('customerId'),
    periodStart: t.field({ type: 'DateTime', resolve: (r) => r.periodStart }),
    reason: t.exposeString('reason'),
    events: t.exposeInt('events', { description: "The period's PRICED events, all rated again." }),
    correctedEvents: t.exposeInt('correctedEvents'),
    amountDelta: t.field({ type: 'Decimal', resolve: (r) => r.amountDelta }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.createdAt }),
  }),
})

const RerateUsageResult = builder.objectRef<RerateResult>('RerateUsageResult').implement({
  fields: (t) => ({
    periodStart: t.field({
      type: 'DateTime',
      description: 'The range widened to whole periods (UTC months): from the start of the first.',
      resolve: (r) => r.periodStart,
    }),
    periodEnd: t.field({ type: 'DateTime', description: 'To the end of the last.', resolve: (r) => r.periodEnd }),
    examined: t.exposeInt('examined'),
    corrected: t.exposeInt('corrected', { description: 'Correction entries written; 0 when re-run.' }),
    amountDelta: t.field({ type: 'Decimal', resolve: (r) => r.amountDelta }),
    reratings: t.field({
      type: [RatingRerating],
      description: 'One per customer period that changed; empty when re-run.',
      resolve: (r) => r.reratings,
    }),
  }),
})

const RerateUsageInput = builder.inputType('RerateUsageInput', {
  fields: (t) => ({
    customerId: t.string({ description: 'One customer; absent: every customer with priced usage in the range.' }),
    from: t.field({ type: 'DateTime', required: true }),
    to: t.field({ type: 'DateTime', required: true }),
    reason: t.string({
      required: true,
      description: 'Kept on every correction and on the re-rating (1-500 characters).',
    }),
  }),
})

builder.mutationFields((t) => ({
  rerateUsage: t.field({
    type: RerateUsageResult,
    description:
      'Re-rates the periods (UTC months) that [from, to) touches: every PRICED event, in event order, under the plan version in force at it, from its current cost lines. Each event whose bill changes gets a correction (history is never overwritten); rollups, budgets, credits and Stripe move by the difference; the period counters are reset to what the events add up to. Recorded in ratingReratings and the audit log; re-running changes nothing.',
    args: { input: t.arg({ type: RerateUsageInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) => ctx.services.rerating.rerateUsage(tenantOf(ctx), input),
  }),
}))

builder.queryFields((t) => ({
  ratingReratings: t.field({
    type: [RatingRerating],
    description: 'The re-ratings of this tenant (of one customer when customerId is set), newest first.',
    args: { customerId: t.arg.string(), first: t.arg.int({ description: '1-500, default 100.' }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.rerating.listReratings(tenantOf(ctx).id, args),
  }),
}))
