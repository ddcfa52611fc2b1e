/**
 * Whether a failure is one a retry may get past: the database unreachable, out of connections,
 * restarting, or a serialization conflict. Used where a caller is told to retry (OTLP's 503 with
 * Retry-After) rather than to give up (500).
 */
const TRANSIENT_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/** SQLSTATE classes and codes: connection exceptions, insufficient resources, operator intervention, conflicts. */
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001|40P01)/

const TRANSIENT_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|PGlite is closed|pool is draining/i

export function isTransientError(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 3) return false
  const { code, message, cause, errors } = error as {
    code?: unknown
    message?: unknown
    cause?: unknown
    errors?: unknown
  }
  if (typeof code === 'string' && (TRANSIENT_ERRNO.has(code) || TRANSIENT_SQLSTATE.test(code))) return true
  if (typeof message === 'string' && TRANSIENT_MESSAGE.test(message)) return true
  // An AggregateError (every address refused) or a wrapped cause.
  if (Array.isArray(errors) && errors.some((e) => isTransientError(e, depth + 1))) return true
  return isTransientError(cause, depth + 1)
}

/** What an HTTP client library's error (the stripe SDK's, duck-typed) says about the call. */
interface UpstreamLikeError {
  type?: unknown
  statusCode?: unknown
  message?: unknown
}

/**
 * Names the outage when an upstream API a request calls synchronously (Stripe) timed out, dropped
 * the connection, rate-limited us or answered 5xx: a failure the caller cannot fix but a retry may
 * get past. Null for anything else (our own database failing stays an internal error).
 */
export function describeOutage(error: unknown): string | null {
  if (!error || typeof error !== 'object') return null
  const { type, statusCode, message } = error as UpstreamLikeError
  if (typeof type !== 'string' || !type.startsWith('Stripe')) return null
  const detail = typeof message === 'string' && message ? `: ${message.slice(0, 200)}` : ''
  if (type === 'StripeConnectionError') return `Stripe could not be reached or did not answer in time${detail}`
  if (type === 'StripeRateLimitError' || statusCode === 429) return `Stripe is rate-limiting requests${detail}`
  if (typeof statusCode === 'number' && statusCode >= 500)
    return `Stripe answered with an outage (${statusCode})${detail}`
  return null
}
