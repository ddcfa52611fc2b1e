import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import { isSpanContextValid, trace } from '@opentelemetry/api'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  /**
   * Runs `fn` as part of request `requestId`: every line this logger writes meanwhile (including from
   * callbacks and promises started inside) carries `requestId`. Optional so hand-written test loggers still fit.
   */
  withRequest?<T>(requestId: string, fn: () => T): T
  /**
   * Runs `fn` with `fields` on every line this logger writes meanwhile (a background job's `jobId`, a
   * subscription's `requestId` and `operation`), on top of the fields of the context it runs in.
   */
  withFields?<T>(fields: LogContext, fn: () => T): T
}

/** Ids a log line carries from its context: the request, or the background job, it was written for. */
type LogContext = { requestId?: string; jobId?: string; job?: string; operation?: string }

/** Runs `fn` in the request's log context when the logger has one (createLogger's does). */
export function withRequestId<T>(logger: Logger, requestId: string, fn: () => T): T {
  return logger.withRequest ? logger.withRequest(requestId, fn) : fn()
}

/**
 * Runs one unit of background work (a catalog sync, a Stripe push round, a webhook round, a retention
 * run, an export job) as `job` with a fresh `jobId` (or the given one) on every line it logs.
 */
export function withJobId<T>(logger: Logger, job: string, fn: () => T, jobId = `${job}:${randomUUID()}`): T {
  return logger.withFields ? logger.withFields({ job, jobId }, fn) : fn()
}

/** The trace and span ids of the active OpenTelemetry span (tracing on), for log lines. */
function traceFields(): { traceId?: string; spanId?: string } {
  const context = trace.getActiveSpan()?.spanContext()
  return context && isSpanContextValid(context) ? { traceId: context.traceId, spanId: context.spanId } : {}
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

const REDACTED = '[redacted]'

/**
 * Field names whose values are never logged, whatever they hold (compared lower-cased, without `_`/`-`):
 * credentials, and what a caller sends a model (prompts, messages, gateway request bodies).
 */
const SECRET_KEYS = new Set([
  'authorization',
  'cookie',
  'setcookie',
  'apikey',
  'key',
  'secret',
  'secretkey',
  'webhooksecret',
  'signingsecret',
  'token',
  'accesstoken',
  'refreshtoken',
  'password',
  'prompt',
  'messages',
  'input',
  'system',
  'contents',
  'body',
  'stripesignature',
  'xapikey',
])

/**
 * Our key formats and the providers' (a secret inside any string, e.g. an error message or a URL):
 * tenant keys br_sk_…, signing secrets br_whsec_…, widget tokens br_ws_…, Stripe sk_/rk_ (live|test) and
 * whsec_…, provider keys sk-… (OpenAI sk-proj-…, Anthropic sk-ant-…), and bearer credentials.
 */
const SECRET_PATTERNS: RegExp[] = [
  /\bbr_(?:sk|whsec|ws)_[A-Za-z0-9_-]+/g,
  /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9_-]+/g,
  /\bwhsec_[A-Za-z0-9_+/=-]+/g,
  /\bsk-[A-Za-z0-9_-]{6,}/g,
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi,
]

export function redactString(value: string): string {
  let out = value
  for (const pattern of SECRET_PATTERNS)
    out = out.replace(pattern, (_m, scheme?: string) =>
      typeof scheme === 'string' ? `${scheme} ${REDACTED}` : REDACTED,
    )
  return out
}

const isSecretKey = (key: string) => SECRET_KEYS.has(key.toLowerCase().replace(/[_-]/g, ''))

/** A copy of `value` with secret fields replaced and secret-looking substrings cut out; cycles and depth bounded. */
function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value)
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Error) return redactString(value.stack ?? value.message)
  if (value instanceof Date) return value
  if (seen.has(value) || depth > 8) return '[…]'
  seen.add(value)
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen))
  if (value instanceof Map) return redact(Object.fromEntries(value), depth + 1, seen)
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return redact(JSON.parse(JSON.stringify(value)), depth, seen)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : redact(v, depth + 1, seen)
  return out
}

/**
 * One JSON line per entry on stderr: easy to grep, easy to ship. Every line is redacted (secret fields,
 * key-shaped strings) and, inside `withRequest` / `withFields`, carries the request or job id, and the active
 * trace's traceId and spanId when tracing is on; the logger owns its context.
 */
export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Logger {
  const context = new AsyncLocalStorage<LogContext>()
  const log = (at: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (order[at] < order[level]) return
    const entry = {
      level: at,
      time: new Date().toISOString(),
      msg: redactString(msg),
      ...context.getStore(),
      ...traceFields(),
      ...(fields ? (redact(fields) as Record<string, unknown>) : {}),
    }
    write(JSON.stringify(entry))
  }
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    withRequest: (requestId, fn) => context.run({ requestId }, fn),
    withFields: (fields, fn) => context.run({ ...context.getStore(), ...fields }, fn),
  }
}
