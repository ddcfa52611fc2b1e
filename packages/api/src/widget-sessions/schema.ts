import { requireTenant } from '../auth/guard.ts'
import { builder } from '../schema/builder.ts'
import { WIDGET_SESSION_LIMITS, type IssuedWidgetSession } from './service.ts'

const WidgetSession = builder.objectRef<IssuedWidgetSession>('WidgetSession').implement({
  description:
    "A short-lived token for the embeddable widget: reads one customer's usage, budgets and alerts, nothing else. " +
    'Send it as "Authorization: Bearer <token>"; when it expires the API answers UNAUTHENTICATED with extensions.reason WIDGET_SESSION_EXPIRED.',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Shown once; only its hash is stored.' }),
    customerId: t.exposeString('customerId'),
    expiresAt: t.field({ type: 'DateTime', resolve: (s) => s.expiresAt }),
  }),
})

builder.mutationFields((t) => ({
  createWidgetSession: t.field({
    type: WidgetSession,
    description: "Issues a widget session token for one customer. Tenant secret key only; call it from the tenant's backend.",
    args: {
      customerId: t.arg.string({ required: true }),
      ttlSeconds: t.arg.int({
        description: `Lifetime in seconds, ${WIDGET_SESSION_LIMITS.minTtlSeconds}-${WIDGET_SESSION_LIMITS.maxTtlSeconds}; default ${WIDGET_SESSION_LIMITS.defaultTtlSeconds} (15 minutes).`,
      }),
    },
    resolve: (_root, args, ctx) => ctx.services.widgetSessions.create(requireTenant(ctx), { customerId: args.customerId, ttlSeconds: args.ttlSeconds }),
  }),
}))
