/**
 * The audit entries of mutations whose domains change money or configuration deep inside their own
 * machinery (the catalog writer, re-pricing batches, Stripe and provider clients, webhook
 * endpoints): the mutation guard reads the entity before the change, runs the mutation, and records
 * who, what, before and after once it has committed (audit.recordCommitted). Budgets, pricing plans,
 * API keys and tenant settings record in their own transactions instead (their services).
 *
 * Secrets never appear: fields named like a secret or key material are dropped (redact).
 */
import type { GraphQLContext } from '../context.ts'
import { tenantOf } from './auth-scopes.ts'

type Args = Record<string, unknown>

export interface AuditedMutation {
  action: string
  entityType: string
  entityId: (args: Args, result: unknown) => string | null
  /** The entity before the change (read before the mutation runs); absent: null (it is created). */
  before?: (args: Args, ctx: GraphQLContext) => Promise<unknown>
  /** The entity after; absent: the mutation's result. */
  after?: (args: Args, result: unknown) => unknown
}

const SECRET_FIELD = /secret|apikey|api_key|password|token|signing/i

/** A copy without secret-looking fields (at any depth). */
function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact)
  if (value instanceof Date) return value
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k]) => !SECRET_FIELD.test(k))
        .map(([k, v]) => [k, redact(v)]),
    )
  return value
}

const input = (args: Args) => (args.input ?? {}) as Record<string, unknown>
const str = (v: unknown) => (v == null ? null : String(v))

const endpointBefore = async (args: Args, ctx: GraphQLContext) =>
  (await ctx.services.webhooks.listEndpoints(tenantOf(ctx))).find((e) => String(e.id) === String(args.id)) ?? null
const providerKeyBefore = async (provider: unknown, ctx: GraphQLContext) =>
  (await ctx.services.gateway.providerKeys(tenantOf(ctx))).find((k) => k.provider === provider) ?? null
const adminKeyBefore = async (provider: unknown, ctx: GraphQLContext) =>
  (await ctx.services.reconciliation.adminKeys(tenantOf(ctx))).find((k) => k.provider === provider) ?? null
const overrideRows = async (i: Record<string, unknown>, ctx: GraphQLContext) =>
  (
    await ctx.services.catalog.priceOverrides(tenantOf(ctx).id, { provider: str(i.provider), model: str(i.model) })
  ).filter((p) => i.usageType == null || p.usageType === i.usageType)

export const AUDITED_MUTATIONS: Readonly<Record<string, AuditedMutation>> = {
  setPriceOverride: {
    action: 'priceOverride.set',
    entityType: 'PriceOverride',
    entityId: (args) => `${str(input(args).provider)}/${str(input(args).model)}/${str(input(args).usageType)}`,
    before: (args, ctx) => overrideRows(input(args), ctx),
  },
  importPriceOverrides: {
    action: 'priceOverride.import',
    entityType: 'PriceOverride',
    entityId: () => null,
    after: (_args, result) => ({ summaries: result }),
  },
  confirmPriceChange: {
    action: 'priceChange.confirm',
    entityType: 'PendingPriceChange',
    entityId: (args) => str(args.id),
    before: async (args, ctx) =>
      (await ctx.services.catalog.pendingChanges()).find((c) => String(c.id) === String(args.id)) ?? null,
  },
  rejectPriceChange: {
    action: 'priceChange.reject',
    entityType: 'PendingPriceChange',
    entityId: (args) => str(args.id),
    before: async (args, ctx) =>
      (await ctx.services.catalog.pendingChanges()).find((c) => String(c.id) === String(args.id)) ?? null,
  },
  repriceUsage: {
    action: 'usage.reprice',
    entityType: 'UsageCorrection',
    entityId: (args) => `${str(args.provider) ?? ''}/${str(args.model)}`,
    after: (args, result) => ({ request: args, result }),
  },
  createWebhookEndpoint: {
    action: 'webhookEndpoint.create',
    entityType: 'WebhookEndpoint',
    entityId: (_args, result) => str((result as { endpoint?: { id?: unknown } })?.endpoint?.id),
  },
  updateWebhookEndpoint: {
    action: 'webhookEndpoint.update',
    entityType: 'WebhookEndpoint',
    entityId: (args) => str(args.id),
    before: endpointBefore,
  },
  rotateWebhookSecret: {
    action: 'webhookEndpoint.rotateSecret',
    entityType: 'WebhookEndpoint',
    entityId: (args) => str(args.id),
    before: endpointBefore,
  },
  disableWebhookEndpoint: {
    action: 'webhookEndpoint.disable',
    entityType: 'WebhookEndpoint',
    entityId: (args) => str(args.id),
    before: endpointBefore,
  },
  setStripeCredentials: {
    action: 'stripe.setCredentials',
    entityType: 'StripeAccount',
    entityId: () => null,
    before: async (_args, ctx) => (await ctx.services.stripe.account(tenantOf(ctx).id)) ?? null,
  },
  setupStripeBilling: {
    action: 'stripe.setup',
    entityType: 'StripeAccount',
    entityId: () => null,
    before: async (_args, ctx) => (await ctx.services.stripe.account(tenantOf(ctx).id)) ?? null,
  },
  retryStripeCreditPushes: {
    action: 'stripeCreditPush.retry',
    entityType: 'StripeCreditPush',
    entityId: (args) => (args.identifiers as string[]).join(','),
    before: async (args, ctx) => {
      const wanted = new Set(args.identifiers as string[])
      return (await ctx.services.stripe.creditPushes(tenantOf(ctx).id, { status: 'FAILED', first: 500 })).filter((p) =>
        wanted.has(p.identifier),
      )
    },
  },
  setProviderKey: {
    action: 'providerKey.set',
    entityType: 'GatewayProviderKey',
    entityId: (args) => str(input(args).provider),
    before: (args, ctx) => providerKeyBefore(input(args).provider, ctx),
  },
  deleteProviderKey: {
    action: 'providerKey.delete',
    entityType: 'GatewayProviderKey',
    entityId: (args) => str(args.provider),
    before: (args, ctx) => providerKeyBefore(args.provider, ctx),
    after: () => null,
  },
  setProviderAdminKey: {
    action: 'providerAdminKey.set',
    entityType: 'ProviderAdminKey',
    entityId: (args) => str(input(args).provider),
    before: (args, ctx) => adminKeyBefore(input(args).provider, ctx),
  },
  deleteProviderAdminKey: {
    action: 'providerAdminKey.delete',
    entityType: 'ProviderAdminKey',
    entityId: (args) => str(args.provider),
    before: (args, ctx) => adminKeyBefore(args.provider, ctx),
    after: () => null,
  },
  setReconciliationTolerance: {
    action: 'reconciliation.setTolerance',
    entityType: 'ReconciliationTolerance',
    entityId: () => null,
    before: async (_args, ctx) => ({ percent: await ctx.services.reconciliation.tolerancePercent(tenantOf(ctx)) }),
    after: (_args, result) => ({ percent: result }),
  },
}

/** Runs a mutation's resolver between reading `before` and recording the entry (after it committed). */
export async function runAudited(
  spec: AuditedMutation,
  args: Args,
  ctx: GraphQLContext,
  resolve: () => unknown,
): Promise<unknown> {
  const before = spec.before ? await spec.before(args, ctx) : null
  const result = await resolve()
  await ctx.services.audit.recordCommitted({
    tenantId: tenantOf(ctx).id,
    action: spec.action,
    entityType: spec.entityType,
    entityId: spec.entityId(args, result),
    before: redact(before),
    after: redact(spec.after ? spec.after(args, result) : result),
  })
  return result
}
