import type { GraphQLContext, Principal } from '../context.ts'
import type { WidgetAuthentication, WidgetSessionService } from './service.ts'
import { isWidgetToken } from './service.ts'
import { isWidgetOriginAllowed } from './origins.ts'

type CorsOptions = { origin?: string[] | string; credentials?: boolean } | false

const BEARER = /^Bearer\s+(\S+)$/i

/** The bearer token of a request, if it is a widget session token. */
export function widgetTokenOf(request: Request): string | null {
  const match = BEARER.exec(request.headers.get('authorization') ?? '')
  return match?.[1] && isWidgetToken(match[1]) ? match[1] : null
}

// The context factory and the CORS headers both need the session; one lookup per request.
const lookups = new WeakMap<Request, Promise<WidgetAuthentication>>()
// Made by the HTTP server before it read the body (http/admission.ts), keyed by its node request.
const admitted = new WeakMap<object, Promise<WidgetAuthentication>>()

/** A lookup already made for this node request, so yoga's CORS and context reuse it. */
export function rememberWidgetAuthentication(nodeRequest: object, lookup: Promise<WidgetAuthentication>): void {
  admitted.set(nodeRequest, lookup)
}

/** The node request yoga's server context carries when it runs behind node:http. */
const nodeRequestOf = (serverContext: unknown): object | undefined =>
  (serverContext as { req?: object } | undefined)?.req

function authenticateOnce(
  sessions: WidgetSessionService,
  request: Request,
  token: string,
  serverContext?: unknown,
): Promise<WidgetAuthentication> {
  let lookup = lookups.get(request)
  if (!lookup) {
    const nodeRequest = nodeRequestOf(serverContext)
    lookup = (nodeRequest && admitted.get(nodeRequest)) || sessions.authenticate(token)
    lookups.set(request, lookup)
  }
  return lookup
}

/**
 * The principal of a request carrying a widget token, or why there is none: an expired session
 * (the widget should call fetchToken), or a browser origin the tenant did not allow.
 */
export async function authenticateWidgetRequest(
  sessions: WidgetSessionService,
  request: Request,
  token: string,
  serverContext?: unknown,
): Promise<{ principal: Principal | null; problem?: GraphQLContext['credentialsProblem'] }> {
  const auth = await authenticateOnce(sessions, request, token, serverContext)
  if (auth.status === 'unknown') return { principal: null }
  if (auth.status === 'expired') {
    return {
      principal: null,
      problem: {
        reason: 'WIDGET_SESSION_EXPIRED',
        message: `This widget session expired at ${auth.expiresAt.toISOString()}; fetch a new token (createWidgetSession) and retry.`,
      },
    }
  }
  const origin = request.headers.get('origin')
  if (origin !== null && !isWidgetOriginAllowed(auth.tenant.widget_origins, origin)) {
    return {
      principal: null,
      problem: {
        reason: 'WIDGET_ORIGIN_NOT_ALLOWED',
        message: `Origin ${origin} may not use this tenant's widget sessions; the tenant lists allowed origins in updateTenantSettings(input: { widgetOrigins }).`,
      },
    }
  }
  return {
    principal: {
      kind: 'widget',
      tenant: auth.tenant,
      customerId: auth.customerId,
      sessionId: auth.sessionId,
      expiresAt: auth.expiresAt,
      priceDetails: auth.priceDetails,
    },
  }
}

/**
 * CORS for yoga: requests with a widget token get CORS headers only for the tenant's allowed
 * origins (so the browser refuses the response elsewhere); everything else keeps yoga's default.
 * Preflights carry no Authorization header, so they are answered for any origin; the actual
 * request is then checked here and in the context factory.
 */
export function widgetAwareCors(sessions: WidgetSessionService) {
  return async (request: Request, serverContext?: unknown): Promise<CorsOptions> => {
    const token = widgetTokenOf(request)
    const origin = request.headers.get('origin')
    if (!token || origin === null) return {}
    const auth = await authenticateOnce(sessions, request, token, serverContext)
    if (auth.status !== 'valid') return {}
    return isWidgetOriginAllowed(auth.tenant.widget_origins, origin) ? { origin: [origin], credentials: false } : false
  }
}
