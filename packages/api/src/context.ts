import type { Services } from './services.ts'
import type { Loaders } from './loaders.ts'
import type { ApiKeyRole, AuthMethod, Tenant } from './db/types.ts'

/** The API key behind a tenant principal. */
interface PrincipalKey {
  id: string
  name: string
  role: ApiKeyRole
}

/**
 * Who is calling: a tenant's secret key (everything for that tenant), or a short-lived widget
 * session token (read one customer's usage, budgets and alerts; subscribe to its alerts).
 */
export type Principal =
  | {
      kind: 'tenant'
      tenant: Tenant
      key: PrincipalKey
      /** BEARER: an Authorization header; SESSION: the console's cookie (mutations then need its CSRF token). */
      authMethod: AuthMethod
      /** With authMethod SESSION: whether the request sent the session's CSRF token (mutations need it). */
      csrfVerified?: boolean
    }
  | {
      kind: 'widget'
      tenant: Tenant
      customerId: string
      sessionId: string
      expiresAt: Date
      /** false: amounts only; unit prices, catalog rows, the plan and the tenant's cost are FORBIDDEN. */
      priceDetails: boolean
    }

export interface GraphQLContext {
  services: Services
  requestId: string
  principal: Principal | null
  /**
   * Why a bearer token gave no principal, when the caller can act on it (an expired widget session:
   * fetch a new token); UNAUTHENTICATED errors carry it.
   */
  credentialsProblem?: { reason: string; message: string }
  loaders: Loaders
}
