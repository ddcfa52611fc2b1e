/**
 * What POST /graphql checks before it reads a byte of the body: a content type yoga is meant to
 * take (JSON or a bare GraphQL document) and a credential that names a tenant or a live widget
 * session. A request without one is answered at once, so an anonymous client cannot make the
 * server buffer up to MAX_BODY_BYTES per connection (32 slow uploads used to hold ~230 MB).
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { TenantService } from '../auth/service.ts'
import { cookieValue, sameOrigin, SESSION_COOKIE } from '../auth/session-routes.ts'
import type { ConsoleSessionService } from '../auth/sessions.ts'
import type { Logger } from '../logger.ts'
import { isWidgetToken, type WidgetSessionService } from '../widget-sessions/service.ts'
import { rememberWidgetAuthentication } from '../widget-sessions/http.ts'
import type { Admission } from './body.ts'
import { GRAPHQL_BODY_TYPES, unsupportedBodyType } from './graphql-guards.ts'

const BEARER = /^Bearer\s+(\S+)$/i
const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/

const NO_KEY = 'A valid API key is required: send "Authorization: Bearer <key>".'

const graphqlError = (message: string, extensions: Record<string, unknown>) => ({ errors: [{ message, extensions }] })

/** The caller's x-request-id when it is sane, else a new one (as requestIdOf does for yoga's requests). */
export function nodeRequestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/**
 * Admission of a request with a body to /graphql. Credentials are checked again, in full, by the
 * context factory (widget origins among them); a widget session looked up here is handed to it, so
 * it is read from the database once.
 */
export function graphqlAdmission(deps: {
  tenants: TenantService
  consoleSessions: ConsoleSessionService
  widgetSessions: WidgetSessionService
  logger: Logger
  maxBodyBytes: number
}) {
  return async (req: IncomingMessage): Promise<Admission> => {
    const type = req.headers['content-type'] ?? ''
    if (!GRAPHQL_BODY_TYPES.test(type)) {
      return {
        ok: false,
        status: 415,
        payload: graphqlError(unsupportedBodyType(type), { code: 'UNSUPPORTED_MEDIA_TYPE' }),
      }
    }
    const token = BEARER.exec(req.headers.authorization ?? '')?.[1]
    const unauthenticated = (message: string, reason?: string): Admission => ({
      ok: false,
      status: 401,
      headers: { 'www-authenticate': 'Bearer' },
      payload: graphqlError(message, { code: 'UNAUTHENTICATED', ...(reason ? { reason } : {}) }),
    })
    const cookie = token ? null : cookieValue(req.headers.cookie, SESSION_COOKIE)
    if (!token && !cookie) return unauthenticated(NO_KEY)
    try {
      if (!token) {
        // The console's session cookie, from the server's own origin only (auth/session-routes.ts).
        if (!sameOrigin(req.headers.origin, req.headers.host) || !(await deps.consoleSessions.authenticate(cookie!)))
          return unauthenticated(NO_KEY)
      } else if (isWidgetToken(token)) {
        const lookup = deps.widgetSessions.authenticate(token)
        rememberWidgetAuthentication(req, lookup)
        const auth = await lookup
        if (auth.status === 'expired') {
          return unauthenticated(
            `This widget session expired at ${auth.expiresAt.toISOString()}; fetch a new token (createWidgetSession) and retry.`,
            'WIDGET_SESSION_EXPIRED',
          )
        }
        if (auth.status !== 'valid') return unauthenticated(NO_KEY)
      } else if (!(await deps.tenants.authenticateKey(token))) {
        return unauthenticated(NO_KEY)
      }
    } catch (error) {
      // The database is down: masked like any unexpected error, with a request id to quote.
      const requestId = nodeRequestId(req)
      deps.logger.error('unexpected error', {
        requestId,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      })
      return {
        ok: false,
        status: 500,
        headers: { 'x-request-id': requestId },
        payload: graphqlError('Unexpected error.', { code: 'INTERNAL_SERVER_ERROR', requestId }),
      }
    }
    return { ok: true, maxBodyBytes: deps.maxBodyBytes }
  }
}
