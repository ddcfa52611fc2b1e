import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import type { GatewayProvider } from './db-types.ts'
import type { ProviderKeyView } from './service.ts'

const GatewayProviderEnum = builder.enumType('GatewayProvider', {
  description: 'An upstream provider the metering gateway forwards to.',
  values: { OPENAI: { value: 'openai' }, ANTHROPIC: { value: 'anthropic' } } as const,
})

const ProviderKey = builder.objectRef<ProviderKeyView>('ProviderKey').implement({
  description: "A tenant's stored provider key, as far as the API ever shows it: the key itself is never returned.",
  fields: (t) => ({
    provider: t.field({ type: GatewayProviderEnum, resolve: (k) => k.provider }),
    hint: t.exposeString('hint', { description: 'The last four characters.' }),
    updatedAt: t.field({ type: 'DateTime', resolve: (k) => k.updatedAt }),
  }),
})

const ProviderKeyInput = builder.inputType('ProviderKeyInput', {
  fields: (t) => ({
    provider: t.field({ type: GatewayProviderEnum, required: true }),
    apiKey: t.string({ required: true, description: 'Stored encrypted (AES-256-GCM); never returned.' }),
  }),
})

builder.queryFields((t) => ({
  providerKeys: t.field({
    type: [ProviderKey],
    description: 'Provider keys the gateway (POST /v1/chat/completions, /v1/messages) forwards with.',
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.gateway.providerKeys(tenantOf(ctx)),
  }),
}))

builder.mutationFields((t) => ({
  setProviderKey: t.field({
    type: ProviderKey,
    description: 'Stores (or replaces) the key the gateway uses for one provider.',
    args: { input: t.arg({ type: ProviderKeyInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) =>
      ctx.services.gateway.setProviderKey(tenantOf(ctx), input.provider as GatewayProvider, input.apiKey),
  }),
  deleteProviderKey: t.boolean({
    description: 'Removes a provider key; the gateway then refuses calls to that provider. False when none was set.',
    args: { provider: t.arg({ type: GatewayProviderEnum, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { provider }, ctx) =>
      ctx.services.gateway.deleteProviderKey(tenantOf(ctx), provider as GatewayProvider),
  }),
}))
