/** overview and unpricedGroups: the console's morning view, from rollups. */
import { CatalogSourceState } from '../catalog/schema.ts'
import { CustomerFigures } from '../customers/schema.ts'
import { builder } from '../schema/builder.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { CUSTOMER_LIMITS } from '../customers/service.ts'
import { UnpricedReason } from '../usage/schema.ts'
import type {
  AmountAtRisk as AmountAtRiskView,
  DayFigures,
  ModelFigures,
  OverviewView,
  UnpricedGroupView,
} from './service.ts'

const OverviewDay = builder.objectRef<DayFigures>('OverviewDay').implement({
  fields: (t) => ({
    day: t.field({ type: 'DateTime', description: 'UTC midnight starting the day.', resolve: (d) => d.day }),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    cost: t.field({ type: 'Decimal', resolve: (f) => f.cost }),
    amount: t.field({ type: 'Decimal', description: 'Billed.', resolve: (f) => f.amount }),
    margin: t.field({ type: 'Decimal', description: 'amount − cost.', resolve: (f) => f.margin }),
  }),
})

const OverviewModel = builder.objectRef<ModelFigures>('OverviewModel').implement({
  fields: (t) => ({
    provider: t.exposeString('provider', { description: "Canonical when priced, as reported otherwise; '' for none." }),
    model: t.exposeString('model'),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    cost: t.field({ type: 'Decimal', resolve: (f) => f.cost }),
    amount: t.field({ type: 'Decimal', description: 'Billed.', resolve: (f) => f.amount }),
    margin: t.field({ type: 'Decimal', description: 'amount − cost.', resolve: (f) => f.margin }),
    amountAtRisk: t.field({
      type: 'Decimal',
      nullable: true,
      description:
        "Estimated billing of this model's UNPRICED events (their count × its priced events' average bill in the range); null when unknown (no priced event to estimate from).",
      resolve: (m) => m.amountAtRisk,
    }),
  }),
})

const AmountAtRisk = builder.objectRef<AmountAtRiskView>('AmountAtRisk').implement({
  description:
    'What UNPRICED events would bill, estimated per provider and model from the average bill of its priced events in the same range. A lower bound when unestimatedEvents > 0; null when nothing is estimable — unknown, never 0.',
  fields: (t) => ({
    events: t.exposeInt('events', { description: 'UNPRICED events in the range.' }),
    amount: t.field({ type: 'Decimal', nullable: true, resolve: (a) => a.amount }),
    estimatedEvents: t.exposeInt('estimatedEvents'),
    unestimatedEvents: t.exposeInt('unestimatedEvents', {
      description: 'UNPRICED events of models with no priced event in the range: left out of amount.',
    }),
  }),
})

const Overview = builder.objectRef<OverviewView>('Overview').implement({
  description:
    'Billed, cost and margin over whole UTC hours [from, to) by day and by provider and model, UNPRICED events and the amount at risk, alerts today, top customers and catalog freshness — read from the hourly rollups.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', description: 'from, floored to the UTC hour.', resolve: (o) => o.from }),
    to: t.field({ type: 'DateTime', description: 'to, raised to the UTC hour.', resolve: (o) => o.to }),
    currency: t.exposeString('currency'),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    cost: t.field({ type: 'Decimal', resolve: (f) => f.cost }),
    amount: t.field({ type: 'Decimal', description: 'Billed.', resolve: (f) => f.amount }),
    margin: t.field({ type: 'Decimal', description: 'amount − cost.', resolve: (f) => f.margin }),
    byDay: t.field({ type: [OverviewDay], description: 'UTC days with usage, in order.', resolve: (o) => o.byDay }),
    byModel: t.field({ type: [OverviewModel], description: 'Most billed first.', resolve: (o) => o.byModel }),
    amountAtRisk: t.field({ type: AmountAtRisk, resolve: (o) => o.atRisk }),
    alertsToday: t.exposeInt('alertsToday', {
      description: "Budget and credit alerts raised since today's UTC midnight.",
    }),
    topCustomers: t.field({
      type: [CustomerFigures],
      args: {
        first: t.arg.int({ description: `At most ${CUSTOMER_LIMITS.topMax}; default ${CUSTOMER_LIMITS.topDefault}.` }),
      },
      resolve: (o, args, ctx) => ctx.services.customers.top(tenantOf(ctx), { from: o.from, to: o.to }, args.first),
    }),
    catalogFreshness: t.field({
      type: [CatalogSourceState],
      description: 'Each public price source: last success, consecutive failures, last error.',
      resolve: (_o, _args, ctx) => ctx.services.catalog.sourceStates(),
    }),
  }),
})

const UnpricedFixAction = builder.enumType('UnpricedFixAction', {
  values: {
    ADD_OVERRIDE_THEN_REPRICE: { description: 'setPriceOverride for the usage types named, then repriceUsage.' },
    REPRICE: { description: 'repriceUsage alone (prices them if a price is now in force, else records why not).' },
  } as const,
})

const UnpricedFix = builder.objectRef<UnpricedGroupView['fix']>('UnpricedFix').implement({
  fields: (t) => ({
    action: t.field({ type: UnpricedFixAction, resolve: (f) => f.action }),
    usageTypes: t.exposeStringList('usageTypes'),
    effectiveFrom: t.field({
      type: 'DateTime',
      description: "The UTC midnight of the group's first event.",
      resolve: (f) => f.effectiveFrom,
    }),
    description: t.exposeString('description'),
  }),
})

const UnpricedGroup = builder.objectRef<UnpricedGroupView>('UnpricedGroup').implement({
  description: 'UNPRICED events of one provider and model for one reason.',
  fields: (t) => ({
    provider: t.exposeString('provider', { description: "Canonical when known, as reported otherwise; '' for none." }),
    model: t.exposeString('model'),
    reason: t.field({
      type: UnpricedReason,
      nullable: true,
      description: 'Null for events stored before reasons were kept.',
      resolve: (g) => g.reason,
    }),
    events: t.exposeInt('events'),
    customers: t.exposeInt('customers'),
    firstAt: t.field({ type: 'DateTime', resolve: (g) => g.firstAt }),
    lastAt: t.field({ type: 'DateTime', resolve: (g) => g.lastAt }),
    amountAtRisk: t.field({
      type: 'Decimal',
      nullable: true,
      description: "Estimate: events × the model's average bill per priced event in the range; null when unknown.",
      resolve: (g) => g.amountAtRisk,
    }),
    fix: t.field({ type: UnpricedFix, resolve: (g) => g.fix }),
  }),
})

builder.queryFields((t) => ({
  overview: t.withAuth({ tenant: true }).field({
    type: Overview,
    description: 'The console overview over [from, to) (whole UTC hours, at most 400 days), from the hourly rollups.',
    args: { from: t.arg({ type: 'DateTime', required: true }), to: t.arg({ type: 'DateTime', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.overview.overview(ctx.principal.tenant, args),
  }),
  unpricedGroups: t.withAuth({ tenant: true }).field({
    type: [UnpricedGroup],
    description:
      'UNPRICED events with a timestamp in [from, to) (whole UTC hours) grouped by provider, model and reason, most events first (at most 200 groups), each with its amount at risk and its fix.',
    args: { from: t.arg({ type: 'DateTime', required: true }), to: t.arg({ type: 'DateTime', required: true }) },
    resolve: (_root, args, ctx) => ctx.services.overview.unpricedGroups(ctx.principal.tenant, args),
  }),
}))
