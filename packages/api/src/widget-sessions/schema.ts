import type { GraphQLContext } from '../context.ts'
import { builder } from '../schema/builder.ts'
import { WIDGET_SESSION_LIMITS, type IssuedWidgetSession } from './service.ts'

const PRICE_DETAILS =
  'true (default): the session may read unit prices, catalog price ids, the pricing plan (markup or margin) and cost, as the widget\'s "explain this charge" panel shows them. ' +
  'false: billed amounts, quantities, budgets and alerts only; those fields answer FORBIDDEN, so an end customer cannot work out your provider prices or margin.'

const WidgetSession = builder.objectRef<IssuedWidgetSession>('WidgetSession').implement({
  description:
    "A short-lived token for the embeddable widget: reads one customer's usage, budgets and alerts, nothing else. " +
    'Send it as "Authorization: Bearer <token>"; when it expires the API answers UNAUTHENTICATED with extensions.reason WIDGET_SESSION_EXPIRED.',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Shown once; only its hash is stored.' }),
    customerId: t.exposeString('customerId'),
    expiresAt: t.field({ type: 'DateTime', resolve: (s) => s.expiresAt }),
    priceDetails: t.exposeBoolean('priceDetails', { description: PRICE_DETAILS }),
  }),
})

type WidgetPrincipal = Extract<NonNullable<GraphQLContext['principal']>, { kind: 'widget' }>

const WidgetSessionInfo = builder.objectRef<WidgetPrincipal>('WidgetSessionInfo').implement({
  description: 'The widget session making the request, as the widget needs to know it (never its token).',
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    expiresAt: t.field({ type: 'DateTime', resolve: (p) => p.expiresAt }),
    priceDetails: t.exposeBoolean('priceDetails', { description: PRICE_DETAILS }),
  }),
})

builder.queryFields((t) => ({
  widgetSession: t.field({
    type: WidgetSessionInfo,
    nullable: true,
    description:
      'The calling widget session; null for a tenant secret key (which is not a session). The widget reads priceDetails here to know which fields it may ask for.',
    // Without a key: UNAUTHENTICATED as everywhere (saying so when a widget session expired).
    authScopes: (_root, _args, ctx) => ctx.principal !== null,
    resolve: (_root, _args, ctx) => (ctx.principal?.kind === 'widget' ? ctx.principal : null),
  }),
}))

builder.mutationFields((t) => ({
  createWidgetSession: t.withAuth({ tenant: true }).field({
    type: WidgetSession,
    description:
      "Issues a widget session token for one customer. Tenant secret key only; call it from the tenant's backend.",
    args: {
      customerId: t.arg.string({ required: true }),
      ttlSeconds: t.arg.int({
        description: `Lifetime in seconds, ${WIDGET_SESSION_LIMITS.minTtlSeconds}-${WIDGET_SESSION_LIMITS.maxTtlSeconds}; default ${WIDGET_SESSION_LIMITS.defaultTtlSeconds} (15 minutes).`,
      }),
      priceDetails: t.arg.boolean({ defaultValue: true, description: `${PRICE_DETAILS} null means the default.` }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.widgetSessions.create(ctx.principal.tenant, {
        customerId: args.customerId,
        ttlSeconds: args.ttlSeconds,
        priceDetails: args.priceDetails,
      }),
  }),
}))
