import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql'
import { builder } from './builder.ts'
import { guardMutations } from './mutation-guard.ts'
import '../auth/schema.ts'
import '../catalog/schema.ts'
import '../repricing/schema.ts'
import '../customers/schema.ts'
import '../gateway/schema.ts'
import '../pricing/schema.ts'
import '../rating/schema.ts'
import '../usage/schema.ts'
import '../usage/summary/schema.ts'
import '../subscriptions/schema.ts'
import '../webhooks/schema.ts'
import '../stripe/schema.ts'
import '../widget-sessions/schema.ts'
import '../budgets/schema.ts'
import '../credits/schema.ts'
import '../reconciliation/schema.ts'
import '../export/schema.ts'
import '../audit/schema.ts'
import '../overview/schema.ts'

let schema: GraphQLSchema | undefined

/** The executable schema: every domain's types registered on the one builder. */
export function buildSchema(): GraphQLSchema {
  schema ??= guardMutations(builder.toSchema())
  return schema
}

export function printSchemaSDL(): string {
  return printSchema(lexicographicSortSchema(buildSchema())) + '\n'
}
