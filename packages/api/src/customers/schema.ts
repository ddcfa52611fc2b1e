import type { Customer as CustomerRow } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { tenantOf } from '../schema/auth-scopes.ts'
import { builder } from '../schema/builder.ts'
import * as repo from './repository.ts'

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
      const tenant = ctx.principal.tenant
      if (input.id.length === 0 || input.id.length > 255) throw badInput('id must be 1-255 characters', 'input.id')
      if (input.name && input.name.length > 255) throw badInput('name is longer than 255 characters', 'input.name')
      if (input.stripeCustomerId && !/^cus_[A-Za-z0-9]{1,250}$/.test(input.stripeCustomerId)) {
        throw badInput('stripeCustomerId must look like a Stripe customer id (cus_…)', 'input.stripeCustomerId')
      }
      const customer = await repo.upsertCustomer(ctx.services.db, tenant.id, input)
      ctx.loaders.customer.clear(`${tenant.id}\u0001${input.id}`)
      return customer
    },
  }),
}))
