import { requireTenant } from '../auth/guard.ts'
import type { GraphQLContext } from '../context.ts'
import type { PriceTierJson, TimeWindowJson } from '../db/types.ts'
import { badInput } from '../errors.ts'
import { builder } from '../schema/builder.ts'
import { listPricesAt, priceHistory } from './repository.ts'
import type { CatalogPrice } from './types.ts'

const PriceTier = builder.objectRef<PriceTierJson>('PriceTier').implement({
  description: 'A long-context price: when the call’s total input tokens exceed aboveInputTokens, unitPrice applies to the whole line.',
  fields: (t) => ({
    aboveInputTokens: t.exposeInt('start'),
    unitPrice: t.field({ type: 'Decimal', resolve: (tier) => tier.unitPrice }),
  }),
})

function clockTime(secondOfDay: number): string {
  const hours = Math.floor(secondOfDay / 3600)
  const minutes = Math.floor((secondOfDay % 3600) / 60)
  const seconds = secondOfDay % 60
  const hhmm = `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}`
  return seconds === 0 ? hhmm : `${hhmm}:${String(seconds).padStart(2, '0')}`
}

/** "00:30–16:30 UTC"; a window whose end is before its start runs past midnight. */
export function formatTimeWindow(window: TimeWindowJson): string {
  return `${clockTime(window.startSecond)}–${clockTime(window.endSecond)} UTC`
}

export const ModelPrice = builder.objectRef<CatalogPrice>('ModelPrice').implement({
  description: 'One effective-dated catalog price: in force from effectiveFrom until effectiveTo (open when null).',
  fields: (t) => ({
    id: t.exposeID('id'),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usageType'),
    unit: t.exposeString('unit', { description: 'What one unitPrice buys: token, request, search, second, page or message.' }),
    unitPrice: t.field({
      type: 'Decimal',
      description: 'Price of one unit (one token, one image, …) in currency.',
      resolve: (price) => price.unitPrice,
    }),
    currency: t.exposeString('currency'),
    tiers: t.field({
      type: [PriceTier],
      nullable: true,
      description: 'Long-context tiers, lowest first; null when the price does not depend on context length.',
      resolve: (price) => price.tiers,
    }),
    timeWindow: t.string({
      nullable: true,
      description: 'Daily UTC window in which this price applies instead of the all-day one, e.g. "00:30–16:30 UTC".',
      resolve: (price) => (price.timeWindow ? formatTimeWindow(price.timeWindow) : null),
    }),
    effectiveFrom: t.field({ type: 'DateTime', resolve: (price) => price.effectiveFrom }),
    effectiveTo: t.field({ type: 'DateTime', nullable: true, resolve: (price) => price.effectiveTo }),
    source: t.exposeString('source'),
  }),
})

const MAX_NAME_LENGTH = 255

function checkName(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null
  const trimmed = value.trim()
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_LENGTH) throw badInput(`${field} must be 1-${MAX_NAME_LENGTH} characters`, field)
  return trimmed
}

/**
 * The catalog ids for what the caller typed: aliases and dated names resolve like usage events
 * do (gpt-4o-2024-08-06 → openai/gpt-4o); a name no source knows is looked up as given (lowercased,
 * like every catalog id), so the answer is simply empty.
 */
async function catalogIds(ctx: GraphQLContext, provider: string | null, model: string | null): Promise<{ provider: string | null; model: string | null }> {
  if (model === null) return { provider: provider?.toLowerCase() ?? null, model: null }
  await ctx.services.catalog.ensureFresh()
  const resolved = ctx.services.catalog.resolve(model, provider)
  return resolved ?? { provider: provider?.toLowerCase() ?? null, model: model.toLowerCase() }
}

builder.queryFields((t) => ({
  providerPrices: t.field({
    type: [ModelPrice],
    description: 'Prices in force at `at` (default: now).',
    args: {
      provider: t.arg.string(),
      model: t.arg.string(),
      at: t.arg({ type: 'DateTime' }),
    },
    resolve: async (_root, args, ctx) => {
      requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'))
      return listPricesAt(ctx.services.db, { ...ids, at: args.at ?? ctx.services.clock.now() })
    },
  }),
  priceHistory: t.field({
    type: [ModelPrice],
    description: 'Every effective-dated row ever known for one model, oldest first.',
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
    },
    resolve: async (_root, args, ctx) => {
      requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'))
      return priceHistory(ctx.services.db, ids.provider!, ids.model!)
    },
  }),
}))
