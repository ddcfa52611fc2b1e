import type { Tenant as TenantRow } from '../db/types.ts'
import { builder } from '../schema/builder.ts'
import type { ApiKeyRow } from './service.ts'

export const ApiKeyRole = builder.enumType('ApiKeyRole', {
  description:
    'ADMIN: everything for the tenant. READ_ONLY: every query and subscription; every mutation is FORBIDDEN.',
  values: ['ADMIN', 'READ_ONLY'] as const,
})

export const AuthMethod = builder.enumType('AuthMethod', {
  description: 'BEARER: an Authorization header. SESSION: the console session cookie (mutations need x-csrf-token).',
  values: ['BEARER', 'SESSION'] as const,
})

const ApiKey = builder.objectRef<ApiKeyRow>('ApiKey').implement({
  description: "One of the tenant's API keys. The secret is shown once, when it is created.",
  fields: (t) => ({
    id: t.exposeID('id', {}),
    name: t.exposeString('name', {}),
    role: t.field({ type: ApiKeyRole, resolve: (k) => k.role }),
    prefix: t.exposeString('key_prefix', {
      nullable: false,
      description: 'First characters of the secret (br_sk_xxxxxx), to tell keys apart.',
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (k) => k.created_at }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.revoked_at }),
  }),
})

const CreatedApiKey = builder.objectRef<{ key: ApiKeyRow; secret: string }>('CreatedApiKey').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKey, resolve: (c) => c.key }),
    secret: t.exposeString('secret', { description: 'Shown once; only its hash is stored.' }),
  }),
})

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1-100 characters.' }),
    role: t.field({ type: ApiKeyRole, required: true }),
  }),
})

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

interface ViewerShape {
  role: ApiKeyRow['role']
  keyId: string
  keyName: string
  tenant: TenantRow
  authMethod: 'BEARER' | 'SESSION'
}

const Viewer = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'The caller: its API key, role and tenant.',
  fields: (t) => ({
    role: t.field({ type: ApiKeyRole, resolve: (v) => v.role }),
    keyId: t.exposeID('keyId', {}),
    keyName: t.exposeString('keyName', {}),
    tenant: t.field({ type: Tenant, resolve: (v) => v.tenant }),
    authMethod: t.field({ type: AuthMethod, resolve: (v) => v.authMethod }),
  }),
})

builder.queryFields((t) => ({
  tenant: t.withAuth({ tenant: true }).field({ type: Tenant, resolve: (_root, _args, ctx) => ctx.principal.tenant }),
  viewer: t.withAuth({ tenant: true }).field({
    type: Viewer,
    description: 'The caller: its key, role and tenant. Tenant keys (either role); a widget session is FORBIDDEN.',
    resolve: (_root, _args, { principal: p }) => ({
      role: p.key.role,
      keyId: p.key.id,
      keyName: p.key.name,
      tenant: p.tenant,
      authMethod: p.authMethod,
    }),
  }),
  apiKeys: t.withAuth({ tenant: true }).field({
    type: [ApiKey],
    description: "This tenant's API keys, newest first; revoked ones only with includeRevoked: true.",
    args: { includeRevoked: t.arg.boolean({ defaultValue: false }) },
    resolve: (_root, args, ctx) =>
      ctx.services.tenants.listKeys(ctx.principal.tenant.id, { includeRevoked: args.includeRevoked ?? false }),
  }),
}))

builder.mutationFields((t) => ({
  updateTenantSettings: t.withAuth({ tenant: true }).field({
    type: Tenant,
    args: { input: t.arg({ type: TenantSettingsInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.tenants.updateSettings(ctx.principal.tenant.id, input),
  }),
  createApiKey: t.withAuth({ tenant: true }).field({
    type: CreatedApiKey,
    description: 'A new API key with a role; its secret is returned once.',
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.tenants.createKey(ctx.principal.tenant.id, input),
  }),
  revokeApiKey: t.withAuth({ tenant: true }).field({
    type: ApiKey,
    description:
      'Revokes a key at once, with its console sessions. Refuses (BAD_USER_INPUT) to revoke the last active ADMIN key.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.tenants.revokeKey(ctx.principal.tenant.id, String(id)),
  }),
}))
