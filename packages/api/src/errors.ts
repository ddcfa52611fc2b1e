import { GraphQLError } from 'graphql'

export type ErrorCode = 'BAD_USER_INPUT' | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND'

/** An expected failure the caller can act on: never masked, always with a code. */
export function userError(code: ErrorCode, message: string, field?: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...(field ? { field } : {}) } })
}

export const badInput = (message: string, field?: string) => userError('BAD_USER_INPUT', message, field)
