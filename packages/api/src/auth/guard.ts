import type { GraphQLContext } from '../context.ts'
import type { Tenant } from '../db/types.ts'
import { userError } from '../errors.ts'

/** The calling tenant; UNAUTHENTICATED without a valid key. */
export function requireTenant(ctx: GraphQLContext): Tenant {
  if (!ctx.principal) {
    throw userError('UNAUTHENTICATED', 'A valid API key is required: send "Authorization: Bearer <key>".')
  }
  return ctx.principal.tenant
}
