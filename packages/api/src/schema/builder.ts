/**
 * The one Pothos builder: context type, scalars and plugins. Domain folders add their types to it
 * from their schema.ts. Access is declared with scope-auth (schema/auth-scopes.ts); lists that grow
 * are Relay connections built with schema/pagination.ts.
 */
import SchemaBuilder from '@pothos/core'
import RelayPlugin from '@pothos/plugin-relay'
import ScopeAuthPlugin from '@pothos/plugin-scope-auth'
import type { GraphQLContext } from '../context.ts'
import { authScopes, unauthorizedError, type AuthContexts, type AuthScopes } from './auth-scopes.ts'
import { DateTimeScalar, DecimalScalar, JSONScalar } from './scalars.ts'

export interface SchemaTypes {
  Context: GraphQLContext
  // Fields are non-null unless they say otherwise, as in the contract.
  DefaultFieldNullability: false
  DefaultEdgesNullability: { list: false; items: false }
  DefaultNodeNullability: false
  AuthScopes: AuthScopes
  AuthContexts: AuthContexts
  Scalars: {
    Decimal: { Input: string; Output: string }
    DateTime: { Input: Date; Output: Date | string }
    JSON: { Input: unknown; Output: unknown }
  }
}

export const builder = new SchemaBuilder<SchemaTypes>({
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, RelayPlugin],
  scopeAuth: {
    authScopes,
    unauthorizedError: (_parent, ctx, _info, result) => unauthorizedError(ctx, result),
    // Subscriptions check their scopes when they start, as queries do before resolving.
    authorizeOnSubscribe: true,
  },
  relay: {
    // No global object identification: ids stay the tenant's own; only connections are used.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    cursorType: 'String',
    edgesFieldOptions: { nullable: { list: false, items: false } },
    nodeFieldOptions: { nullable: false },
  },
})

builder.addScalarType('Decimal', DecimalScalar)
builder.addScalarType('DateTime', DateTimeScalar)
builder.addScalarType('JSON', JSONScalar)

builder.queryType({})
builder.mutationType({})
