import type { Tenant as TenantRow } from '../db/types.ts'
import { builder } from '../schema/builder.ts'
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
  }),
})

const TenantSettingsInput = builder.inputType('TenantSettingsInput', {
  fields: (t) => ({ requireSignatures: t.boolean() }),
})

builder.queryFields((t) => ({
  tenant: t.field({ type: Tenant, resolve: (_root, _args, ctx) => requireTenant(ctx) }),
}))

builder.mutationFields((t) => ({
  updateTenantSettings: t.field({
    type: Tenant,
    args: { input: t.arg({ type: TenantSettingsInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.tenants.updateSettings(requireTenant(ctx).id, { requireSignatures: input.requireSignatures ?? undefined }),
  }),
}))
