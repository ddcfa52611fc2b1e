import { initGraphQLTada } from 'gql.tada'
import type { introspection } from './graphql-env.d.ts'

/**
 * Typed operations over packages/api/schema.graphql (gql.tada: `npm run typegen` after the schema
 * changes). Money and dates stay strings: Decimal is an exact decimal string, never a float.
 */
export const graphql = initGraphQLTada<{
  introspection: introspection
  scalars: { Decimal: string; DateTime: string; JSON: unknown }
}>()
