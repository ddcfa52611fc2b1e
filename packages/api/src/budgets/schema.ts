import type { BudgetReservationRow } from '../db/types.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { BudgetAlertRef } from '../subscriptions/schema.ts'
import { FORECAST_MIN_ELAPSED_SHARE, remainingOf } from './evaluate.ts'
import { alertEvent } from './alerts.ts'
import { BUDGET_LIMITS } from './input.ts'
import type { BudgetCheckView, BudgetView, ReservationResult } from './types.ts'

export const BudgetPeriod = builder.enumType('BudgetPeriod', {
  values: ['DAY', 'WEEK', 'MONTH'] as const,
  description:
    "Calendar periods in the budget's time zone (UTC unless set): DAY from midnight, WEEK from Monday (ISO), MONTH from the 1st.",
})

const BudgetInput = builder.inputType('BudgetInput', {
  description: 'One budget per customer and period: setting it again updates the limit, thresholds and hard limit.',
  fields: (t) => ({
    customerId: t.string({ required: true }),
    period: t.field({ type: BudgetPeriod, required: true }),
    limit: t.field({
      type: 'Decimal',
      required: true,
      description: 'In the billed currency, on the billed amount (after markup or margin).',
    }),
    thresholds: t.intList({ description: 'Percentages of limit that raise an alert; default [50, 80, 100].' }),
    hardLimit: t.boolean({ description: 'When true, checkBudget denies usage once the limit is reached.' }),
    forecastAlerts: t.boolean({
      description:
        'When true, a FORECAST alert is raised once per period when the projected spend first passes the limit. Default false (only the thresholds alert); left out on an update, unchanged.',
    }),
    timeZone: t.string({
      description:
        "IANA time zone of the periods (Europe/Paris); default the tenant's budgetTimeZone. Changing it restarts counting at the current period, seeded from the ledger.",
    }),
  }),
})

const Budget = builder.objectRef<BudgetView>('Budget').implement({
  fields: (t) => ({
    id: t.id({ resolve: (b) => b.row.id }),
    customerId: t.string({ resolve: (b) => b.row.customer_id }),
    period: t.field({ type: BudgetPeriod, resolve: (b) => b.row.period }),
    timeZone: t.string({ resolve: (b) => b.row.time_zone }),
    currency: t.string({ resolve: (b) => b.row.currency }),
    limit: t.field({ type: 'Decimal', resolve: (b) => b.row.limit_amount }),
    thresholds: t.intList({ resolve: (b) => b.row.thresholds }),
    hardLimit: t.boolean({ resolve: (b) => b.row.hard_limit }),
    forecastAlerts: t.boolean({
      description: 'Whether FORECAST alerts are raised (opt-in).',
      resolve: (b) => b.row.forecast_alerts,
    }),
    periodStart: t.field({ type: 'DateTime', resolve: (b) => b.periodStart }),
    periodEnd: t.field({ type: 'DateTime', resolve: (b) => b.periodEnd }),
    spent: t.field({
      type: 'Decimal',
      description: 'Billed amount of the current period (events counted by their own timestamp).',
      resolve: (b) => b.spent,
    }),
    remaining: t.field({
      type: 'Decimal',
      description: 'limit − spent, never negative.',
      resolve: (b) => remainingOf(b.row.limit_amount, b.spent).toFixed(),
    }),
    reserved: t.field({
      type: 'Decimal',
      description:
        "Held by the customer's active reservations (reserveBudget): not spent yet, but counted by hard limits.",
      resolve: (b) => b.reserved,
    }),
    forecast: t.field({
      type: 'Decimal',
      description: `Projected spend at period end at the current burn rate: spent × period length ÷ elapsed time, with elapsed counted as at least ${FORECAST_MIN_ELAPSED_SHARE * 100} % of the period.`,
      resolve: (b) => b.forecast,
    }),
  }),
})

builder.objectFields(BudgetAlertRef, (t) => ({
  forecast: t.field({
    type: 'Decimal',
    nullable: true,
    description:
      'FORECAST alerts: the projected spend at period end that first exceeded the limit; null for THRESHOLD alerts.',
    resolve: (e) => e.forecast ?? null,
  }),
}))

const CreditCheck = builder.objectRef<NonNullable<BudgetCheckView['credits']>>('CreditCheck').implement({
  description: "A prepaid-only customer's credits, as the hard stop counts them.",
  fields: (t) => ({
    balance: t.field({ type: 'Decimal', resolve: (c) => c.balance }),
    available: t.field({
      type: 'Decimal',
      description: 'balance − active reservations, never negative.',
      resolve: (c) => c.available,
    }),
    allowed: t.exposeBoolean('allowed', { description: 'false when the credits cannot pay for the estimate.' }),
  }),
})

const BudgetCheck = builder.objectRef<BudgetCheckView>('BudgetCheck').implement({
  fields: (t) => ({
    allowed: t.exposeBoolean('allowed', {
      description: 'false when spent + reserved + the estimate would pass a hard limit.',
    }),
    remaining: t.field({
      type: 'Decimal',
      nullable: true,
      description:
        "What may still be spent under the customer's tightest budget (limit − spent − reserved, never negative); null without budgets.",
      resolve: (c) => c.remaining,
    }),
    budget: t.field({
      type: Budget,
      nullable: true,
      description: 'The hard limit that denied, else the tightest budget.',
      resolve: (c) => c.budget,
    }),
    credits: t.field({
      type: CreditCheck,
      nullable: true,
      description: "When the customer's plan is prepaid-only: its credits, which must pay for the estimate too.",
      resolve: (c) => c.credits,
    }),
  }),
})

const BudgetReservation = builder.objectRef<BudgetReservationRow>('BudgetReservation').implement({
  description:
    'An estimated amount held against hard limits before a model call; recording the event with its id settles it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeString('customer_id'),
    amount: t.field({ type: 'Decimal', resolve: (r) => r.amount }),
    expiresAt: t.field({ type: 'DateTime', resolve: (r) => r.expires_at }),
    settledAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.settled_at }),
    settledEventId: t.exposeString('settled_event_id', { nullable: true }),
  }),
})

const ReserveBudgetResult = builder.objectRef<ReservationResult>('ReserveBudgetResult').implement({
  fields: (t) => ({
    granted: t.exposeBoolean('granted'),
    reservation: t.field({
      type: BudgetReservation,
      nullable: true,
      description: 'null when not granted.',
      resolve: (r) => r.reservation,
    }),
    remaining: t.field({
      type: 'Decimal',
      nullable: true,
      description: 'As in BudgetCheck, after this reservation when granted.',
      resolve: (r) => r.check.remaining,
    }),
    budget: t.field({
      type: Budget,
      nullable: true,
      description: 'The hard limit that denied, else the tightest budget.',
      resolve: (r) => r.check.budget,
    }),
    credits: t.field({
      type: CreditCheck,
      nullable: true,
      description: 'As in BudgetCheck (after this reservation when granted).',
      resolve: (r) => r.check.credits,
    }),
  }),
})

builder.queryFields((t) => ({
  budgets: t.field({
    type: [Budget],
    args: { customerId: t.arg.string({ required: true }) },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: (_root, { customerId }, ctx) => ctx.services.budgets.budgets(tenantOf(ctx), customerId),
  }),
  budgetAlerts: t.field({
    type: [BudgetAlertRef],
    description: 'Newest first.',
    args: {
      customerId: t.arg.string({ required: true }),
      first: t.arg.int({
        description: `At most ${BUDGET_LIMITS.alertsMaxFirst}; default ${BUDGET_LIMITS.alertsDefaultFirst}.`,
      }),
    },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: async (_root, { customerId, first }, ctx) =>
      (await ctx.services.budgets.alerts(tenantOf(ctx), customerId, first)).map(alertEvent),
  }),
  checkBudget: t.field({
    type: BudgetCheck,
    args: {
      customerId: t.arg.string({ required: true }),
      estimatedAmount: t.arg({
        type: 'Decimal',
        description: 'What the next call may cost; absent: may anything more be spent?',
      }),
    },
    authScopes: (_root, { customerId }) => ({ customer: customerId }),
    resolve: (_root, { customerId, estimatedAmount }, ctx) =>
      ctx.services.budgets.check(tenantOf(ctx), customerId, estimatedAmount),
  }),
}))

builder.mutationFields((t) => ({
  setBudget: t.withAuth({ tenant: true }).field({
    type: Budget,
    args: { input: t.arg({ type: BudgetInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.budgets.setBudget(ctx.principal.tenant, input),
  }),
  deleteBudget: t.withAuth({ tenant: true }).field({
    type: 'ID',
    description:
      'Deletes a budget with its spend counters and its alerts (the audit log keeps it as it was); returns its id. NOT_FOUND when the tenant has no such budget.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.budgets.deleteBudget(ctx.principal.tenant, String(id)),
  }),
  reserveBudget: t.withAuth({ tenant: true }).field({
    type: ReserveBudgetResult,
    description:
      "Holds an estimated amount against the customer's hard limits before a model call, atomically: concurrent reservations never overcommit. " +
      'Record the event with reservationId to settle it; unused, it expires after ttlSeconds.',
    args: {
      customerId: t.arg.string({ required: true }),
      amount: t.arg({ type: 'Decimal', required: true }),
      ttlSeconds: t.arg.int({
        description: `1-${BUDGET_LIMITS.reservationMaxTtlSeconds}; default ${BUDGET_LIMITS.reservationDefaultTtlSeconds}.`,
      }),
    },
    resolve: (_root, args, ctx) => ctx.services.budgets.reserve(ctx.principal.tenant, args),
  }),
  releaseBudgetReservation: t.withAuth({ tenant: true }).field({
    type: BudgetReservation,
    nullable: true,
    description:
      'Ends a reservation unused (the call was not made). null when it was already settled, released or unknown.',
    args: { id: t.arg.string({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.budgets.release(ctx.principal.tenant, id),
  }),
}))
