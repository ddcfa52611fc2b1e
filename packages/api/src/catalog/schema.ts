import { tenantOf } from '../schema/auth-scopes.ts'
import type { PriceTierJson, TimeWindowJson } from '../db/types.ts'
import { PUBLIC_SOURCES, type CatalogCorrection } from '@burnrate/catalog-sync'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import type { ChangeLogRow, FeedIssueRow, SourceStateRow, SyncRunRow } from './repository.ts'
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
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.catalog.providerPrices(tenantOf(ctx).id, { ...args, at: args.at ?? ctx.services.clock.now() }),
  }),
  priceHistory: t.field({
    type: [ModelPrice],
    description:
      "Every effective-dated row ever known for one model, oldest first: the public sources' and this tenant's own negotiated ones (negotiated: true). Other tenants' prices never appear.",
    args: {
      provider: t.arg.string({ required: true }),
      model: t.arg.string({ required: true }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.priceHistory(tenantOf(ctx).id, args),
  }),
}))

// ——— Sources, change log, held changes, conflicts and tenant overrides ———

const PriceChangeLogEntry = builder.objectRef<ChangeLogRow>('PriceChangeLogEntry').implement({
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
      resolve: (run, args, ctx) => ctx.services.catalog.runIssues(run, args),
    }),
  }),
})

export const CatalogSourceState = builder.objectRef<SourceStateRow>('CatalogSourceState').implement({
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
      resolve: (s, _args, ctx) => ctx.services.catalog.latestSyncRun(s.source),
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
      resolve: (s, _args, ctx) => ctx.services.catalog.syncRun(s.syncRunId),
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

const PriceChangeLogEntryConnection = connection('PriceChangeLogEntry', PriceChangeLogEntry)

builder.queryFields((t) => ({
  priceChangeLog: t.field({
    type: [PriceChangeLogEntry],
    description:
      "Applied catalog changes, newest first: public ones and this tenant's own negotiated prices. Page with `before` (an id).",
    args: { provider: t.arg.string(), model: t.arg.string(), first: t.arg.int(), before: t.arg.id() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.priceChangeLog(tenantOf(ctx).id, args),
  }),
  priceChangeLogPage: t.field({
    type: PriceChangeLogEntryConnection,
    description:
      "The price change log in Relay pages, newest first: public changes and this tenant's own negotiated prices. Pass pageInfo.endCursor as after.",
    args: { provider: t.arg.string(), model: t.arg.string(), ...pageArgs(t.arg, { defaultFirst: 100 }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.priceChangeLogPage(tenantOf(ctx).id, args),
  }),
  pendingPriceChanges: t.field({
    type: [PendingPriceChange],
    description: 'Public price changes held because they moved more than 10× in one sync.',
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.catalog.pendingChanges(),
  }),
  catalogConflicts: t.field({
    type: [CatalogConflict],
    description: 'Where public sources disagree about the price in force at `at` (default: now).',
    args: { at: t.arg({ type: 'DateTime' }) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.conflicts(args.at ?? ctx.services.clock.now()),
  }),
  catalogSources: t.field({
    type: [CatalogSourceState],
    description: 'Polling state of every price source: last success, consecutive failures and the last error.',
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.catalog.sourceStates(),
  }),
  catalogSyncRuns: t.field({
    type: [CatalogSyncRun],
    description: 'Syncs of public price sources, newest first. Page with `before` (an id).',
    args: { source: t.arg.string(), first: t.arg.int(), before: t.arg.id() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.syncRuns(args),
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
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.feedIssues(args),
  }),
  priceOverrides: t.field({
    type: [ModelPrice],
    description: "This tenant's negotiated prices (whole history), oldest first. Other tenants never see them.",
    args: { provider: t.arg.string(), model: t.arg.string() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.catalog.priceOverrides(tenantOf(ctx).id, args),
  }),
}))

builder.mutationFields((t) => ({
  setPriceOverride: t.field({
    type: [ModelPrice],
    description:
      "A negotiated price for this tenant only, in force from effectiveFrom (it replaces this tenant's earlier override of the usage type from then on). New events use it at once; events already priced since effectiveFrom are corrected by repriceUsage.",
    args: { input: t.arg({ type: PriceOverrideInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) => ctx.services.catalog.setPriceOverride(tenantOf(ctx).id, input),
  }),
  importPriceOverrides: t.field({
    type: [CatalogSyncResult],
    description:
      'Negotiated prices from a YAML or JSON document (`overrides: [{ tenant, provider, model, usageType, unitPrice, effectiveFrom, effectiveTo }]`); every entry must name this tenant.',
    args: { document: t.arg.string({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { document }, ctx) => ctx.services.catalog.importPriceOverrides(tenantOf(ctx).id, document),
  }),
  syncCatalogSource: t.field({
    type: CatalogSyncResult,
    description:
      'Syncs one public price source now (its configured URL), as the poller does, and records the run in catalogSources. The same as `catalog-sync --source <name>`, for a running API. Catalog admins only (CATALOG_ADMIN_TENANTS).',
    args: {
      source: t.arg.string({ required: true, description: `One of ${PUBLIC_SOURCES.join(', ')}.` }),
      dryRun: t.arg.boolean({ description: 'Only report what would change; nothing is written or recorded.' }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.catalog.syncSourceRequested(tenantOf(ctx).id, args.source, { dryRun: args.dryRun }),
  }),
  confirmPriceChange: t.field({
    type: PendingPriceChange,
    description: 'Applies a held public price change (from when it was observed).',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { id }, ctx) => ctx.services.catalog.decidePendingChange(tenantOf(ctx).id, id, 'CONFIRM'),
  }),
  rejectPriceChange: t.field({
    type: PendingPriceChange,
    description: 'Drops a held public price change; the catalog keeps the price in force.',
    args: { id: t.arg.id({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { id }, ctx) => ctx.services.catalog.decidePendingChange(tenantOf(ctx).id, id, 'REJECT'),
  }),
}))
