/** The audit log as the API lists it: auditLog, newest first, filtered, in Relay pages. */
import { ApiKeyRole, AuthMethod } from '../auth/schema.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import type { AuditRow } from './service.ts'

const AuditEntry = builder.objectRef<AuditRow>('AuditEntry').implement({
  description: 'One change to money or configuration: who made it, when, what, before and after.',
  fields: (t) => ({
    id: t.exposeID('id'),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    actorKeyId: t.exposeID('actor_key_id', {
      nullable: true,
      description: 'The API key that made the change; null for a change made outside a request (CLI, background job).',
    }),
    actorKeyName: t.exposeString('actor_key_name', { nullable: true }),
    actorRole: t.field({ type: ApiKeyRole, nullable: true, resolve: (e) => e.actor_role }),
    actorAuthMethod: t.field({ type: AuthMethod, nullable: true, resolve: (e) => e.actor_auth_method }),
    action: t.exposeString('action', {
      description: 'What was done: budget.set, priceChange.confirm, apiKey.revoke, …',
    }),
    entityType: t.exposeString('entity_type', { description: 'PricingPlan, Budget, PriceOverride, ApiKey, …' }),
    entityId: t.exposeString('entity_id', { nullable: true }),
    before: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The entity before the change; null when it was created. Secrets never appear.',
      resolve: (e) => e.before,
    }),
    after: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The entity after the change; null when it was deleted. Secrets never appear.',
      resolve: (e) => e.after,
    }),
    requestId: t.exposeString('request_id', { nullable: true, description: 'x-request-id of the request.' }),
  }),
})

const AuditEntryConnection = connection('AuditEntry', AuditEntry)

const AuditLogFilter = builder.inputType('AuditLogFilter', {
  fields: (t) => ({
    action: t.string(),
    entityType: t.string(),
    entityId: t.string(),
    actorKeyId: t.id(),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
  }),
})

builder.queryFields((t) => ({
  auditLog: t.withAuth({ tenant: true }).field({
    type: AuditEntryConnection,
    description:
      'Every change to money or configuration made through the API (prices, plans, budgets, held changes, re-pricing, webhooks, Stripe, provider keys, settings, API keys), newest first; keyset pages on (at, id).',
    args: { filter: t.arg({ type: AuditLogFilter }), ...pageArgs(t.arg) },
    resolve: (_root, args, ctx) => {
      const f = args.filter
      return ctx.services.audit.list(
        ctx.principal.tenant.id,
        {
          action: f?.action ?? null,
          entityType: f?.entityType ?? null,
          entityId: f?.entityId ?? null,
          actorKeyId: f?.actorKeyId != null ? String(f.actorKeyId) : null,
          from: f?.from ?? null,
          to: f?.to ?? null,
        },
        { first: args.first ?? null, after: args.after ?? null },
      )
    },
  }),
}))
