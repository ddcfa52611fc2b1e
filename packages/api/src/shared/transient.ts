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
