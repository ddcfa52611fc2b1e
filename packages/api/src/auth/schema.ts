import type { Tenant as TenantRow } from '../db/types.ts'
import { builder } from '../schema/builder.ts'

const Tenant = builder.objectRef<TenantRow>('Tenant').implement({
  description: 'The calling tenant and its settings. Secrets are never returned.',
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name'),
    currency: t.exposeString('currency'),
    requireSignatures: t.exposeBoolean('require_signatures', {
      description: 'When true, every usage event must carry a valid HMAC-SHA256 signature.',
    }),
    apiKeyPrefix: t.exposeString('api_key_prefix'),
    widgetOrigins: t.stringList({
      nullable: true,
      description: 'Browser origins allowed to use widget session tokens; null: not restricted (any origin).',
      resolve: (tenant) => tenant.widget_origins,
    }),
    budgetTimeZone: t.exposeString('budget_time_zone', {
      description: "IANA time zone of new budgets' periods (default UTC).",
    }),
  }),
})

const TenantSettingsInput = builder.inputType('TenantSettingsInput', {
  fields: (t) => ({
    requireSignatures: t.boolean(),
    widgetOrigins: t.stringList({
      description:
        'Origins (https://app.example.com) whose pages may use widget tokens; [] allows none, null lifts the restriction.',
    }),
    budgetTimeZone: t.string({
      description: 'IANA time zone (Europe/Paris) for budgets set from now on; default UTC.',
    }),
  }),
})

builder.queryFields((t) => ({
  tenant: t.withAuth({ tenant: true }).field({ type: Tenant, resolve: (_root, _args, ctx) => ctx.principal.tenant }),
}))

builder.mutationFields((t) => ({
  updateTenantSettings: t.withAuth({ tenant: true }).field({
    type: Tenant,
    args: { input: t.arg({ type: TenantSettingsInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.tenants.updateSettings(ctx.principal.tenant.id, input),
  }),
}))
