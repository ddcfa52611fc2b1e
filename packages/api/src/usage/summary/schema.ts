/** usageSummary and usageEvents: GraphQL types and thin resolvers over the usage read service. */
import { ModelPrice } from '../../catalog/schema.ts'
import { Customer } from '../../customers/schema.ts'
import { tenantOf } from '../../schema/auth-scopes.ts'
import { builder } from '../../schema/builder.ts'
import { connection, pageArgs } from '../../schema/pagination.ts'
import { PRICE_DETAIL, PricedLine, UsageEvent } from '../schema.ts'
import { DIMENSIONS, EVENTS_PAGE, type UsageGroupView, type UsageSummaryView } from './service.ts'

// ------------------------------------------------------------------ GraphQL types

const UsageDimension = builder.enumType('UsageDimension', { values: DIMENSIONS })

const UsageGroup = builder.objectRef<UsageGroupView>('UsageGroup').implement({
  description: 'Usage of one combination of the requested dimensions; dimensions not grouped by are null.',
  fields: (t) => ({
    model: t.exposeString('model', { nullable: true }),
    provider: t.exposeString('provider', { nullable: true }),
    feature: t.exposeString('feature', { nullable: true }),
    usageType: t.exposeString('usageType', { nullable: true }),
    bucketStart: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Start of the UTC day or hour, when grouped by DAY or HOUR.',
      resolve: (g) => g.bucketStart,
    }),
    events: t.exposeInt('events', {
      description: 'Events in the group; with USAGE_TYPE, events with a priced line of that type.',
    }),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
    cost: t.field({
      type: 'Decimal',
      description: `What the tenant pays its providers. ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (g) => g.cost,
    }),
    amount: t.field({ type: 'Decimal', resolve: (g) => g.amount }),
  }),
})

const UsageSummary = builder.objectRef<UsageSummaryView>('UsageSummary').implement({
  fields: (t) => ({
    customerId: t.exposeString('customerId', { nullable: true }),
    from: t.field({ type: 'DateTime', resolve: (s) => s.from }),
    to: t.field({ type: 'DateTime', resolve: (s) => s.to }),
    currency: t.exposeString('currency'),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    inputTokens: t.exposeFloat('inputTokens'),
    outputTokens: t.exposeFloat('outputTokens'),
    cost: t.field({
      type: 'Decimal',
      description: `What the tenant pays its providers. ${PRICE_DETAIL}`,
      authScopes: { priceDetails: true },
      resolve: (s) => s.cost,
    }),
    amount: t.field({ type: 'Decimal', description: 'What the customer is billed.', resolve: (s) => s.amount }),
    groups: t.field({ type: [UsageGroup], description: 'Empty without groupBy.', resolve: (s) => s.groups }),
  }),
})

const UsageEventConnection = connection('UsageEvent', UsageEvent)

builder.objectFields(UsageEvent, (t) => ({
  customer: t.field({
    type: Customer,
    nullable: true,
    resolve: (event, _args, ctx) => ctx.loaders.customer.load(`${event.tenant_id}\u0001${event.customer_id}`),
  }),
}))

builder.objectFields(PricedLine, (t) => ({
  price: t.field({
    type: ModelPrice,
    nullable: true,
    description: 'The effective-dated catalog row that priced this line.',
    // Lines are only reachable through the caller's own events; its tenant also sees its own (negotiated) rows.
    authScopes: { tenant: true },
    resolve: (line, _args, ctx) => ctx.loaders.price.load(`${tenantOf(ctx).id}\u0001${line.priceId}`),
  }),
}))

builder.queryFields((t) => ({
  usageSummary: t.field({
    type: UsageSummary,
    description: 'Usage and spend over [from, to) for one customer, or the whole tenant when customerId is null.',
    args: {
      customerId: t.arg.string(),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      groupBy: t.arg({ type: [UsageDimension] }),
    },
    // The whole tenant's usage is for its secret key; a widget session reads only its customer.
    authScopes: (_root, args) => (args.customerId == null ? { tenant: true } : { customer: args.customerId }),
    resolve: (_root, args, ctx) =>
      ctx.services.usageReads.summary(tenantOf(ctx), {
        customerId: args.customerId ?? null,
        from: args.from,
        to: args.to,
        groupBy: args.groupBy ?? [],
      }),
  }),
  usageEvents: t.field({
    type: UsageEventConnection,
    description:
      "A customer's events, newest first. Keyset pages on (timestamp, id): ingest between pages never repeats or skips a stored event.",
    args: {
      customerId: t.arg.string({ required: true }),
      from: t.arg({ type: 'DateTime' }),
      to: t.arg({ type: 'DateTime' }),
      ...pageArgs(t.arg, EVENTS_PAGE),
      model: t.arg.string({
        description:
          'Only events of this model, as usageSummary groups MODEL: the canonical model, or the reported one when unknown.',
      }),
      feature: t.arg.string({ description: 'Only events of this feature.' }),
    },
    authScopes: (_root, args) => ({ customer: args.customerId }),
    resolve: (_root, args, ctx) =>
      ctx.services.usageReads.events(tenantOf(ctx), {
        customerId: args.customerId,
        from: args.from ?? null,
        to: args.to ?? null,
        first: args.first ?? null,
        after: args.after ?? null,
        model: args.model ?? null,
        feature: args.feature ?? null,
      }),
  }),
}))
