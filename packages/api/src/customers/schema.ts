import { BudgetPeriod } from '../budgets/schema.ts'
import type { BudgetUse as BudgetUseView } from '../budgets/types.ts'
import type { Customer as CustomerRow } from '../db/types.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import { connection, pageArgs } from '../schema/pagination.ts'
import { CUSTOMER_LIMITS, type CustomerFigures as CustomerFiguresView } from './service.ts'

const BudgetUse = builder.objectRef<BudgetUseView>('BudgetUse').implement({
  description: "The customer's budget nearest its limit, in its current period.",
  fields: (t) => ({
    budgetId: t.exposeID('budgetId'),
    period: t.field({ type: BudgetPeriod, resolve: (u) => u.period }),
    spent: t.field({ type: 'Decimal', resolve: (u) => u.spent }),
    limit: t.field({ type: 'Decimal', resolve: (u) => u.limit }),
    percent: t.field({
      type: 'Decimal',
      description: 'spent / limit × 100, 2 decimal places.',
      resolve: (u) => u.percent,
    }),
  }),
})

export const CustomerFigures = builder.objectRef<CustomerFiguresView>('CustomerFigures').implement({
  description: "A customer's usage over a period, read from the hourly rollups (re-pricing corrections included).",
  fields: (t) => ({
    customerId: t.exposeString('customerId'),
    periodStart: t.field({ type: 'DateTime', resolve: (f) => f.periodStart }),
    periodEnd: t.field({ type: 'DateTime', resolve: (f) => f.periodEnd }),
    events: t.exposeInt('events'),
    unpricedEvents: t.exposeInt('unpricedEvents'),
    cost: t.field({ type: 'Decimal', description: 'What the providers charge the tenant.', resolve: (f) => f.cost }),
    amount: t.field({ type: 'Decimal', description: 'Billed to the customer.', resolve: (f) => f.amount }),
    margin: t.field({ type: 'Decimal', description: 'amount − cost.', resolve: (f) => f.margin }),
    budgetUse: t.field({
      type: BudgetUse,
      nullable: true,
      description: 'null: no budget.',
      resolve: (f) => f.budgetUse,
    }),
  }),
})

export const Customer = builder.objectRef<CustomerRow>('Customer').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name', { nullable: true }),
    stripeCustomerId: t.exposeString('stripe_customer_id', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.created_at }),
    thisMonth: t.field({
      type: CustomerFigures,
      description:
        "This UTC calendar month: events, cost, billed amount, margin and budget use. Tenant keys only (cost and margin are the tenant's).",
      authScopes: { tenant: true },
      resolve: (c, _args, ctx) => ctx.loaders.customerMonth.load(`${c.tenant_id}\u0001${c.id}`),
    }),
  }),
})

const CustomerConnection = connection('Customer', Customer)

const CustomerInput = builder.inputType('CustomerInput', {
  fields: (t) => ({
    id: t.string({ required: true }),
    name: t.string(),
    stripeCustomerId: t.string(),
  }),
})

builder.queryFields((t) => ({
  customers: t.withAuth({ tenant: true }).field({
    type: CustomerConnection,
    description: "The tenant's customers in id order; search: those whose id or name contains it (case-insensitive).",
    args: {
      search: t.arg.string({ description: `At most ${CUSTOMER_LIMITS.searchMaxLength} characters.` }),
      ...pageArgs(t.arg),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.customers.list(ctx.principal.tenant, args.search, { first: args.first, after: args.after }),
  }),
  topCustomers: t.withAuth({ tenant: true }).field({
    type: [CustomerFigures],
    description:
      'The customers billed most over [from, to), most first, read from hourly rollups: from is rounded down and to up to the UTC hour.',
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      first: t.arg.int({ description: `At most ${CUSTOMER_LIMITS.topMax}; default ${CUSTOMER_LIMITS.topDefault}.` }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.customers.top(ctx.principal.tenant, { from: args.from, to: args.to }, args.first),
  }),
  customer: t.field({
    type: Customer,
    nullable: true,
    args: { id: t.arg.string({ required: true }) },
    authScopes: (_root, { id }) => ({ customer: id }),
    resolve: (_root, { id }, ctx) => ctx.loaders.customer.load(`${tenantOf(ctx).id}\u0001${id}`),
  }),
}))

builder.mutationFields((t) => ({
  upsertCustomer: t.withAuth({ tenant: true }).field({
    type: Customer,
    args: { input: t.arg({ type: CustomerInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const customer = await ctx.services.customers.upsert(ctx.principal.tenant, input)
      ctx.loaders.customer.clear(`${customer.tenant_id}\u0001${customer.id}`)
      return customer
    },
  }),
}))
