import { GraphQLError } from 'graphql'
import { maskError as yogaMaskError } from 'graphql-yoga'
import { DomainError, unavailable } from '../shared/errors.ts'
import { describeOutage } from '../shared/transient.ts'

/** The one mapping from a domain error to the GraphQL error the contract names (code, field, details). */
export function toGraphQLError(domain: DomainError, at?: GraphQLError): GraphQLError {
  return new GraphQLError(domain.message, {
    nodes: at?.nodes,
    source: at?.source,
    positions: at?.positions,
    path: at?.path,
    extensions: { code: domain.code, ...(domain.field ? { field: domain.field } : {}), ...domain.details },
  })
}

/**
 * Yoga's error masking with domain errors let through: a DomainError a resolver threw (graphql-js
 * wraps it) becomes its coded GraphQL error; an outage of Stripe becomes
 * UNAVAILABLE (retryable) rather than an internal error; anything else unexpected is masked as
 * yoga does.
 */
export const maskError: typeof yogaMaskError = (error, message, isDev) => {
  const original = error instanceof GraphQLError ? error.originalError : error
  if (original instanceof DomainError)
    return toGraphQLError(original, error instanceof GraphQLError ? error : undefined)
  const outage = describeOutage(original)
  if (outage)
    return toGraphQLError(
      unavailable(`${outage}. Retry the request.`),
      error instanceof GraphQLError ? error : undefined,
    )
  return yogaMaskError(error, message, isDev)
}
