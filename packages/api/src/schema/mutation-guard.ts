/**
 * One guard over every field of Mutation, present and future (it walks the built schema, so a
 * mutation added later is covered without a line of its own):
 *
 * - a READ_ONLY key is refused (FORBIDDEN, reason READ_ONLY) before the resolver runs;
 * - a request authenticated by the console's session cookie must send the session's CSRF token in
 *   `x-csrf-token` (FORBIDDEN, reason CSRF, HTTP 403), so another site cannot make a signed-in
 *   browser change anything;
 * - the resolver runs as its key for the audit log (audit/service.ts runAs), so every entry a
 *   service records names who made the change and the request id; the mutations listed in
 *   audited-mutations.ts are recorded here, around the resolver.
 */
import { defaultFieldResolver, getOperationAST, GraphQLError, OperationTypeNode, type GraphQLSchema } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import type { GraphQLContext, Principal } from '../context.ts'
import { DomainError } from '../shared/errors.ts'
import { AUDITED_MUTATIONS, runAudited } from './audited-mutations.ts'

export const READ_ONLY_KEY =
  'This API key is read-only (role READ_ONLY): it can run queries and subscriptions but no mutation. Use an ADMIN key.'
const CSRF_REQUIRED =
  'A console session must send its CSRF token (the csrfToken of /console/api/session) in the x-csrf-token header with every mutation.'

/** Why a principal may not run a mutation, or null. */
function refusalOf(principal: Principal): DomainError | null {
  if (principal.kind !== 'tenant') return null
  if (principal.key.role === 'READ_ONLY')
    return new DomainError('FORBIDDEN', READ_ONLY_KEY, undefined, { reason: 'READ_ONLY' })
  if (principal.authMethod === 'SESSION' && !principal.csrfVerified)
    return new DomainError('FORBIDDEN', CSRF_REQUIRED, undefined, { reason: 'CSRF', http: { status: 403 } })
  return null
}

export function guardMutations(schema: GraphQLSchema): GraphQLSchema {
  const mutation = schema.getMutationType()
  if (!mutation) return schema
  for (const field of Object.values(mutation.getFields())) {
    const resolve = field.resolve ?? defaultFieldResolver
    field.resolve = (root, args, ctx: GraphQLContext, info) => {
      const principal = ctx.principal
      if (principal?.kind !== 'tenant') return resolve(root, args, ctx, info)
      const refusal = refusalOf(principal)
      if (refusal) throw refusal
      const actor = {
        keyId: principal.key.id,
        keyName: principal.key.name,
        role: principal.key.role,
        authMethod: principal.authMethod,
        requestId: ctx.requestId,
      }
      const audited = AUDITED_MUTATIONS[field.name]
      return ctx.services.audit.runAs(actor, () =>
        audited ? runAudited(audited, args, ctx, () => resolve(root, args, ctx, info)) : resolve(root, args, ctx, info),
      )
    }
  }
  return schema
}

/**
 * The same refusals for a whole operation, before graphql-js coerces its variables: a READ_ONLY key
 * or a session without its CSRF token gets FORBIDDEN for any mutation document, whatever its
 * arguments (a missing variable would otherwise answer BAD_USER_INPUT first). The field wrapper
 * above stays as the guard of last resort and sets the audit actor.
 */
export const mutationGuardPlugin: Plugin<GraphQLContext> = {
  onExecute: ({ args, setResultAndStopExecution }) => {
    const operation = getOperationAST(args.document, args.operationName)
    if (operation?.operation !== OperationTypeNode.MUTATION) return
    const principal = (args.contextValue as GraphQLContext).principal
    const refusal = principal ? refusalOf(principal) : null
    if (!refusal) return
    setResultAndStopExecution({
      errors: [new GraphQLError(refusal.message, { extensions: { code: refusal.code, ...refusal.details } })],
    })
  },
}
