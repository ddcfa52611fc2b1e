import type { Tenant as TenantRow } from '../db/types.ts'
import { builder } from '../schema/builder.ts'
import { checkTimeZone } from '../budgets/periods.ts'
import { normalizeWidgetOrigins } from '../widget-sessions/origins.ts'
import { requireTenant } from './guard.ts'

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
  tenant: t.field({ type: Tenant, resolve: (_root, _args, ctx) => requireTenant(ctx) }),
}))

builder.mutationFields((t) => ({
  updateTenantSettings: t.field({
    type: Tenant,
    args: { input: t.arg({ type: TenantSettingsInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.tenants.updateSettings(requireTenant(ctx).id, {
        requireSignatures: input.requireSignatures ?? undefined,
        // Absent: unchanged; null: unrestricted; a list: exactly those origins.
        ...('widgetOrigins' in input
          ? { widgetOrigins: input.widgetOrigins == null ? null : normalizeWidgetOrigins(input.widgetOrigins) }
          : {}),
        ...(input.budgetTimeZone == null
          ? {}
          : { budgetTimeZone: checkTimeZone(input.budgetTimeZone, 'input.budgetTimeZone') }),
      }),
  }),
}))
