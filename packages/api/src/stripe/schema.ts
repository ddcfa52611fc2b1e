import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import type { StripeAlertEvent } from '../pubsub.ts'
import { stripeAlertStream } from '../subscriptions/streams.ts'
import type { StripeAccountRow, StripeInvoiceRow, StripePushRow } from './db-types.ts'
import type { CreditPushRow } from './repository/credit-pushes.ts'
import type { StripeSetupResult as StripeSetupResultShape } from './service.ts'
import type { ReconciliationRow } from './reconciliation.ts'

const StripeReportingMode = builder.enumType('StripeReportingMode', {
  values: {
    AMOUNT: { description: 'The billed amount, in units of 1/1000 of the minor currency unit, on one metered price.' },
    ITEMIZED: {
      description: 'The billed amount split by model and token type (meter dimensions `model`, `token_type`).',
    },
  } as const,
})
const StripePushStatus = builder.enumType('StripePushStatus', {
  values: ['PENDING', 'SENT', 'FAILED', 'EXPIRED', 'SUPERSEDED'] as const,
})

const StripeCreditPushStatus = builder.enumType('StripeCreditPushStatus', {
  values: {
    PENDING: { description: 'To be sent (or being retried after a transient error).' },
    SENT: {},
    FAILED: {
      description: 'Stripe refused it, or its attempts ran out (gaveUp): see lastError; retryStripeCreditPushes.',
    },
    CANCELLED: { description: 'Taken back before it was ever sent.' },
    SUPERSEDED: { description: 'FAILED, then retried: its customer and period were planned again.' },
  } as const,
})
const StripeCreditPushKind = builder.enumType('StripeCreditPushKind', {
  values: {
    GRANT: { description: 'A Stripe billing credit grant of what our credits paid.' },
    VOID: { description: 'Voids the grant of the push named by voids.' },
    TRUE_UP: { description: "An invoice item of a closed period's minimum-commitment true-up." },
  } as const,
})

const StripeCreditPush = builder.objectRef<CreditPushRow>('StripeCreditPush').implement({
  description:
    "A Stripe call that keeps Stripe's invoice equal to ours beyond metered usage, per customer and billing period (UTC month).",
  fields: (t) => ({
    identifier: t.exposeString('identifier'),
    customerId: t.exposeString('customer_id'),
    stripeCustomerId: t.exposeString('stripe_customer_id'),
    periodStart: t.field({ type: 'DateTime', resolve: (p) => p.period_start }),
    kind: t.field({ type: StripeCreditPushKind, resolve: (p) => p.kind }),
    category: t.string({
      nullable: true,
      description: 'GRANT and VOID: PAID or PROMOTIONAL.',
      resolve: (p) => p.category,
    }),
    amountMinor: t.field({
      type: 'Decimal',
      description: 'In minor currency units (cents).',
      resolve: (p) => String(p.amount_minor),
    }),
    voids: t.exposeString('voids', { nullable: true }),
    status: t.field({ type: StripeCreditPushStatus, resolve: (p) => p.status }),
    attempts: t.exposeInt('attempts'),
    lastError: t.exposeString('last_error', {
      nullable: true,
      description: "Stripe's answer to the last failed attempt (status, code, message).",
    }),
    gaveUp: t.exposeBoolean('gave_up', {
      description: 'Its attempts ran out at least once (Stripe kept answering with a transient error).',
    }),
    manualRetries: t.exposeInt('manual_retries'),
    stripeObjectId: t.string({
      nullable: true,
      description: 'The credit grant (GRANT, VOID) or invoice item (TRUE_UP) at Stripe.',
      resolve: (p) => p.stripe_grant_id,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (p) => p.created_at }),
    sentAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.sent_at }),
  }),
})

const StripeAlertType = builder.enumType('StripeAlertType', {
  description:
    'What a Stripe alert is about. Each value is delivered as the webhook event type its description starts with.',
  values: {
    USAGE_EXPIRED: {
      value: 'stripe.usage_expired',
      description: "stripe.usage_expired: a meter event's window is older than Stripe's 35 days; it will not be sent.",
    },
    PUSH_FAILED: {
      value: 'stripe.push_failed',
      description:
        'stripe.push_failed: Stripe refused a meter event, a meter error report named it, or its attempts ran out.',
    },
    CREDIT_PUSH_FAILED: {
      value: 'stripe.credit_push_failed',
      description:
        'stripe.credit_push_failed: Stripe refused a credit grant, grant void or minimum true-up call, or its attempts ran out.',
    },
  } as const,
})

/** A meter event alert's field (null on a credit push alert); creditField is the other way round. */
const meterField = <K extends 'windowStart' | 'windowEnd' | 'units' | 'model' | 'tokenType'>(
  e: StripeAlertEvent,
  k: K,
) => (e.type === 'stripe.credit_push_failed' ? null : (e[k] ?? null))
const creditField = <K extends 'kind' | 'category' | 'periodStart' | 'amountMinor' | 'gaveUp'>(
  e: StripeAlertEvent,
  k: K,
) => (e.type === 'stripe.credit_push_failed' ? e[k] : null)

const StripeAlert = builder.objectRef<StripeAlertEvent>('StripeAlert').implement({
  description:
    'A Stripe push that needs attention, with the fields of its webhook event (type and data). Meter event alerts (USAGE_EXPIRED, PUSH_FAILED) carry the window fields; credit push alerts (CREDIT_PUSH_FAILED) the credit fields; the others are null.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'One per alert: type, push identifier and, for a retried push, which retry.' }),
    type: t.field({ type: StripeAlertType, resolve: (e) => e.type }),
    at: t.field({
      type: 'DateTime',
      description: "When it was raised (the webhook event's created).",
      resolve: (e) => e.at,
    }),
    identifier: t.exposeString('identifier', {
      description: 'The push: stripePushes / retryStripePushes, or stripeCreditPushes / retryStripeCreditPushes.',
    }),
    customerId: t.exposeString('customerId'),
    stripeCustomerId: t.exposeString('stripeCustomerId'),
    reason: t.exposeString('reason', { description: "Why: Stripe's answer, or that the usage is too old." }),
    windowStart: t.field({ type: 'DateTime', nullable: true, resolve: (e) => meterField(e, 'windowStart') }),
    windowEnd: t.field({ type: 'DateTime', nullable: true, resolve: (e) => meterField(e, 'windowEnd') }),
    units: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'Reporting units (1/1000 of the minor currency unit) of the meter event; may be negative.',
      resolve: (e) => meterField(e, 'units'),
    }),
    model: t.string({
      nullable: true,
      description: "The meter event's model (ITEMIZED mode only).",
      resolve: (e) => meterField(e, 'model'),
    }),
    tokenType: t.string({
      nullable: true,
      description: "The meter event's token type (ITEMIZED mode only).",
      resolve: (e) => meterField(e, 'tokenType'),
    }),
    kind: t.field({ type: StripeCreditPushKind, nullable: true, resolve: (e) => creditField(e, 'kind') }),
    category: t.string({
      nullable: true,
      description: 'GRANT and VOID: PAID or PROMOTIONAL.',
      resolve: (e) => creditField(e, 'category'),
    }),
    periodStart: t.field({ type: 'DateTime', nullable: true, resolve: (e) => creditField(e, 'periodStart') }),
    amountMinor: t.field({
      type: 'Decimal',
      nullable: true,
      description: "The credit push's amount in minor currency units (cents).",
      resolve: (e) => creditField(e, 'amountMinor'),
    }),
    gaveUp: t.boolean({
      nullable: true,
      description:
        'Its attempts ran out (Stripe kept answering with a transient error), rather than Stripe refusing it.',
      resolve: (e) => creditField(e, 'gaveUp'),
    }),
  }),
})

const StripeAccount = builder.objectRef<StripeAccountRow>('StripeAccount').implement({
  description: "The tenant's Stripe Billing link. The secret key is never returned, only a hint.",
  fields: (t) => ({
    keyHint: t.exposeString('key_hint', {
      description: 'Kind and last four characters of the stored key, e.g. sk_test_…4242.',
    }),
    webhookSecretSet: t.boolean({
      description: 'A snapshot-destination signing secret is stored.',
      resolve: (a) => a.webhook_secret_enc !== null,
    }),
    thinWebhookSecretSet: t.boolean({
      description: 'A thin-destination signing secret is stored.',
      resolve: (a) => a.thin_webhook_secret_enc !== null,
    }),
    mode: t.field({ type: StripeReportingMode, resolve: (a) => a.mode }),
    currency: t.exposeString('currency'),
    unitsPerCurrencyUnit: t.field({
      type: 'Decimal',
      description: 'Reporting units per major currency unit (USD: 100000).',
      resolve: (a) => a.units_per_major,
    }),
    eventName: t.exposeString('event_name', { nullable: true }),
    meterId: t.exposeString('meter_id', { nullable: true }),
    productId: t.exposeString('product_id', { nullable: true }),
    priceId: t.exposeString('price_id', { nullable: true }),
    setupAt: t.field({ type: 'DateTime', nullable: true, resolve: (a) => a.setup_at }),
  }),
})

const StripeSetupResult = builder.objectRef<StripeSetupResultShape>('StripeSetupResult').implement({
  fields: (t) => ({
    account: t.field({ type: StripeAccount, resolve: (r) => r.account }),
    createdCustomers: t.exposeInt('createdCustomers', {
      description: 'Stripe customers created for customers without a stripeCustomerId.',
    }),
    backfilledEvents: t.int({
      description:
        'Priced events from backfillFrom on that this call queued for Stripe (0 when every one was already queued, e.g. on a second call).',
      resolve: (r) => r.backfill.events,
    }),
    backfilledCorrections: t.int({
      description: 'Corrections (repriceUsage) of those events that this call queued for Stripe.',
      resolve: (r) => r.backfill.corrections,
    }),
    backfillFrom: t.field({
      type: 'DateTime',
      description: 'Start of the backfill: usage that happened before it is not sent to Stripe.',
      resolve: (r) => r.backfill.from,
    }),
  }),
})

const StripePush = builder.objectRef<StripePushRow>('StripePush').implement({
  description: 'One meter event: the delta of one customer (and dimension) for one hourly window.',
  fields: (t) => ({
    identifier: t.exposeString('identifier'),
    customerId: t.exposeString('customer_id'),
    stripeCustomerId: t.exposeString('stripe_customer_id'),
    dimension: t.string({
      nullable: true,
      description: 'model|token_type in ITEMIZED mode.',
      resolve: (p) => p.dimension || null,
    }),
    windowStart: t.field({ type: 'DateTime', resolve: (p) => p.window_start }),
    value: t.field({ type: 'Decimal', description: 'Reporting units.', resolve: (p) => String(p.value) }),
    status: t.field({ type: StripePushStatus, resolve: (p) => p.status }),
    attempts: t.exposeInt('attempts'),
    lastError: t.exposeString('last_error', { nullable: true }),
    gaveUp: t.exposeBoolean('gave_up', {
      description:
        'FAILED because its attempts ran out (Stripe kept answering with a transient error), not because Stripe refused it.',
    }),
    sentAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.sent_at }),
    retryOf: t.exposeString('retry_of', { nullable: true }),
  }),
})

const StripeReconciliation = builder.objectRef<ReconciliationRow>('StripeReconciliation').implement({
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    stripeCustomerId: t.exposeString('stripeCustomerId', { nullable: true }),
    ledgerAmount: t.field({ type: 'Decimal', resolve: (r) => r.ledgerAmount }),
    billedAmount: t.field({
      type: 'Decimal',
      description: 'Billed amount queued for Stripe.',
      resolve: (r) => r.billedAmount,
    }),
    billedUnits: t.field({ type: 'Decimal', resolve: (r) => r.billedUnits }),
    reportedUnits: t.field({ type: 'Decimal', resolve: (r) => r.reportedUnits }),
    pendingUnits: t.field({ type: 'Decimal', resolve: (r) => r.pendingUnits }),
    failedUnits: t.field({ type: 'Decimal', resolve: (r) => r.failedUnits }),
    expiredUnits: t.field({ type: 'Decimal', resolve: (r) => r.expiredUnits }),
    unplannedUnits: t.field({ type: 'Decimal', resolve: (r) => r.unplannedUnits }),
    residueUnits: t.field({ type: 'Decimal', resolve: (r) => r.residueUnits }),
    stripeUnits: t.field({ type: 'Decimal', nullable: true, resolve: (r) => r.stripeUnits }),
    differences: t.stringList({ resolve: (r) => r.differences }),
  }),
})

const StripeInvoice = builder.objectRef<StripeInvoiceRow>('StripeInvoice').implement({
  fields: (t) => ({
    id: t.exposeString('invoice_id'),
    customerId: t.exposeString('customer_id', { nullable: true }),
    stripeCustomerId: t.exposeString('stripe_customer_id'),
    status: t.exposeString('status', { nullable: true }),
    currency: t.exposeString('currency', { nullable: true }),
    // Stripe totals are 64-bit: an Int (32-bit) fails to serialize past $21,474,836.47.
    total: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'In minor units, as Stripe reports it (a whole number as a decimal string; it may exceed 32 bits).',
      resolve: (i) => (i.total === null ? null : String(i.total)),
    }),
    periodStart: t.field({ type: 'DateTime', nullable: true, resolve: (i) => i.period_start }),
    periodEnd: t.field({ type: 'DateTime', nullable: true, resolve: (i) => i.period_end }),
    hostedInvoiceUrl: t.exposeString('hosted_invoice_url', { nullable: true }),
  }),
})

const StripeCredentialsInput = builder.inputType('StripeCredentialsInput', {
  fields: (t) => ({
    secretKey: t.string({
      required: true,
      description: 'sk_live_…/sk_test_… or a restricted key; stored encrypted, never returned.',
    }),
    webhookSecret: t.string({
      description:
        'The whsec_… signing secret of the snapshot-event destination (invoice.*) pointed at /webhooks/stripe?tenant=<tenant id>. Absent: unchanged; null or "": removed.',
    }),
    thinWebhookSecret: t.string({
      description:
        'The whsec_… signing secret of the thin-event destination (v1.billing.meter.error_report_triggered) pointed at the same URL. Absent: unchanged; null or "": removed.',
    }),
  }),
})

const StripeSetupInput = builder.inputType('StripeSetupInput', {
  fields: (t) => ({
    mode: t.field({ type: StripeReportingMode, description: 'Default AMOUNT.' }),
    createCustomers: t.boolean({
      description: 'Create a Stripe customer for every customer without a stripeCustomerId.',
    }),
    backfillFrom: t.field({
      type: 'DateTime',
      description:
        "Queue the tenant's usage (priced events and their corrections) that happened from this time on and is not queued yet. Default: the start of Stripe's 35-day window (earlier usage stays in the ledger only; reconciliation lists it). An earlier time queues older usage too, which Stripe refuses: it is listed by stripeExpiredUsage and alerted as stripe.usage_expired.",
    }),
  }),
})

const StripePushConnection = connection('StripePush', StripePush)
const StripeCreditPushConnection = connection('StripeCreditPush', StripeCreditPush)

builder.queryFields((t) => ({
  stripeAccount: t.field({
    type: StripeAccount,
    nullable: true,
    authScopes: { tenant: true },
    resolve: (_root, _args, ctx) => ctx.services.stripe.account(tenantOf(ctx).id).then((a) => a ?? null),
  }),
  stripePushes: t.field({
    type: [StripePush],
    description: 'Meter events by status, newest first: FAILED and EXPIRED ones are what needs attention.',
    args: { status: t.arg({ type: StripePushStatus }), customerId: t.arg.string(), first: t.arg.int() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.pushes(tenantOf(ctx).id, args),
  }),
  stripePushesPage: t.field({
    type: StripePushConnection,
    description:
      'Meter events in pages, newest first. Keyset pages on (createdAt, identifier): pushes added between pages never repeat or push others out of later pages; pass pageInfo.endCursor as after.',
    args: { status: t.arg({ type: StripePushStatus }), customerId: t.arg.string(), ...pageArgs(t.arg) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.pushPage(tenantOf(ctx).id, args),
  }),
  stripeCreditPushes: t.field({
    type: [StripeCreditPush],
    description:
      'Credit grant, grant void and minimum true-up calls by status, newest first (first 1-500, default 100): FAILED ones (with lastError) are what needs attention. Capped at `first`: to read more, page with stripeCreditPushesPage.',
    args: { status: t.arg({ type: StripeCreditPushStatus }), customerId: t.arg.string(), first: t.arg.int() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.creditPushes(tenantOf(ctx).id, args),
  }),
  stripeCreditPushesPage: t.field({
    type: StripeCreditPushConnection,
    description:
      'Credit grant, grant void and minimum true-up calls in pages, newest first. Keyset pages on (createdAt, identifier): pushes added between pages never repeat or push others out of later pages; pass pageInfo.endCursor as after.',
    args: { status: t.arg({ type: StripeCreditPushStatus }), customerId: t.arg.string(), ...pageArgs(t.arg) },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.creditPushPage(tenantOf(ctx).id, args),
  }),
  stripeExpiredUsage: t.field({
    type: [StripePush],
    description: "Usage that arrived after Stripe's 35-day window for its timestamp and could not be sent.",
    args: { first: t.arg.int() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.expiredUsage(tenantOf(ctx).id, args.first),
  }),
  stripeReconciliation: t.field({
    type: [StripeReconciliation],
    description:
      "Per customer: billed vs reported to Stripe vs Stripe's meter event summaries, for whole UTC hours [from, to).",
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      includeStripe: t.arg.boolean({ description: "Read Stripe's meter event summaries (default true)." }),
    },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) =>
      ctx.services.stripe.reconcile(tenantOf(ctx).id, args.from, args.to, {
        includeStripe: args.includeStripe ?? true,
      }),
  }),
  stripeInvoices: t.field({
    type: [StripeInvoice],
    args: { customerId: t.arg.string() },
    authScopes: { tenant: true },
    resolve: (_root, args, ctx) => ctx.services.stripe.invoices(tenantOf(ctx).id, args.customerId),
  }),
}))

builder.mutationFields((t) => ({
  setStripeCredentials: t.field({
    type: StripeAccount,
    args: { input: t.arg({ type: StripeCredentialsInput, required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) => ctx.services.stripe.setCredentials(tenantOf(ctx), input),
  }),
  setupStripeBilling: t.field({
    type: StripeSetupResult,
    description:
      'Creates (idempotently) the billing meter, product and metered price in the tenant’s Stripe account, then queues usage recorded before (from backfillFrom on) that is not queued yet. Safe to run again.',
    args: { input: t.arg({ type: StripeSetupInput }) },
    authScopes: { tenant: true },
    resolve: (_root, { input }, ctx) => ctx.services.stripe.setup(tenantOf(ctx), input ?? {}),
  }),
  retryStripePushes: t.field({
    type: [StripePush],
    description:
      'Re-sends FAILED pushes. One Stripe refused (or named in a meter error report) goes out under a new identifier (Stripe did not count it) and becomes SUPERSEDED; ' +
      'one that gave up after its attempts (Stripe may hold it) goes PENDING again under its own identifier, which Stripe de-duplicates, with a new Idempotency-Key.',
    args: { identifiers: t.arg.stringList({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { identifiers }, ctx) => ctx.services.stripe.retryPushes(tenantOf(ctx).id, identifiers),
  }),
  retryStripeCreditPushes: t.field({
    type: [StripeCreditPush],
    description:
      'Retries FAILED credit pushes, all or none. One that gave up after its attempts goes PENDING again under its own identifier (looked up at Stripe by metadata first, never made twice); ' +
      'one Stripe refused becomes SUPERSEDED and its customer and period are planned again from the ledger.',
    args: { identifiers: t.arg.stringList({ required: true }) },
    authScopes: { tenant: true },
    resolve: (_root, { identifiers }, ctx) => ctx.services.stripe.retryCreditPushes(tenantOf(ctx).id, identifiers),
  }),
}))

builder.subscriptionFields((t) => ({
  stripeAlerts: t.field({
    type: StripeAlert,
    description:
      "Stripe alerts as they are raised, once each, after the change that raised them committed: the tenant's stripe.usage_expired, stripe.push_failed and stripe.credit_push_failed webhook events (all customers, or one with customerId). Tenant keys only.",
    args: { customerId: t.arg.string() },
    authScopes: { tenant: true },
    subscribe: (_root, args, ctx) =>
      stripeAlertStream(ctx.services.pubsub, ctx.principal, args.customerId, ctx.services.clock.now()),
    resolve: (event) => event,
  }),
}))
