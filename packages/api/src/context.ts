import type { Services } from './services.ts'
import type { Loaders } from './loaders.ts'
import type { Tenant } from './db/types.ts'

/** Who is calling. Widget sessions (a later issue) add a customer-scoped kind. */
export type Principal = { kind: 'tenant'; tenant: Tenant }

export interface GraphQLContext {
  services: Services
  requestId: string
  principal: Principal | null
  loaders: Loaders
}
