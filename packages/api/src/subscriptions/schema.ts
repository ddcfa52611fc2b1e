import { BUDGET_ALERT_KINDS, type BudgetAlertEvent, type PriceChangeEvent, type UsageUpdateEvent } from '../pubsub.ts'
import { builder } from '../schema/builder.ts'
import { budgetAlertStream, priceChangeStream, usageUpdateStream } from './streams.ts'

/**
 * The contract's PriceChange, shaped as the pubsub event (plain JSON: it may cross processes).
 * Exported so a price-change log query can return the same type; define it nowhere else.
 */
const PriceChangeRef = builder.objectRef<PriceChangeEvent>('PriceChange').implement({
  description: 'A catalog price that changed: a public provider price, or one of your own negotiated prices.',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usageType'),
    oldUnitPrice: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'null: the price is new.',
      resolve: (e) => e.oldUnitPrice,
    }),
    newUnitPrice: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'null: the price was withdrawn.',
      resolve: (e) => e.newUnitPrice,
    }),
    effectiveFrom: t.field({ type: 'DateTime', resolve: (e) => e.effectiveFrom }),
  }),
})

const BudgetAlertKind = builder.enumType('BudgetAlertKind', {
  values: BUDGET_ALERT_KINDS,
  description:
    'THRESHOLD: spend reached `threshold` % of the limit. FORECAST: the projected spend at period end first passed the limit (only for budgets with forecastAlerts).',
})

/**
 * The contract's BudgetAlert, shaped as the pubsub event. The budgets domain publishes these
 * events and may return the same shape from its queries (map a row with the same field names).
 */
export const BudgetAlertRef = builder.objectRef<BudgetAlertEvent>('BudgetAlert').implement({
  description: 'A budget threshold crossed: raised once per budget, period and threshold.',
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeString('customerId'),
    budgetId: t.exposeID('budgetId'),
    threshold: t.exposeInt('threshold', { description: 'Percent of the limit.' }),
    spent: t.field({
      type: 'Decimal',
      description: 'Billed amount of the period when the alert triggered.',
      resolve: (e) => e.spent,
    }),
    limit: t.field({ type: 'Decimal', resolve: (e) => e.limit }),
    periodStart: t.field({ type: 'DateTime', resolve: (e) => e.periodStart }),
    triggeredAt: t.field({ type: 'DateTime', resolve: (e) => e.triggeredAt }),
    kind: t.field({ type: BudgetAlertKind, resolve: (e) => e.kind ?? 'THRESHOLD' }),
  }),
})

const UsageUpdateRef = builder.objectRef<UsageUpdateEvent>('UsageUpdate').implement({
  description:
    "A customer's billed usage changed (events stored, priced late or corrected); re-read usageSummary for the figures.",
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    events: t.exposeInt('events', {
      description:
        'Events stored, priced or corrected since the previous update (changes are coalesced over a short window).',
    }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
  }),
})

builder.subscriptionType({
  description:
    'Live events over GraphQL over SSE (POST or GET /graphql, Accept: text/event-stream) or GraphQL over WebSocket (graphql-ws protocol on /graphql).',
})

builder.subscriptionFields((t) => ({
  budgetAlerts: t.field({
    type: BudgetAlertRef,
    description:
      "Alerts as they trigger. A widget token sees only its own customer's; a tenant key may omit customerId.",
    args: { customerId: t.arg.string() },
    subscribe: (_root, args, ctx) =>
      budgetAlertStream(ctx.services.pubsub, ctx.principal, args.customerId, ctx.services.clock.now()),
    resolve: (event) => event,
  }),
  usageUpdates: t.field({
    type: UsageUpdateRef,
    description:
      "A customer's usage changed, after it committed. A widget token sees only its own customer's; a tenant key may omit customerId.",
    args: { customerId: t.arg.string() },
    subscribe: (_root, args, ctx) =>
      usageUpdateStream(ctx.services.pubsub, ctx.principal, args.customerId, ctx.services.clock.now()),
    resolve: (event) => event,
  }),
  priceChanges: t.field({
    type: PriceChangeRef,
    description:
      "Catalog price changes as they are applied: public ones and your tenant's own, optionally for one provider. Tenant keys only: a widget session subscribes to its customer's budget alerts and usage updates, nothing else.",
    args: { provider: t.arg.string() },
    // The tenant's own (negotiated) prices are its provider cost, and a widget is for one customer's spend.
    authScopes: (_root, _args, ctx) => ctx.principal?.kind !== 'widget',
    subscribe: (_root, args, ctx) =>
      priceChangeStream(ctx.services.pubsub, ctx.principal, args.provider, ctx.services.clock.now()),
    resolve: (event) => event,
  }),
}))
