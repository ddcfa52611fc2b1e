import type { Customer as CustomerRow } from '../db/types.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'

export const Customer = builder.objectRef<CustomerRow>('Customer').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    name: t.exposeString('name', { nullable: true }),
    stripeCustomerId: t.exposeString('stripe_customer_id', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.created_at }),
  }),
})

const CustomerInput = builder.inputType('CustomerInput', {
  fields: (t) => ({
    id: t.string({ required: true }),
    name: t.string(),
    stripeCustomerId: t.string(),
  }),
})

builder.queryFields((t) => ({
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
