/**
 * Failures a caller can act on, raised by services and repositories without any knowledge of
 * GraphQL or HTTP. The schema layer turns them into GraphQL errors (schema/errors.ts, the one
 * mapping); the plain HTTP routes turn them into status codes (httpStatusOf).
 */
/**
 * UNAVAILABLE is not the caller's fault: a service Burnrate calls (Stripe) did not answer or answered
 * with an outage; retrying may succeed (details carry `retryable: true`).
 */
export type ErrorCode = 'BAD_USER_INPUT' | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND' | 'UNAVAILABLE'

export class DomainError extends Error {
  override readonly name = 'DomainError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The input field at fault, as the caller named it (`input.events.3.tokens`). */
    readonly field?: string,
    /** More machine-readable facts for the caller (e.g. `reason: 'WIDGET_SESSION_EXPIRED'`). */
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message)
  }
}

export function userError(code: ErrorCode, message: string, field?: string): DomainError {
  return new DomainError(code, message, field)
}

export const badInput = (message: string, field?: string) => new DomainError('BAD_USER_INPUT', message, field)
export const notFound = (message: string, field?: string) => new DomainError('NOT_FOUND', message, field)
export const unavailable = (message: string) => new DomainError('UNAVAILABLE', message, undefined, { retryable: true })

export const isDomainError = (error: unknown): error is DomainError => error instanceof DomainError

/** The HTTP status a domain error answers with on the plain HTTP routes (gateway, webhooks). */
export function httpStatusOf(error: DomainError): number {
  switch (error.code) {
    case 'BAD_USER_INPUT':
      return 400
    case 'UNAUTHENTICATED':
      return 401
    case 'FORBIDDEN':
      return 403
    case 'NOT_FOUND':
      return 404
    case 'UNAVAILABLE':
      return 503
  }
}
