import { tenantOf } from '../schema/auth-scopes.ts'
import { PricedLine, UnpricedReason } from '../usage/schema.ts'
import { Decimal } from '../money/decimal.ts'
import { builder } from '../schema/builder.ts'
import type { PricedLineJson } from '../db/types.ts'
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
        'Events billed under a rating plan (setRatingPlan), left at their bill and cost: re-pricing would re-bill them by markup alone, and re-rating is not built yet.',
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
