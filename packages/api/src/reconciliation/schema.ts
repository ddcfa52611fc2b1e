import { tenantOf } from '../schema/auth-scopes.ts'
import type { Decimal } from '../money/decimal.ts'
import type { ReconciliationAlertEvent } from '../pubsub.ts'
import { builder } from '../schema/builder.ts'
import type { ReportingProvider } from '../db/types.ts'
import type { CatalogChange, HourDifference, ReconciliationRow } from './reconcile.ts'
import { RECONCILIATION_STATUSES } from './reconcile.ts'
import type { AdminKeyView, ImportSummary, ReconciliationTable } from './types.ts'

const dec = (value: Decimal | null) => (value === null ? null : value.toFixed())

const ReportingProviderEnum = builder.enumType('ReportingProvider', {
  description: 'A provider whose usage and cost reports Burnrate imports to reconcile against.',
  values: {
    OPENAI: { value: 'openai', description: 'Organization Usage API (completions) and Costs API; an admin key.' },
    ANTHROPIC: { value: 'anthropic', description: 'Admin API usage report (messages) and cost report; an admin key.' },
    OPENROUTER: {
      value: 'openrouter',
      description: "Generation statistics of your OpenRouter events and the key's daily credit usage; an API key.",
    },
  } as const,
})

const ReconciliationStatusEnum = builder.enumType('ReconciliationStatus', {
  values: RECONCILIATION_STATUSES,
  description:
    'MATCHED: within the tolerance. UNMETERED: the provider reports more than Burnrate metered (revenue leakage). OVER_METERED: Burnrate metered more than the provider reports. PRICE_MISMATCH: quantities agree but cost differs (a catalog problem).',
})

const ProviderAdminKey = builder.objectRef<AdminKeyView>('ProviderAdminKey').implement({
  description: "A tenant's stored provider admin key for usage and cost reports: the key itself is never returned.",
  fields: (t) => ({
    provider: t.field({ type: ReportingProviderEnum, resolve: (k) => k.provider }),
    hint: t.exposeString('hint', { description: 'The last four characters.' }),
    updatedAt: t.field({ type: 'DateTime', resolve: (k) => k.updatedAt }),
    lastImportAt: t.field({ type: 'DateTime', nullable: true, resolve: (k) => k.lastImportAt }),
    lastImportError: t.exposeString('lastImportError', { nullable: true }),
  }),
})

const ProviderAdminKeyInput = builder.inputType('ProviderAdminKeyInput', {
  fields: (t) => ({
    provider: t.field({ type: ReportingProviderEnum, required: true }),
    apiKey: t.string({ required: true, description: 'Stored encrypted (AES-256-GCM); never returned.' }),
  }),
})

const ProviderImport = builder.objectRef<ImportSummary>('ProviderImport').implement({
  description: "One import of a provider's reports. Re-importing identical figures writes nothing.",
  fields: (t) => ({
    provider: t.field({ type: ReportingProviderEnum, resolve: (s) => s.provider }),
    from: t.field({ type: 'DateTime', resolve: (s) => s.from }),
    to: t.field({ type: 'DateTime', resolve: (s) => s.to }),
    buckets: t.exposeInt('buckets', { description: 'Provider buckets read.' }),
    inserted: t.exposeInt('inserted', { description: 'Buckets seen for the first time.' }),
    revised: t.exposeInt('revised', { description: 'Buckets whose figures changed, kept as a new revision.' }),
    unchanged: t.exposeInt('unchanged'),
    error: t.exposeString('error', { nullable: true, description: 'Why the import failed; nothing of it was stored.' }),
  }),
})

const ReconciliationHour = builder.objectRef<HourDifference>('ReconciliationHour').implement({
  description: 'An hour (UTC) whose provider-reported quantity differs from the metered one.',
  fields: (t) => ({
    hour: t.field({ type: 'DateTime', resolve: (h) => h.hour }),
    providerQuantity: t.field({ type: 'Decimal', resolve: (h) => h.providerQuantity.toFixed() }),
    ourQuantity: t.field({ type: 'Decimal', resolve: (h) => h.ourQuantity.toFixed() }),
    difference: t.field({ type: 'Decimal', resolve: (h) => h.difference.toFixed() }),
    unpricedEvents: t.exposeInt('unpricedEvents', { description: 'Our UNPRICED events of that hour and model.' }),
  }),
})

const ReconciliationPriceChange = builder.objectRef<CatalogChange>('ReconciliationPriceChange').implement({
  description: 'A catalog price of the model that opened or closed that day.',
  fields: (t) => ({
    usageType: t.exposeString('usageType'),
    kind: t.exposeString('kind', { description: 'OPENED or CLOSED.' }),
    at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
    unitPrice: t.field({ type: 'Decimal', resolve: (c) => c.unitPrice }),
    source: t.exposeString('source'),
  }),
})

const ReconciliationExplanation = builder.objectRef<ReconciliationRow>('ReconciliationExplanation').implement({
  description: 'Why a row differs, as far as the data allows.',
  fields: (t) => ({
    hours: t.field({ type: [ReconciliationHour], resolve: (r) => r.hours }),
    unpricedEvents: t.exposeInt('ourUnpricedEvents'),
    priceChanges: t.field({ type: [ReconciliationPriceChange], resolve: (r) => r.priceChanges }),
    notes: t.exposeStringList('notes'),
  }),
})

const ReconciliationRowRef = builder.objectRef<ReconciliationRow>('ReconciliationRow').implement({
  description: 'One provider, model, usage type and UTC day: what the provider reported beside what Burnrate metered.',
  fields: (t) => ({
    day: t.field({ type: 'DateTime', description: 'The UTC day, as its midnight.', resolve: (r) => r.day }),
    provider: t.exposeString('provider'),
    model: t.exposeString('model'),
    providerModels: t.exposeStringList('providerModels', { description: "The provider's own model names." }),
    usageType: t.exposeString('usageType', {
      description:
        'input (all input tokens, cached included), cache_read, cache_write, output, requests, …; total / credits: cost only.',
    }),
    providerQuantity: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.providerQuantity) }),
    ourQuantity: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.ourQuantity) }),
    quantityDifference: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'Provider minus ours.',
      resolve: (r) => dec(r.quantityDifference),
    }),
    quantityDifferencePercent: t.field({
      type: 'Decimal',
      nullable: true,
      description: "Of the provider's quantity.",
      resolve: (r) => dec(r.quantityDifferencePercent),
    }),
    providerCost: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.providerCost) }),
    ourCost: t.field({
      type: 'Decimal',
      nullable: true,
      description: "Burnrate's cost (catalog prices); UNPRICED events count nothing here.",
      resolve: (r) => dec(r.ourCost),
    }),
    costDifference: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.costDifference) }),
    costDifferencePercent: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.costDifferencePercent) }),
    ourEvents: t.exposeInt('ourEvents'),
    ourUnpricedEvents: t.exposeInt('ourUnpricedEvents'),
    status: t.field({ type: ReconciliationStatusEnum, resolve: (r) => r.status }),
    estimatedCost: t.field({ type: 'Decimal', nullable: true, resolve: (r) => dec(r.estimatedCost) }),
    estimatedBillableAmount: t.field({
      type: 'Decimal',
      nullable: true,
      description:
        "UNMETERED: what the missing usage would have billed at the tenant's default plan. Which customers made the calls is unknown.",
      resolve: (r) => dec(r.estimatedBillableAmount),
    }),
    explanation: t.field({ type: ReconciliationExplanation, resolve: (r) => r }),
  }),
})

const ProviderReconciliation = builder.objectRef<ReconciliationTable>('ProviderReconciliation').implement({
  fields: (t) => ({
    from: t.field({ type: 'DateTime', resolve: (r) => r.from }),
    to: t.field({ type: 'DateTime', resolve: (r) => r.to }),
    currency: t.exposeString('currency'),
    tolerancePercent: t.field({ type: 'Decimal', resolve: (r) => r.tolerancePercent }),
    rows: t.field({ type: [ReconciliationRowRef], resolve: (r) => r.rows }),
  }),
})

const ReconciliationAlertRef = builder.objectRef<ReconciliationAlertEvent>('ReconciliationAlert').implement({
  description: 'A day whose provider figures differ beyond the tolerance: raised once per provider, day and kind.',
  fields: (t) => ({
    id: t.exposeID('id'),
    provider: t.exposeString('provider'),
    day: t.field({ type: 'DateTime', resolve: (a) => a.day }),
    kind: t.field({ type: ReconciliationStatusEnum, resolve: (a) => a.kind as 'UNMETERED' }),
    models: t.exposeStringList('models'),
    usageTypes: t.exposeStringList('usageTypes'),
    costDifference: t.field({ type: 'Decimal', nullable: true, resolve: (a) => a.costDifference }),
    estimatedBillableAmount: t.field({ type: 'Decimal', nullable: true, resolve: (a) => a.estimatedBillableAmount }),
    raisedAt: t.field({ type: 'DateTime', resolve: (a) => a.raisedAt }),
  }),
})

const rangeArgs = (t: Parameters<Parameters<typeof builder.queryFields>[0]>[0]) => ({
  from: t.arg({ type: 'DateTime', required: true, description: 'Start of the first UTC day.' }),
  to: t.arg({ type: 'DateTime', required: true, description: 'End (exclusive); rounded up to a UTC midnight.' }),
  provider: t.arg({ type: ReportingProviderEnum }),
  onlyDifferences: t.arg.boolean({ description: 'Leave MATCHED rows out.' }),
})

builder.queryFields((t) => ({
  providerAdminKeys: t.field({
    type: [ProviderAdminKey],
    description: 'Provider admin keys Burnrate imports usage and cost reports with.',
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.reconciliation.adminKeys(tenantOf(ctx)),
  }),
  reconciliationTolerance: t.field({
    type: 'Decimal',
    description: 'Percent difference (of the larger side) still MATCHED. Default 1.',
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.reconciliation.tolerancePercent(tenantOf(ctx)),
  }),
  providerReconciliation: t.field({
    type: ProviderReconciliation,
    description:
      'Provider-reported usage and cost beside what Burnrate metered, per provider, model, usage type and UTC day.',
    args: rangeArgs(t),
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.reconciliation.reconciliation(tenantOf(ctx), args),
  }),
  providerReconciliationCsv: t.string({
    description: 'The same table as CSV (RFC 4180, one row per line, explanation in the last column), for finance.',
    args: rangeArgs(t),
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.reconciliation.reconciliationCsv(tenantOf(ctx), args),
  }),
  reconciliationAlerts: t.field({
    type: [ReconciliationAlertRef],
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.reconciliation.alerts(tenantOf(ctx), args.from, args.to),
  }),
}))

builder.mutationFields((t) => ({
  setProviderAdminKey: t.field({
    type: ProviderAdminKey,
    description:
      "Stores (or replaces) the admin key Burnrate reads a provider's usage and cost reports with (OpenAI: an admin key; Anthropic: an Admin API key; OpenRouter: an API key).",
    args: { input: t.arg({ type: ProviderAdminKeyInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) =>
      ctx.services.reconciliation.setAdminKey(tenantOf(ctx), input.provider as ReportingProvider, input.apiKey),
  }),
  deleteProviderAdminKey: t.boolean({
    description: 'Removes a provider admin key; imported figures stay. False when none was set.',
    args: { provider: t.arg({ type: ReportingProviderEnum, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { provider }, ctx) =>
      ctx.services.reconciliation.deleteAdminKey(tenantOf(ctx), provider as ReportingProvider),
  }),
  setReconciliationTolerance: t.field({
    type: 'Decimal',
    description: 'Sets the percent difference still MATCHED (0 to 100).',
    args: { percent: t.arg({ type: 'Decimal', required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { percent }, ctx) => ctx.services.reconciliation.setTolerancePercent(tenantOf(ctx), percent),
  }),
  importProviderUsage: t.field({
    type: [ProviderImport],
    description:
      'Imports provider usage and cost reports now (every provider with a key, or one), then raises alerts for complete days. Default range: RECONCILE_LOOKBACK_DAYS days back to now.',
    args: {
      provider: t.arg({ type: ReportingProviderEnum }),
      from: t.arg({ type: 'DateTime' }),
      to: t.arg({ type: 'DateTime' }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.reconciliation.importUsage(tenantOf(ctx), {
        provider: args.provider as ReportingProvider | null | undefined,
        from: args.from,
        to: args.to,
      }),
  }),
}))

builder.subscriptionFields((t) => ({
  reconciliationAlerts: t.field({
    type: ReconciliationAlertRef,
    description: 'Reconciliation alerts as they are raised (tenant keys only).',
    authScopes: { tenant: true },
    subscribe: (_root, _args, ctx) => ctx.services.pubsub.subscribe('reconciliationAlert', tenantOf(ctx).id),
    resolve: (event) => event,
  }),
}))
