/**
 * DEPRECATED: the hand-written guards, kept while schema files move to scope-auth
 * (`authScopes` on a field, schema/auth-scopes.ts). Same errors: both use the messages there.
 * Delete this file when nothing imports it.
 */
import type { GraphQLContext } from '../context.ts'
import type { Tenant } from '../db/types.ts'
import { AMOUNTS_ONLY, OTHER_CUSTOMER, TENANT_ONLY, unauthenticated } from '../schema/auth-scopes.ts'
import { userError } from '../shared/errors.ts'

/** The calling tenant, for operations only a tenant's secret key may perform. */
export function requireTenant(ctx: GraphQLContext): Tenant {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind !== 'tenant') throw userError('FORBIDDEN', TENANT_ONLY)
  return ctx.principal.tenant
}

/**
 * The tenant whose customer's data is read: a tenant key reads any of its customers; a widget
 * session reads only the customer it was issued for.
 */
export function requireCustomerReader(ctx: GraphQLContext, customerId: string): Tenant {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind === 'widget' && ctx.principal.customerId !== customerId) {
    throw userError('FORBIDDEN', OTHER_CUSTOMER)
  }
  return ctx.principal.tenant
}

/** For the fields that show how an amount was priced: see the priceDetails scope (schema/auth-scopes.ts). */
export function requirePriceDetails(ctx: GraphQLContext): void {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind === 'widget' && !ctx.principal.priceDetails) throw userError('FORBIDDEN', AMOUNTS_ONLY)
}

/** A field resolver that answers only callers allowed to see how amounts were priced (requirePriceDetails). */
export function priceDetail<Parent, Value>(get: (parent: Parent) => Value) {
  return (parent: Parent, _args: unknown, ctx: GraphQLContext): Value => {
    requirePriceDetails(ctx)
    return get(parent)
  }
}
