import { requireTenant } from '../auth/guard.ts'
import type { GraphQLContext } from '../context.ts'
import type { PriceTierJson, TimeWindowJson } from '../db/types.ts'
import {
  isPublicSource,
  OverrideError,
  PUBLIC_SOURCES,
  SourceError,
  type CatalogCorrection,
} from '@burnrate/catalog-sync'
import { badInput, userError } from '../shared/errors.ts'
import { builder } from '../schema/builder.ts'
import {
  latestSyncRuns,
  listCatalogConflicts,
  listFeedIssues,
  listSyncRuns,
  priceHistory,
  syncRunById,
  tenantPrices,
  type FeedIssueRow,
  type SyncRunRow,
} from './repository.ts'
import type { CatalogPrice, PendingChangeRow, SyncSummary } from './types.ts'

const PriceTier = builder.objectRef<PriceTierJson>('PriceTier').implement({
  description:
    'A long-context price: when the call’s total input tokens exceed aboveInputTokens, unitPrice applies to the whole line.',
  fields: (t) => ({
    aboveInputTokens: t.exposeInt('start'),
    unitPrice: t.field({ type: 'Decimal', resolve: (tier) => tier.unitPrice }),
  }),
})

function clockTime(secondOfDay: number): string {
  const hours = Math.floor(secondOfDay / 3600)
  const minutes = Math.floor((secondOfDay % 3600) / 60)
  const seconds = secondOfDay % 60
  const hhmm = `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}`
  return seconds === 0 ? hhmm : `${hhmm}:${String(seconds).padStart(2, '0')}`
}

/** "00:30–16:30 UTC"; a window whose end is before its start runs past midnight. */
export function formatTimeWindow(window: TimeWindowJson): string {
  return `${clockTime(window.startSecond)}–${clockTime(window.endSecond)} UTC`
}

export const ModelPrice = builder.objectRef<CatalogPrice>('ModelPrice').implement({
  description: 'One effective-dated catalog price: in force from effectiveFrom until effectiveTo (open when null).',
  fields: (t) => ({
    id: t.exposeID('id'),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usageType'),
    unit: t.exposeString('unit', {
      description: 'What one unitPrice buys: token, request, search, second, page or message.',
    }),
    unitPrice: t.field({
      type: 'Decimal',
      description: 'Price of one unit (one token, one image, …) in currency.',
      resolve: (price) => price.unitPrice,
    }),
    currency: t.exposeString('currency'),
    tiers: t.field({
      type: [PriceTier],
      nullable: true,
      description: 'Long-context tiers, lowest first; null when the price does not depend on context length.',
      resolve: (price) => price.tiers,
    }),
    timeWindow: t.string({
      nullable: true,
      description: 'Daily UTC window in which this price applies instead of the all-day one, e.g. "00:30–16:30 UTC".',
      resolve: (price) => (price.timeWindow ? formatTimeWindow(price.timeWindow) : null),
    }),
    effectiveFrom: t.field({ type: 'DateTime', resolve: (price) => price.effectiveFrom }),
    effectiveTo: t.field({ type: 'DateTime', nullable: true, resolve: (price) => price.effectiveTo }),
    source: t.exposeString('source'),
    negotiated: t.boolean({
      description:
        "True for the calling tenant's own negotiated price (an override), which replaces the public price of its usage type for this tenant only.",
      nullable: false,
      resolve: (price) => (price.tenantId ?? null) !== null,
    }),
  }),
})

const MAX_NAME_LENGTH = 255

function checkName(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null
  const trimmed = value.trim()
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_LENGTH)
    throw badInput(`${field} must be 1-${MAX_NAME_LENGTH} characters`, field)
  return trimmed
}

/**
 * The catalog ids for what the caller typed: aliases and dated names resolve like usage events
 * do (gpt-4o-2024-08-06 → openai/gpt-4o); a name no source knows is looked up as given (lowercased,
 * like every catalog id), so the answer is simply empty.
 */
async function catalogIds(
  ctx: GraphQLContext,
  provider: string | null,
  model: string | null,
  tenantId?: string,
): Promise<{ provider: string | null; model: string | null }> {
  if (model === null) return { provider: provider?.toLowerCase() ?? null, model: null }
  await ctx.services.catalog.ensureFresh()
  const resolved = ctx.services.catalog.resolve(model, provider, tenantId)
  return resolved ?? { provider: provider?.toLowerCase() ?? null, model: model.toLowerCase() }
}

builder.queryFields((t) => ({
  providerPrices: t.field({
    type: [ModelPrice],
    description:
      "Prices in force at `at` (default: now) as this tenant is billed: its own negotiated prices (negotiated: true) replace the public ones usage type by usage type. Other tenants' prices never appear.",
    args: {
      provider: t.arg.string(),
      model: t.arg.string(),
      at: t.arg({ type: 'DateTime' }),
    },
    resolve: async (_root, args, ctx) => {
      const tenant = requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'), tenant.id)
      return ctx.services.catalog.listPricesAt({ ...ids, at: args.at ?? ctx.services.clock.now(), tenantId: tenant.id })
    },
  }),
  priceHistory: t.field({
    type: [ModelPrice],
    description:
      "Every effective-dated row ever known for one model, oldest first: the public sources' and this tenant's own negotiated ones (negotiated: true). Other tenants' prices never appear.",
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
    },
    resolve: async (_root, args, ctx) => {
      const tenant = requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'), tenant.id)
      return priceHistory(ctx.services.db, ids.provider!, ids.model!, tenant.id)
    },
  }),
}))

// ——— Sources, change log, held changes, conflicts and tenant overrides ———

interface ChangeLogEntry {
  id: number
  tenant_id: string | null
  provider: string
  model: string
  usage_type: string
  old_unit_price: string | null
  new_unit_price: string | null
  effective_from: Date
  source: string
  source_version: string
  price_id: number | null
  changed_at: Date
}

const PriceChangeLogEntry = builder.objectRef<ChangeLogEntry>('PriceChangeLogEntry').implement({
  description:
    'One applied catalog change: a price opened (oldUnitPrice null for a new model), changed, or withdrawn (newUnitPrice null).',
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usage_type'),
    oldUnitPrice: t.field({ type: 'Decimal', nullable: true, resolve: (e) => e.old_unit_price }),
    newUnitPrice: t.field({ type: 'Decimal', nullable: true, resolve: (e) => e.new_unit_price }),
    effectiveFrom: t.field({ type: 'DateTime', resolve: (e) => e.effective_from }),
    source: t.exposeString('source'),
    sourceVersion: t.exposeString('source_version'),
    priceId: t.id({ nullable: true, resolve: (e) => (e.price_id === null ? null : String(e.price_id)) }),
    negotiated: t.boolean({
      description: "True for the tenant's own negotiated price.",
      resolve: (e) => e.tenant_id !== null,
    }),
    changedAt: t.field({ type: 'DateTime', resolve: (e) => e.changed_at }),
  }),
})

const PendingPriceChange = builder.objectRef<PendingChangeRow>('PendingPriceChange').implement({
  description: 'A price that moved more than 10× in one sync: held, not applied, until confirmed or rejected.',
  fields: (t) => ({
    id: t.id({ resolve: (p) => String(p.id) }),
    source: t.exposeString('source'),
    sourceVersion: t.exposeString('source_version'),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usage_type'),
    oldUnitPrice: t.field({ type: 'Decimal', resolve: (p) => p.old_unit_price }),
    newUnitPrice: t.field({ type: 'Decimal', resolve: (p) => p.new_unit_price }),
    observedAt: t.field({ type: 'DateTime', resolve: (p) => p.observed_at }),
    status: t.exposeString('status', {
      description: 'PENDING, CONFIRMED or REJECTED (also when a later sync no longer states the move).',
    }),
  }),
})

interface ConflictView {
  provider: string
  model: string
  usageType: string
  usedSource: string
  prices: CatalogPrice[]
}

const CatalogConflict = builder.objectRef<ConflictView>('CatalogConflict').implement({
  description:
    'Two or more sources price the same provider, model and usage type differently. They are never merged: usedSource prices events.',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usageType'),
    usedSource: t.exposeString('usedSource'),
    prices: t.field({ type: [ModelPrice], resolve: (c) => c.prices }),
  }),
})

const CatalogFeedIssueKind = builder.enumType('CatalogFeedIssueKind', {
  description:
    'REJECTED: an invalid value (malformed, negative or variable, missing); the model keeps the price in force. SKIPPED: stated but not representable (an unknown unit, a documentation entry, an alias).',
  values: ['REJECTED', 'SKIPPED'] as const,
})

const CatalogFeedIssue = builder.objectRef<FeedIssueRow>('CatalogFeedIssue').implement({
  description: 'Something a price feed stated that became no catalog row, with why. Stored once per feed version.',
  fields: (t) => ({
    id: t.id({ resolve: (i) => String(i.id) }),
    syncRunId: t.id({
      description: 'The first sync run that saw this feed version.',
      resolve: (i) => String(i.sync_run_id),
    }),
    source: t.exposeString('source'),
    sourceVersion: t.exposeString('source_version'),
    kind: t.field({ type: CatalogFeedIssueKind, resolve: (i) => i.kind }),
    model: t.exposeString('model', {
      description: 'The model as the feed names it (an OpenRouter id, a LiteLLM key).',
    }),
    field: t.exposeString('field', {
      nullable: true,
      description: 'The feed field; null when the whole entry is meant.',
    }),
    rawValue: t.exposeString('raw_value', {
      nullable: true,
      description: 'What the feed wrote there, as JSON text (at most 200 characters).',
    }),
    reason: t.exposeString('reason'),
  }),
})

const MAX_ISSUE_PAGE = 500

function issuePage(first: number | null | undefined): number {
  const size = first ?? 100
  if (size < 1 || size > MAX_ISSUE_PAGE) throw badInput(`first must be 1-${MAX_ISSUE_PAGE}`, 'first')
  return size
}

function idArg(value: string | number | null | undefined, field: string): number | null {
  if (value === null || value === undefined) return null
  if (!/^[1-9]\d{0,14}$/.test(String(value))) throw badInput(`${field} must be an id from this list`, field)
  return Number(value)
}

const CatalogSyncRun = builder.objectRef<SyncRunRow>('CatalogSyncRun').implement({
  description: 'One sync of a whole public price source (a poll, syncSource or the CLI) and what it did.',
  fields: (t) => ({
    id: t.id({ resolve: (r) => String(r.id) }),
    source: t.exposeString('source'),
    sourceVersion: t.exposeString('source_version'),
    observedAt: t.field({
      type: 'DateTime',
      description: 'Prices the source states no date for apply from here.',
      resolve: (r) => r.observed_at,
    }),
    finishedAt: t.field({ type: 'DateTime', resolve: (r) => r.finished_at }),
    models: t.exposeInt('models'),
    rowsOpened: t.exposeInt('rows_opened'),
    rowsClosed: t.exposeInt('rows_closed'),
    unchanged: t.exposeInt('unchanged'),
    held: t.exposeInt('held'),
    rejected: t.exposeInt('rejected', { description: 'Invalid values refused; each is in issues (kind REJECTED).' }),
    skipped: t.exposeInt('skipped', { description: 'Stated but not representable; each is in issues (kind SKIPPED).' }),
    issues: t.field({
      type: [CatalogFeedIssue],
      description: 'What this run’s feed version stated that became no row, in id order. Page with `after` (an id).',
      args: { kind: t.arg({ type: CatalogFeedIssueKind }), first: t.arg.int(), after: t.arg.id() },
      resolve: (run, args, ctx) =>
        listFeedIssues(ctx.services.db, {
          source: run.source,
          sourceVersion: run.source_version,
          kind: args.kind,
          after: idArg(args.after, 'after'),
          limit: issuePage(args.first),
        }),
    }),
  }),
})

interface SourceStateView {
  source: string
  last_attempt_at: Date | null
  last_success_at: Date | null
  next_attempt_at: Date
  failures: number
  last_error: string | null
}

const CatalogSourceState = builder.objectRef<SourceStateView>('CatalogSourceState').implement({
  description:
    'How polling a price source went: a failing source leaves the catalog as it was and is retried with backoff.',
  fields: (t) => ({
    source: t.exposeString('source'),
    lastAttemptAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.last_attempt_at }),
    lastSuccessAt: t.field({ type: 'DateTime', nullable: true, resolve: (s) => s.last_success_at }),
    nextAttemptAt: t.field({ type: 'DateTime', resolve: (s) => s.next_attempt_at }),
    consecutiveFailures: t.exposeInt('failures'),
    lastError: t.exposeString('last_error', { nullable: true }),
    lastSyncRun: t.field({
      type: CatalogSyncRun,
      nullable: true,
      description: 'The latest recorded sync of this source, with its rejected and skipped feed entries.',
      resolve: async (s, _args, ctx) => (await latestSyncRuns(ctx.services.db, [s.source])).get(s.source) ?? null,
    }),
  }),
})

const PriceOverrideInput = builder.inputType('PriceOverrideInput', {
  fields: (t) => ({
    provider: t.string({ required: true }),
    model: t.string({ required: true, description: 'Any name events use: aliases resolve to the canonical model.' }),
    usageType: t.string({
      required: true,
      description: 'input, output, cache_read, cache_write, reasoning, requests, web_searches, …',
    }),
    unitPrice: t.field({
      type: 'Decimal',
      required: true,
      description: 'Price of one unit (one token, one request, …).',
    }),
    effectiveFrom: t.field({
      type: 'DateTime',
      required: true,
      description: 'May be in the past: events since then can be corrected with repriceUsage.',
    }),
    effectiveTo: t.field({ type: 'DateTime' }),
  }),
})

const PastPriceCorrection = builder.objectRef<CatalogCorrection>('PastPriceCorrection').implement({
  description:
    'A sync changed an already-billed past price: the source stated an earlier start date. Events since `from` keep their price until repriceUsage runs.',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    usageType: t.exposeString('usageType'),
    timeWindow: t.string({ nullable: true, resolve: (c) => (c.timeWindow ? formatTimeWindow(c.timeWindow) : null) }),
    from: t.field({ type: 'DateTime', resolve: (c) => c.from }),
  }),
})

const CatalogSyncResult = builder.objectRef<SyncSummary>('CatalogSyncResult').implement({
  fields: (t) => ({
    source: t.exposeString('source'),
    sourceVersion: t.exposeString('sourceVersion'),
    models: t.exposeInt('models'),
    rowsOpened: t.exposeInt('rowsOpened'),
    rowsClosed: t.exposeInt('rowsClosed'),
    unchanged: t.exposeInt('unchanged'),
    held: t.exposeInt('held'),
    rejected: t.int({
      description: 'Invalid values refused (each kept as a CatalogFeedIssue).',
      resolve: (s) => s.rejected.length,
    }),
    skipped: t.exposeInt('skipped', {
      description: 'Entries stated but not representable (each kept as a CatalogFeedIssue).',
    }),
    syncRun: t.field({
      type: CatalogSyncRun,
      nullable: true,
      description: 'The recorded run; null for a dry run and for negotiated prices.',
      resolve: async (s, _args, ctx) =>
        s.syncRunId ? ((await syncRunById(ctx.services.db, s.syncRunId)) ?? null) : null,
    }),
    corrections: t.field({
      type: [PastPriceCorrection],
      nullable: false,
      description:
        'Past prices this sync corrected from a start date the source stated (run repriceUsage for events since then).',
      resolve: (s) => s.corrections,
    }),
  }),
})

const MAX_PAGE = 500

function pageSize(first: number | null | undefined): number {
  const size = first ?? 100
  if (size < 1 || size > MAX_PAGE) throw badInput(`first must be 1-${MAX_PAGE}`, 'first')
  return size
}

function requireCatalogAdmin(ctx: GraphQLContext) {
  const tenant = requireTenant(ctx)
  if (!ctx.services.config.CATALOG_ADMIN_TENANTS.includes(tenant.id)) {
    throw userError(
      'FORBIDDEN',
      'The public catalog can only be changed by a tenant listed in CATALOG_ADMIN_TENANTS, or by the operator with the CLI (`catalog-sync confirm <id>`, `catalog-sync reject <id>`, `catalog-sync --source <name>`).',
    )
  }
  return tenant
}

builder.queryFields((t) => ({
  priceChangeLog: t.field({
    type: [PriceChangeLogEntry],
    description:
      "Applied catalog changes, newest first: public ones and this tenant's own negotiated prices. Page with `before` (an id).",
    args: { provider: t.arg.string(), model: t.arg.string(), first: t.arg.int(), before: t.arg.id() },
    resolve: async (_root, args, ctx) => {
      const tenant = requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'))
      let query = ctx.services.db
        .selectFrom('price_change_log')
        .selectAll()
        .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenant.id)]))
      if (ids.provider) query = query.where('provider', '=', ids.provider)
      if (ids.model) query = query.where('model', '=', ids.model)
      if (args.before) {
        if (!/^\d{1,15}$/.test(String(args.before))) throw badInput('before must be an id from this log', 'before')
        query = query.where('id', '<', Number(args.before))
      }
      return query.orderBy('id', 'desc').limit(pageSize(args.first)).execute()
    },
  }),
  pendingPriceChanges: t.field({
    type: [PendingPriceChange],
    description: 'Public price changes held because they moved more than 10× in one sync.',
    resolve: async (_root, _args, ctx) => {
      requireTenant(ctx)
      return ctx.services.db
        .selectFrom('catalog_pending_changes')
        .selectAll()
        .where('status', '=', 'PENDING')
        .orderBy('id')
        .execute()
    },
  }),
  catalogConflicts: t.field({
    type: [CatalogConflict],
    description: 'Where public sources disagree about the price in force at `at` (default: now).',
    args: { at: t.arg({ type: 'DateTime' }) },
    resolve: async (_root, args, ctx) => {
      requireTenant(ctx)
      return listCatalogConflicts(ctx.services.db, args.at ?? ctx.services.clock.now())
    },
  }),
  catalogSources: t.field({
    type: [CatalogSourceState],
    description: 'Polling state of every price source: last success, consecutive failures and the last error.',
    resolve: async (_root, _args, ctx) => {
      requireTenant(ctx)
      return ctx.services.db.selectFrom('catalog_source_state').selectAll().orderBy('source').execute()
    },
  }),
  catalogSyncRuns: t.field({
    type: [CatalogSyncRun],
    description: 'Syncs of public price sources, newest first. Page with `before` (an id).',
    args: { source: t.arg.string(), first: t.arg.int(), before: t.arg.id() },
    resolve: async (_root, args, ctx) => {
      requireTenant(ctx)
      return listSyncRuns(ctx.services.db, {
        source: checkName(args.source, 'source'),
        before: idArg(args.before, 'before'),
        limit: pageSize(args.first),
      })
    },
  }),
  catalogFeedIssues: t.field({
    type: [CatalogFeedIssue],
    description:
      'Every value a public price feed stated that became no catalog row (rejected or skipped), with source, model, field, raw value and reason, in id order. Filter by source or sync run; page with `after` (an id).',
    args: {
      source: t.arg.string(),
      syncRunId: t.arg.id(),
      kind: t.arg({ type: CatalogFeedIssueKind }),
      first: t.arg.int(),
      after: t.arg.id(),
    },
    resolve: async (_root, args, ctx) => {
      requireTenant(ctx)
      const runId = idArg(args.syncRunId, 'syncRunId')
      const run = runId === null ? null : await syncRunById(ctx.services.db, runId)
      if (runId !== null && !run) throw userError('NOT_FOUND', 'no such sync run', 'syncRunId')
      const source = checkName(args.source, 'source')
      if (run && source && run.source !== source) return []
      return listFeedIssues(ctx.services.db, {
        source: run?.source ?? source,
        sourceVersion: run?.source_version,
        kind: args.kind,
        after: idArg(args.after, 'after'),
        limit: issuePage(args.first),
      })
    },
  }),
  priceOverrides: t.field({
    type: [ModelPrice],
    description: "This tenant's negotiated prices (whole history), oldest first. Other tenants never see them.",
    args: { provider: t.arg.string(), model: t.arg.string() },
    resolve: async (_root, args, ctx) => {
      const tenant = requireTenant(ctx)
      const ids = await catalogIds(ctx, checkName(args.provider, 'provider'), checkName(args.model, 'model'))
      return tenantPrices(ctx.services.db, tenant.id, ids)
    },
  }),
}))

builder.mutationFields((t) => ({
  setPriceOverride: t.field({
    type: [ModelPrice],
    description:
      "A negotiated price for this tenant only, in force from effectiveFrom (it replaces this tenant's earlier override of the usage type from then on). New events use it at once; events already priced since effectiveFrom are corrected by repriceUsage.",
    args: { input: t.arg({ type: PriceOverrideInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const tenant = requireTenant(ctx)
      const provider = checkName(input.provider, 'input.provider')!
      const model = checkName(input.model, 'input.model')!
      let result
      try {
        result = await ctx.services.catalog.setOverride(tenant.id, {
          ...input,
          provider,
          model,
          unitPrice: String(input.unitPrice),
        })
      } catch (error) {
        if (error instanceof OverrideError) throw badInput(error.message, `input.${error.field}`)
        throw error
      }
      return tenantPrices(ctx.services.db, tenant.id, result)
    },
  }),
  importPriceOverrides: t.field({
    type: [CatalogSyncResult],
    description:
      'Negotiated prices from a YAML or JSON document (`overrides: [{ tenant, provider, model, usageType, unitPrice, effectiveFrom, effectiveTo }]`); every entry must name this tenant.',
    args: { document: t.arg.string({ required: true }) },
    resolve: async (_root, { document }, ctx) => {
      const tenant = requireTenant(ctx)
      if (document.length > 1_000_000) throw badInput('document must be at most 1 MB', 'document')
      try {
        return await ctx.services.catalog.applyOverridesFile(document, { tenantId: tenant.id })
      } catch (error) {
        if (error instanceof OverrideError) throw badInput(error.message, 'document')
        if (error instanceof SourceError) throw badInput(error.message, 'document')
        throw error
      }
    },
  }),
  syncCatalogSource: t.field({
    type: CatalogSyncResult,
    description:
      'Syncs one public price source now (its configured URL), as the poller does, and records the run in catalogSources. The same as `catalog-sync --source <name>`, for a running API. Catalog admins only (CATALOG_ADMIN_TENANTS).',
    args: {
      source: t.arg.string({ required: true, description: `One of ${PUBLIC_SOURCES.join(', ')}.` }),
      dryRun: t.arg.boolean({ description: 'Only report what would change; nothing is written or recorded.' }),
    },
    resolve: async (_root, args, ctx) => {
      requireCatalogAdmin(ctx)
      if (!isPublicSource(args.source)) throw badInput(`source must be one of ${PUBLIC_SOURCES.join(', ')}`, 'source')
      try {
        return await ctx.services.catalog.syncSourceRecorded(args.source, { dryRun: args.dryRun ?? false })
      } catch (error) {
        // The feed failed (HTTP error, timeout, malformed, a changed schema): nothing changed, the run is in catalogSources.
        if (error instanceof SourceError)
          throw badInput(
            `${args.source} failed (${error.kind}); the catalog is unchanged for it: ${error.message}`,
            'source',
          )
        throw error
      }
    },
  }),
  confirmPriceChange: t.field({
    type: PendingPriceChange,
    description: 'Applies a held public price change (from when it was observed).',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      requireCatalogAdmin(ctx)
      if (!/^\d{1,15}$/.test(String(id))) throw badInput('no such pending price change', 'id')
      const resolved = await ctx.services.catalog.resolvePendingChange(Number(id), 'CONFIRM')
      if (!resolved) throw userError('NOT_FOUND', 'no such pending price change', 'id')
      return resolved
    },
  }),
  rejectPriceChange: t.field({
    type: PendingPriceChange,
    description: 'Drops a held public price change; the catalog keeps the price in force.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      requireCatalogAdmin(ctx)
      if (!/^\d{1,15}$/.test(String(id))) throw badInput('no such pending price change', 'id')
      const resolved = await ctx.services.catalog.resolvePendingChange(Number(id), 'REJECT')
      if (!resolved) throw userError('NOT_FOUND', 'no such pending price change', 'id')
      return resolved
    },
  }),
}))
