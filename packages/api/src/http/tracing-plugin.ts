/** A span per GraphQL operation (observability/tracing.ts): the active span of everything it runs. */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { getOperationAST, GraphQLError, type DocumentNode } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import type { Logger } from '../logger.ts'
import { tracer, tracingEnabled } from '../observability/tracing.ts'
import { DomainError } from '../shared/errors.ts'

function codeOf(error: unknown): string | undefined {
  if (error instanceof GraphQLError) {
    const code = error.extensions?.code
    if (typeof code === 'string') return code
    if (error.originalError instanceof DomainError) return error.originalError.code
    return error.originalError ? 'INTERNAL_SERVER_ERROR' : 'GRAPHQL_ERROR'
  }
  return error instanceof DomainError ? error.code : 'INTERNAL_SERVER_ERROR'
}

/** `graphql.<type> <name>` spans with the operation's name and type, the tenant, and the first error code. */
export function tracingPlugin(logger: Logger): Plugin {
  return {
    onExecute: ({ args, executeFn, setExecuteFn }) => {
      if (!tracingEnabled()) return
      const op = getOperationAST(args.document as DocumentNode, args.operationName)
      const type = op?.operation ?? 'unknown'
      const name = op?.name?.value ?? args.operationName ?? 'anonymous'
      const principal = (args.contextValue as { principal?: { tenant?: { id: string } } | null }).principal
      setExecuteFn((execArgs) =>
        tracer().startActiveSpan(
          `graphql.${type} ${name}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              'graphql.operation.type': type,
              'graphql.operation.name': name,
              ...(principal?.tenant ? { 'burnrate.tenant_id': principal.tenant.id } : {}),
            },
          },
          async (span) => {
            try {
              const result = await executeFn(execArgs)
              const errors = (result as { errors?: readonly unknown[] }).errors
              const code = errors && errors.length > 0 ? codeOf(errors[0]) : undefined
              if (code) {
                span.setAttribute('graphql.error.code', code)
                span.setStatus({ code: SpanStatusCode.ERROR, message: code })
              }
              // At debug level: one line per traced operation, with its traceId and spanId (logger.ts).
              logger.debug('graphql operation', { operation: name, type, ...(code ? { errorCode: code } : {}) })
              return result
            } catch (error) {
              span.setAttribute('graphql.error.code', codeOf(error) ?? 'INTERNAL_SERVER_ERROR')
              span.setStatus({ code: SpanStatusCode.ERROR })
              throw error
            } finally {
              span.end()
            }
          },
        ),
      )
    },
  }
}
