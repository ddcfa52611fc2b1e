/**
 * The console's sign-in over plain HTTP (shared/http-route.ts): POST /console/api/session exchanges a
 * tenant key for an HttpOnly, SameSite=Strict cookie; GET answers who is signed in; DELETE signs out
 * (with the CSRF token). The key never reaches the browser's storage: the console keeps only the
 * cookie (which scripts cannot read) and the CSRF token (useless without the cookie).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Principal } from '../context.ts'
import type { Logger } from '../logger.ts'
import { DomainError, httpStatusOf, isDomainError } from '../shared/errors.ts'
import type { HttpRoute } from '../shared/http-route.ts'
import { displayPrefix, tokensMatch } from './keys.ts'
import { createSignInLimiter, type SignInLimits } from './sign-in-limit.ts'
import type { ConsoleSession, ConsoleSessionService } from './sessions.ts'

export const SESSION_COOKIE = 'br_console'
const SESSION_PATH = '/console/api/session'
const NO_SESSION = 'Not signed in (no session, or it expired, was signed out or its key was revoked): sign in again.'
const CSRF_MISMATCH = "Send the session's csrfToken in the x-csrf-token header."

/** The value of one cookie in a Cookie header, or null. */
export function cookieValue(header: string | null | undefined, name: string): string | null {
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null
  }
  return null
}

/**
 * Whether a browser's Origin is the server's own (the console is served by the API). A request
 * without Origin is a same-origin GET or not from a browser at all; a cookie from anywhere else is
 * ignored, so no other site can read or change anything with a signed-in browser's cookie.
 */
export function sameOrigin(origin: string | null | undefined, host: string | null | undefined): boolean {
  if (origin == null) return true
  if (!host) return false
  try {
    return new URL(origin).host === host
  } catch {
    return false
  }
}

/** Whether the request reached us (or the proxy in front of us) over https: the cookie is then Secure. */
function isHttps(req: IncomingMessage): boolean {
  const forwarded = req.headers['x-forwarded-proto']
  const proto = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim()
  return proto === 'https' || Boolean((req.socket as { encrypted?: boolean }).encrypted)
}

function cookieHeader(req: IncomingMessage, value: string, maxAgeSeconds: number): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'HttpOnly',
    'SameSite=Strict',
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    ...(isHttps(req) ? ['Secure'] : []),
  ].join('; ')
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

function sendError(res: ServerResponse, error: DomainError, headers: Record<string, string> = {}): void {
  send(
    res,
    httpStatusOf(error),
    {
      error: {
        code: error.code,
        message: error.message,
        ...(error.field ? { field: error.field } : {}),
        ...error.details,
      },
    },
    headers,
  )
}

const sessionJson = (s: ConsoleSession) => ({
  csrfToken: s.csrfToken,
  role: s.key.role,
  keyId: s.key.id,
  keyName: s.key.name,
  tenant: { id: s.tenant.id, name: s.tenant.name },
  expiresAt: s.expiresAt.toISOString(),
})

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

const TOO_MANY_SIGN_INS = 'Too many failed sign-ins from this address or for this key: try again later.'

export function consoleSessionRoutes(deps: {
  consoleSessions: ConsoleSessionService
  ttlSeconds: number
  logger: Logger
  /** Failed sign-ins allowed per client IP and per key prefix in each window. */
  signInLimits: SignInLimits
  now: () => number
}): HttpRoute[] {
  const { consoleSessions } = deps
  const limiter = createSignInLimiter(deps.signInLimits)
  const guarded =
    (handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>) =>
    async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
      try {
        if (!sameOrigin(header(req, 'origin'), header(req, 'host')))
          throw new DomainError('FORBIDDEN', 'The console session API answers only its own origin.', undefined, {
            reason: 'ORIGIN',
          })
        await handler(req, res, body)
      } catch (error) {
        if (isDomainError(error)) return sendError(res, error)
        deps.logger.error('unexpected error', {
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        })
        send(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } })
      }
    }

  const current = async (req: IncomingMessage): Promise<{ value: string; session: ConsoleSession }> => {
    const value = cookieValue(header(req, 'cookie'), SESSION_COOKIE)
    const session = value ? await consoleSessions.authenticate(value) : null
    if (!value || !session) throw new DomainError('UNAUTHENTICATED', NO_SESSION)
    return { value, session }
  }

  return [
    {
      method: 'POST',
      path: SESSION_PATH,
      handle: guarded(async (req, res, body) => {
        let key: unknown
        try {
          key = (JSON.parse(body.toString('utf8')) as { key?: unknown } | null)?.key
        } catch {
          key = undefined
        }
        if (typeof key !== 'string' || key.length === 0 || key.length > 200)
          throw new DomainError('BAD_USER_INPUT', 'Send JSON {"key": "br_sk_…"} with a tenant API key.', 'key')
        const ip = req.socket.remoteAddress ?? 'unknown'
        const prefix = displayPrefix(key)
        const wait = limiter.retryAfter(ip, prefix, deps.now())
        if (wait !== null)
          return send(
            res,
            429,
            { error: { code: 'TOO_MANY_REQUESTS', message: TOO_MANY_SIGN_INS, retryAfterSeconds: wait } },
            { 'retry-after': String(wait) },
          )
        let signedIn
        try {
          signedIn = await consoleSessions.signIn(key)
        } catch (error) {
          if (isDomainError(error) && error.code === 'UNAUTHENTICATED') limiter.failed(ip, prefix, deps.now())
          throw error
        }
        const { cookieValue: value, session } = signedIn
        send(res, 200, sessionJson(session), { 'set-cookie': cookieHeader(req, value, deps.ttlSeconds) })
      }),
    },
    {
      method: 'GET',
      path: SESSION_PATH,
      handle: guarded(async (req, res) => {
        const { session } = await current(req)
        send(res, 200, sessionJson(session))
      }),
    },
    {
      method: 'DELETE',
      path: SESSION_PATH,
      handle: guarded(async (req, res) => {
        const { value, session } = await current(req)
        if (!tokensMatch(header(req, 'x-csrf-token'), session.csrfToken))
          throw new DomainError('FORBIDDEN', CSRF_MISMATCH, undefined, { reason: 'CSRF' })
        await consoleSessions.signOut(value)
        send(res, 204, undefined, { 'set-cookie': cookieHeader(req, '', 0) })
      }),
    },
  ]
}

/**
 * The principal of a GraphQL request signed in with the console cookie (no Authorization header),
 * or null. The cookie counts only from the server's own origin; whether the request carries the
 * session's CSRF token is kept for schema/mutation-guard.ts, which requires it of mutations.
 */
export async function consolePrincipal(sessions: ConsoleSessionService, request: Request): Promise<Principal | null> {
  const value = cookieValue(request.headers.get('cookie'), SESSION_COOKIE)
  if (!value) return null
  const host = request.headers.get('host') ?? new URL(request.url).host
  if (!sameOrigin(request.headers.get('origin'), host)) return null
  const session = await sessions.authenticate(value)
  if (!session) return null
  return {
    kind: 'tenant',
    tenant: session.tenant,
    key: { id: session.key.id, name: session.key.name, role: session.key.role },
    authMethod: 'SESSION',
    csrfVerified: tokensMatch(request.headers.get('x-csrf-token'), session.csrfToken),
  }
}
