/** Prepaid credits in GraphQL: grants, balance, ledger, alerts, settings; resolvers call the credits service. */
import type { CreditAlertRow, CreditLedgerRow } from '../db/types.ts'
import type { CreditAlertEvent } from '../pubsub.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import { creditAlertStream } from '../subscriptions/streams.ts'
import { creditAlertEvent } from './alerts.ts'
import { CREDIT_LIMITS } from './input.ts'
import type { CreditBalanceView, GrantResult, GrantView } from './types.ts'

const CreditCategory = builder.enumType('CreditCategory', {
  values: ['PAID', 'PROMOTIONAL'] as const,
  description: 'PAID: bought by the customer (a top-up). PROMOTIONAL: given (a trial, a goodwill credit).',
})
const CreditGrantStatus = builder.enumType('CreditGrantStatus', {
  values: ['ACTIVE', 'PENDING', 'EXPIRED', 'DEPLETED'] as const,
  description: 'As of now: PENDING before effectiveAt, EXPIRED from expiresAt, DEPLETED when nothing is left.',
})
const CreditGrantSource = builder.enumType('CreditGrantSource', {
  values: ['MUTATION', 'STRIPE_CHECKOUT'] as const,
})
const CreditLedgerKind = builder.enumType('CreditLedgerKind', {
  values: ['GRANT', 'CONSUMPTION', 'EXPIRY', 'REVERSAL'] as const,
  description:
    'GRANT adds the granted amount; CONSUMPTION subtracts what an event (or a raised bill) drew; EXPIRY subtracts what was left at expiry; REVERSAL gives back what a lowered bill no longer needs.',
})
const CreditAlertKind = builder.enumType('CreditAlertKind', {
  values: ['LOW_BALANCE', 'ZERO_BALANCE'] as const,
})

const CreditScopeInput = builder.inputType('CreditScopeInput', {
  description: 'What a grant pays for: events whose model matches a glob, or whose feature is listed.',
  fields: (t) => ({
    models: t.stringList({ description: 'Globs on the canonical model: `*` matches anything (claude-sonnet-*).' }),
    features: t.stringList({ description: 'Event `feature` labels.' }),
  }),
})

const GrantCreditsInput = builder.inputType('GrantCreditsInput', {
  fields: (t) => ({
    customerId: t.string({ required: true }),
    amount: t.field({ type: 'Decimal', required: true, description: 'In the tenant currency; more than zero.' }),
    currency: t.string({ description: "Must be the tenant's billing currency (the default)." }),
    category: t.field({ type: CreditCategory, description: 'Default PAID.' }),
    priority: t.int({
      description: `0-100; lower is drawn first (then the soonest expiry, then the oldest grant). Default ${CREDIT_LIMITS.defaultPriority}.`,
    }),
    effectiveAt: t.field({
      type: 'DateTime',
      description: 'Pays for usage recorded (or billed later) from this time; default now.',
    }),
    expiresAt: t.field({
      type: 'DateTime',
      description:
        'Pays for usage recorded before this time; what is left then expires (an EXPIRY entry). Default never.',
    }),
    scope: t.field({ type: CreditScopeInput, description: 'Absent: all usage.' }),
    lowBalanceThreshold: t.field({
      type: 'Decimal',
      description: "A LOW_BALANCE alert when this grant's remaining amount falls to or below it.",
    }),
    description: t.string(),
    idempotencyKey: t.string({
      required: true,
      description: 'Your key for this top-up: sending it again returns the grant it made, and grants nothing more.',
    }),
  }),
})

const CreditScope = builder.objectRef<{ models?: string[]; features?: string[] }>('CreditScope').implement({
  fields: (t) => ({
    models: t.stringList({ resolve: (s) => s.models ?? [] }),
    features: t.stringList({ resolve: (s) => s.features ?? [] }),
  }),
})

const CreditGrant = builder.objectRef<GrantView>('CreditGrant').implement({
  fields: (t) => ({
    id: t.id({ resolve: (g) => g.row.id }),
    customerId: t.string({ resolve: (g) => g.row.customer_id }),
    amount: t.field({ type: 'Decimal', resolve: (g) => g.row.amount }),
    remaining: t.field({
      type: 'Decimal',
      description: 'What is left: the sum of the grant’s ledger entries.',
      resolve: (g) => g.row.remaining,
    }),
    currency: t.string({ resolve: (g) => g.row.currency }),
    category: t.field({ type: CreditCategory, resolve: (g) => g.row.category }),
    priority: t.int({ resolve: (g) => g.row.priority }),
    effectiveAt: t.field({ type: 'DateTime', resolve: (g) => g.row.effective_at }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (g) => g.row.expires_at }),
    scope: t.field({ type: CreditScope, nullable: true, description: 'null: all usage.', resolve: (g) => g.row.scope }),
    status: t.field({ type: CreditGrantStatus, resolve: (g) => g.status }),
    source: t.field({ type: CreditGrantSource, resolve: (g) => g.row.source }),
    lowBalanceThreshold: t.field({ type: 'Decimal', nullable: true, resolve: (g) => g.row.low_balance_threshold }),
    description: t.string({ nullable: true, resolve: (g) => g.row.description }),
    createdAt: t.field({ type: 'DateTime', resolve: (g) => g.row.created_at }),
  }),
})

const GrantCreditsResult = builder.objectRef<GrantResult>('GrantCreditsResult').implement({
  fields: (t) => ({
    grant: t.field({ type: CreditGrant, resolve: (r) => r.grant }),
    created: t.exposeBoolean('created', {
      description: 'false: this idempotencyKey made the grant before; nothing was granted now.',
    }),
  }),
})

const CreditBalance = builder.objectRef<CreditBalanceView>('CreditBalance').implement({
  description: "A customer's prepaid credits as of now (grants past their expiry are expired first).",
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    currency: t.exposeString('currency'),
    balance: t.field({
      type: 'Decimal',
      description: 'What effective, unexpired grants hold.',
      resolve: (b) => b.balance,
    }),
    reserved: t.field({
      type: 'Decimal',
      description: 'Held by active budget reservations (reserveBudget, the gateway).',
      resolve: (b) => b.reserved,
    }),
    available: t.field({
      type: 'Decimal',
      description: 'balance − reserved, never negative.',
      resolve: (b) => b.available,
    }),
    upcoming: t.field({ type: 'Decimal', description: 'Grants not effective yet.', resolve: (b) => b.upcoming }),
    lowBalanceThreshold: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'The customer’s low-balance threshold on the total (setCreditSettings).',
      resolve: (b) => b.lowBalanceThreshold,
    }),
    prepaidOnly: t.boolean({
      description: 'When true, checkBudget, reserveBudget and the gateway refuse usage the credits cannot pay for.',
      resolve: (b) => b.prepaidOnly,
    }),
    topUpUrl: t.string({
      nullable: true,
      description: 'Where the customer buys more credits (the tenant’s setCreditTopUpUrl).',
      resolve: (b) => b.topUpUrl,
    }),
    grants: t.field({
      type: [CreditGrant],
      description: 'In the order they are drawn: priority, then the soonest expiry, then the oldest.',
      resolve: (b) => b.grants,
    }),
  }),
})

const CreditLedgerEntry = builder.objectRef<CreditLedgerRow>('CreditLedgerEntry').implement({
  description: 'One append-only change of a grant’s remaining amount.',
  fields: (t) => ({
    id: t.id({ resolve: (e) => String(e.id) }),
    grantId: t.exposeString('grant_id'),
    customerId: t.exposeString('customer_id'),
    kind: t.field({ type: CreditLedgerKind, resolve: (e) => e.kind }),
    amount: t.field({
      type: 'Decimal',
      description: 'Signed: GRANT and REVERSAL add, CONSUMPTION and EXPIRY subtract.',
      resolve: (e) => e.amount,
    }),
    balanceAfter: t.field({
      type: 'Decimal',
      description: 'The grant’s remaining amount after this entry.',
      resolve: (e) => e.balance_after,
    }),
    eventId: t.exposeString('event_id', { nullable: true }),
    changeKey: t.exposeString('change_key', {
      nullable: true,
      description: 'For a billed change (late pricing, a correction): its key.',
    }),
    usageAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.usage_at }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.created_at }),
  }),
})

const CreditAlert = builder.objectRef<CreditAlertEvent>('CreditAlert').implement({
  description: 'A credit balance crossed a threshold downwards: raised once per crossing.',
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeString('customerId'),
    grantId: t.exposeString('grantId', {
      nullable: true,
      description: "null: the customer's total balance; else the grant whose own threshold was crossed.",
    }),
    kind: t.field({ type: CreditAlertKind, resolve: (a) => a.kind }),
    threshold: t.field({ type: 'Decimal', resolve: (a) => a.threshold }),
    balance: t.field({ type: 'Decimal', description: 'Right after the crossing.', resolve: (a) => a.balance }),
    triggeredAt: t.field({ type: 'DateTime', resolve: (a) => a.triggeredAt }),
  }),
})

const CreditSettingsInput = builder.inputType('CreditSettingsInput', {
  fields: (t) => ({
    customerId: t.string({ required: true }),
    lowBalanceThreshold: t.field({
      type: 'Decimal',
      description: 'A LOW_BALANCE alert when the total balance falls to or below it; null: none.',
    }),
  }),
})

const CreditSettings = builder
  .objectRef<{ customerId: string; lowBalanceThreshold: string | null }>('CreditSettings')
  .implement({
    fields: (t) => ({
      customerId: t.exposeString('customerId'),
      lowBalanceThreshold: t.field({ type: 'Decimal', nullable: true, resolve: (s) => s.lowBalanceThreshold }),
    }),
  })

const CreditLedgerConnection = connection('CreditLedgerEntry', CreditLedgerEntry)

builder.queryFields((t) => ({
  creditBalance: t.field({
    type: CreditBalance,
    args: { customerId: t.arg.string({ required: true }) },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: (_root, { customerId }, ctx) => ctx.services.credits.balance(tenantOf(ctx), customerId),
  }),
  creditLedger: t.field({
    type: CreditLedgerConnection,
    description: 'Newest first.',
    args: {
      customerId: t.arg.string({ required: true }),
      grantId: t.arg.string({ description: 'Only this grant’s entries.' }),
      ...pageArgs(t.arg),
    },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: (_root, args, ctx) => ctx.services.credits.ledger(tenantOf(ctx), args.customerId, args),
  }),
  creditAlerts: t.field({
    type: [CreditAlert],
    description: 'Newest first.',
    args: {
      customerId: t.arg.string({ required: true }),
      first: t.arg.int({
        description: `At most ${CREDIT_LIMITS.alertsMaxFirst}; default ${CREDIT_LIMITS.alertsDefaultFirst}.`,
      }),
    },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: async (_root, { customerId, first }, ctx) =>
      (await ctx.services.credits.alerts(tenantOf(ctx), customerId, first)).map((a: CreditAlertRow) =>
        creditAlertEvent(a),
      ),
  }),
}))

builder.mutationFields((t) => ({
  grantCredits: t.withAuth({ tenant: true }).field({
    type: GrantCreditsResult,
    description: 'Grants prepaid credits to a customer (a top-up), once per idempotencyKey.',
    args: { input: t.arg({ type: GrantCreditsInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.credits.grantCredits(ctx.principal.tenant, input),
  }),
  setCreditSettings: t.withAuth({ tenant: true }).field({
    type: CreditSettings,
    args: { input: t.arg({ type: CreditSettingsInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const row = await ctx.services.credits.setCreditSettings(ctx.principal.tenant, input)
      return { customerId: row.customer_id, lowBalanceThreshold: row.low_balance_threshold }
    },
  }),
  setCreditTopUpUrl: t.withAuth({ tenant: true }).field({
    type: 'String',
    nullable: true,
    description: 'Where the widget sends a customer to buy credits (https://…); null removes the link. Returns it.',
    args: { url: t.arg.string() },
    resolve: (_root, { url }, ctx) => ctx.services.credits.setTopUpUrl(ctx.principal.tenant, url ?? null),
  }),
}))

builder.subscriptionFields((t) => ({
  creditAlerts: t.field({
    type: CreditAlert,
    description:
      "Low- and zero-balance credit alerts as they trigger. A widget token sees only its own customer's; a tenant key may omit customerId.",
    args: { customerId: t.arg.string() },
    subscribe: (_root, args, ctx) =>
      creditAlertStream(ctx.services.pubsub, ctx.principal, args.customerId, ctx.services.clock.now()),
    resolve: (event) => event,
  }),
}))
