/**
 * Who may call what, declared once: the scopes of @pothos/plugin-scope-auth and the one place that
 * turns a refused scope into the contract's UNAUTHENTICATED / FORBIDDEN error (a DomainError, mapped
 * by schema/errors.ts like any other). Fields say `authScopes: { tenant: true }`,
 * `authScopes: (_root, args) => ({ customer: args.customerId })` or `authScopes: { priceDetails: true }`.
 */
import type { AuthFailure, ForbiddenResult } from '@pothos/plugin-scope-auth'
import type { GraphQLContext, Principal } from '../context.ts'
import type { Tenant } from '../db/types.ts'
import { DomainError, userError } from '../shared/errors.ts'

/** The scopes a field may require, with the parameter each takes. */
export interface AuthScopes {
  /** A tenant's secret key: everything for that tenant. Widget sessions are FORBIDDEN. */
  tenant: boolean
  /** Reads this customer's data: a tenant key (any of its customers) or a widget session issued for it. */
  customer: string
  /**
   * Sees how amounts were priced (unit prices, catalog rows, the markup or margin, the tenant's own
   * cost): a widget session created with priceDetails: false sees billed amounts only, so an end
   * customer cannot work out the tenant's provider prices or margin. Tenant keys pass.
   */
  priceDetails: boolean
}

type WithPrincipal<P extends Principal> = GraphQLContext & { principal: P }

/** The context a resolver sees behind each scope (`t.withAuth({ tenant: true })` narrows to it). */
export interface AuthContexts {
  tenant: WithPrincipal<Extract<Principal, { kind: 'tenant' }>>
  customer: WithPrincipal<Principal>
  priceDetails: WithPrincipal<Principal>
}

const NO_KEY = 'A valid API key is required: send "Authorization: Bearer <key>".'
const TENANT_ONLY = "A widget session can only read its own customer's usage, budgets and alerts."
const OTHER_CUSTOMER = 'This widget session belongs to another customer.'
const AMOUNTS_ONLY =
  'This widget session shows billed amounts only: unit prices, catalog prices, the pricing plan and cost are hidden (createWidgetSession priceDetails: false).'

/** The scope checks for one request (the plugin caches each result per request). */
export function authScopes(ctx: GraphQLContext) {
  const p = ctx.principal
  return {
    tenant: p?.kind === 'tenant',
    customer: (customerId: string) => p !== null && (p.kind === 'tenant' || p.customerId === customerId),
    priceDetails: p !== null && (p.kind === 'tenant' || p.priceDetails),
  }
}

/** UNAUTHENTICATED, saying why when the context knows (an expired widget session). */
function unauthenticated(ctx: GraphQLContext): DomainError {
  const problem = ctx.credentialsProblem
  if (!problem) return userError('UNAUTHENTICATED', NO_KEY)
  return new DomainError('UNAUTHENTICATED', problem.message, undefined, { reason: problem.reason })
}

/** The scope a failure names first (the first one refused, inside $any / $all too). */
function refusedScope(failure: AuthFailure): string | undefined {
  if (failure.kind === 'AuthScope') return failure.scope
  if (failure.kind === 'AnyAuthScopes' || failure.kind === 'AllAuthScopes') {
    for (const f of failure.failures) {
      const scope = refusedScope(f)
      if (scope) return scope
    }
  }
  return undefined
}

/** The plugin's unauthorizedError: the same codes, messages and `reason` the hand-written guards gave. */
export function unauthorizedError(ctx: GraphQLContext, result: ForbiddenResult): DomainError {
  if (!ctx.principal) return unauthenticated(ctx)
  switch (refusedScope(result.failure)) {
    case 'customer':
      return userError('FORBIDDEN', OTHER_CUSTOMER)
    case 'priceDetails':
      return userError('FORBIDDEN', AMOUNTS_ONLY)
    default:
      return userError('FORBIDDEN', TENANT_ONLY)
  }
}

/** The tenant behind a request that passed a scope (every scope requires a principal). */
export function tenantOf(ctx: GraphQLContext): Tenant {
  if (!ctx.principal) throw unauthenticated(ctx)
  return ctx.principal.tenant
}
