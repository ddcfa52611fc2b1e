import type { GraphQLContext } from '../context.ts'
import type { Tenant } from '../db/types.ts'
import { DomainError, userError } from '../shared/errors.ts'

const NO_KEY = 'A valid API key is required: send "Authorization: Bearer <key>".'

/** UNAUTHENTICATED, saying why when the context knows (an expired widget session). */
function unauthenticated(ctx: GraphQLContext): DomainError {
  const problem = ctx.credentialsProblem
  if (!problem) return userError('UNAUTHENTICATED', NO_KEY)
  return new DomainError('UNAUTHENTICATED', problem.message, undefined, { reason: problem.reason })
}

/** The calling tenant, for operations only a tenant's secret key may perform. */
export function requireTenant(ctx: GraphQLContext): Tenant {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind !== 'tenant') {
    throw userError('FORBIDDEN', "A widget session can only read its own customer's usage, budgets and alerts.")
  }
  return ctx.principal.tenant
}

/**
 * The tenant whose customer's data is read: a tenant key reads any of its customers; a widget
 * session reads only the customer it was issued for.
 */
export function requireCustomerReader(ctx: GraphQLContext, customerId: string): Tenant {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind === 'widget' && ctx.principal.customerId !== customerId) {
    throw userError('FORBIDDEN', 'This widget session belongs to another customer.')
  }
  return ctx.principal.tenant
}

/**
 * For the fields that show how an amount was priced (unit prices, catalog rows, the markup or
 * margin, the tenant's own cost): a widget session created with priceDetails: false sees the billed
 * amounts only, so an end customer cannot work out the tenant's provider prices or margin.
 * Tenant keys and default widget sessions pass.
 */
export function requirePriceDetails(ctx: GraphQLContext): void {
  if (!ctx.principal) throw unauthenticated(ctx)
  if (ctx.principal.kind === 'widget' && !ctx.principal.priceDetails) {
    throw userError(
      'FORBIDDEN',
      'This widget session shows billed amounts only: unit prices, catalog prices, the pricing plan and cost are hidden (createWidgetSession priceDetails: false).',
    )
  }
}

/** A field resolver that answers only callers allowed to see how amounts were priced (requirePriceDetails). */
export function priceDetail<Parent, Value>(get: (parent: Parent) => Value) {
  return (parent: Parent, _args: unknown, ctx: GraphQLContext): Value => {
    requirePriceDetails(ctx)
    return get(parent)
  }
}
