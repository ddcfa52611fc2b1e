/**
 * Hand-written GraphQL over fetch for the widget: token lifecycle (fetchToken again when the
 * session expires, by its expiry time or on UNAUTHENTICATED/WIDGET_SESSION_EXPIRED) and a
 * fetch-based reader of GraphQL over SSE ("distinct connections" mode) for live alerts.
 */

/** What the tenant's backend hands the page: the createWidgetSession result. */
export interface WidgetSession {
  token: string
  customerId: string
  /** When known, the widget fetches a new token shortly before it. */
  expiresAt?: string | null
}

export type FetchToken = () => Promise<WidgetSession>

export class WidgetError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly reason?: string,
  ) {
    super(message)
    this.name = 'WidgetError'
  }
}

/** The session expired and a fresh token from fetchToken did not help. */
export const isExpired = (e: unknown) => problemOf(e) === 'expired'

/**
 * What went wrong, as the end customer should hear it: an expired session (a new token may come),
 * a token the API does not know or fetchToken's answer unusable (not "expired": renewing won't
 * help), a site the tenant did not allow, or anything else (the service is unreachable).
 */
export type Problem = 'expired' | 'invalid' | 'origin' | 'error'

export function problemOf(e: unknown): Problem {
  if (!(e instanceof WidgetError)) return 'error'
  if (e.code === 'BAD_TOKEN') return 'invalid'
  if (e.code !== 'UNAUTHENTICATED') return 'error'
  return e.reason === 'WIDGET_SESSION_EXPIRED'
    ? 'expired'
    : e.reason === 'WIDGET_ORIGIN_NOT_ALLOWED'
      ? 'origin'
      : 'invalid'
}

interface GraphQLResponse<T> {
  data?: T | null
  errors?: { message: string; extensions?: { code?: string; reason?: string } }[]
}

export interface ClientOptions {
  endpoint: string
  fetchToken: FetchToken
  fetch?: typeof fetch
  now?: () => number
}

// Renew this long before the announced expiry, so no request goes out with a dying token.
const EXPIRY_MARGIN_MS = 5_000

const PRICE_DETAILS = 'query BurnrateWidgetSession { widgetSession { priceDetails } }'

export interface WidgetClient {
  session(): Promise<WidgetSession>
  /**
   * Whether the current session may read unit prices and the pricing plan (createWidgetSession
   * priceDetails); asked of the API once per token.
   */
  priceDetails(): Promise<boolean>
  request<T>(query: string, variables?: Record<string, unknown>): Promise<T>
  subscribe<T>(query: string, variables: Record<string, unknown>, handlers: SubscriptionHandlers<T>): () => void
}

interface SubscriptionHandlers<T> {
  next(data: T): void
  /** The stream is (re)connected: a good time to re-read what may have been missed. */
  connected?(): void
  /** Could not connect; the client retries with backoff. */
  error?(error: unknown): void
}

function expiredIn(body: GraphQLResponse<unknown>): boolean {
  return !!body.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')
}

function errorOf(body: GraphQLResponse<unknown>, status: number): WidgetError {
  const first = body.errors?.[0]
  return new WidgetError(
    first?.message ?? `HTTP ${status}`,
    first?.extensions?.code ?? 'HTTP_ERROR',
    first?.extensions?.reason,
  )
}

export function createClient({
  endpoint,
  fetchToken,
  fetch: fetchImpl = (...a) => globalThis.fetch(...a),
  now = Date.now,
}: ClientOptions): WidgetClient {
  let current: Promise<WidgetSession> | null = null
  let latest: WidgetSession | null = null

  const renew = (): Promise<WidgetSession> => {
    latest = null
    const pending = Promise.resolve()
      .then(fetchToken)
      .then((s) => {
        if (!s || typeof s.token !== 'string' || typeof s.customerId !== 'string') {
          throw new WidgetError('fetchToken must resolve to { token, customerId, expiresAt }', 'BAD_TOKEN')
        }
        if (current === pending) latest = s
        return s
      })
    current = pending
    // A failed fetchToken is not kept: the next call tries again.
    pending.catch(() => {
      if (current === pending) current = null
    })
    return pending
  }

  async function session(): Promise<WidgetSession> {
    const s = await (current ?? renew())
    const expiring = s.expiresAt && Date.parse(s.expiresAt) - EXPIRY_MARGIN_MS <= now()
    // Concurrent callers share one renewal: only the first to see the old session starts it.
    if (expiring) return latest === s ? renew() : (current ?? renew())
    return s
  }

  /** Forgets a session the server refused, unless another call already replaced it. */
  function invalidate(s: WidgetSession) {
    if (latest === s) {
      latest = null
      current = null
    }
  }

  async function post(
    s: WidgetSession,
    query: string,
    variables: Record<string, unknown> | undefined,
    accept: string,
    signal?: AbortSignal,
  ) {
    return fetchImpl(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept, authorization: `Bearer ${s.token}` },
      body: JSON.stringify({ query, variables }),
      ...(signal ? { signal } : {}),
    })
  }

  async function request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const s = await session()
      const response = await post(s, query, variables, 'application/graphql-response+json, application/json')
      let body: GraphQLResponse<T>
      try {
        body = (await response.json()) as GraphQLResponse<T>
      } catch {
        throw new WidgetError(`The usage service answered HTTP ${response.status}`, 'HTTP_ERROR')
      }
      if (expiredIn(body) && attempt === 0) {
        // Expired (or revoked) token: one new token from fetchToken, then the same request again.
        invalidate(s)
        continue
      }
      if (body.errors?.length || !body.data) throw errorOf(body, response.status)
      return body.data
    }
  }

  // Per session object: a new token (renewal) is asked again, as the tenant may have changed its mind.
  // Unknown (no widgetSession: not a widget token) shows less rather than asking for refused fields.
  const details = new WeakMap<WidgetSession, Promise<boolean>>()
  async function priceDetails(): Promise<boolean> {
    const s = await session()
    let known = details.get(s)
    if (!known) {
      known = request<{ widgetSession: { priceDetails: boolean } | null }>(PRICE_DETAILS).then(
        (d) => d.widgetSession?.priceDetails ?? false,
      )
      details.set(s, known)
      // A failed read is not kept: the next call asks again.
      known.catch(() => details.get(s) === known && details.delete(s))
    }
    return known
  }

  function subscribe<T>(
    query: string,
    variables: Record<string, unknown>,
    handlers: SubscriptionHandlers<T>,
  ): () => void {
    const controller = new AbortController()
    let backoff = 1_000
    const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

    async function readStream(response: Response, s: WidgetSession): Promise<void> {
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += value
        let end: number
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + (buffer[end] === '\r' ? 4 : 2))
          let event = 'message'
          const data: string[] = []
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith('event:')) event = line.slice(6).trim()
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
          }
          if (event === 'complete') return
          if (!data.length || (event !== 'next' && event !== 'message')) continue
          const payload = JSON.parse(data.join('\n')) as GraphQLResponse<T>
          if (expiredIn(payload)) {
            invalidate(s)
            return
          }
          if (payload.data) handlers.next(payload.data)
        }
      }
    }

    void (async () => {
      while (!controller.signal.aborted) {
        try {
          const s = await session()
          const response = await post(s, query, variables, 'text/event-stream', controller.signal)
          if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
            const body = (await response.json().catch(() => ({}))) as GraphQLResponse<T>
            if (expiredIn(body)) {
              invalidate(s)
              continue
            }
            throw errorOf(body, response.status)
          }
          backoff = 1_000
          handlers.connected?.()
          await readStream(response, s)
          // The server ends a widget's stream when its token expires: reconnect (with a new token).
          await sleep(250)
        } catch (error) {
          if (controller.signal.aborted) return
          handlers.error?.(error)
          await sleep(backoff)
          backoff = Math.min(backoff * 2, 30_000)
        }
      }
    })()
    return () => controller.abort()
  }

  return { session, priceDetails, request, subscribe }
}
