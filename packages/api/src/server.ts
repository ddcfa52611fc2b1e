import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { App } from './app.ts'
import type { Config } from './config.ts'
import { type Admission, BodyMeter, payloadTooLarge, readBody, refuse } from './http/body.ts'
import { context, SpanKind, trace } from '@opentelemetry/api'
import { withRequestId, type Logger } from './logger.ts'
import { incomingContext, tracer, tracingEnabled } from './observability/tracing.ts'
import { findRoute } from './shared/http-route.ts'
import { requestIdFrom } from './shared/request-id.ts'
import { attachGraphQLWebSocket } from './subscriptions/websocket.ts'

export interface RunningServer {
  server: Server
  url: string
  /** Request body bytes held in memory now, and at most at once since start. */
  bodyBytes: { readonly held: number; readonly peak: number }
  /** Stops accepting connections, lets in-flight requests finish (up to the timeout), then resolves. */
  close(): Promise<void>
}

/**
 * The body as yoga's adapter reads it best. The adapter tests a given body with `Object.keys`,
 * which on a Buffer makes one string per byte (5 ms for a 100 KB batch); a JSON body parsed here
 * is handed over as the object it is, and `request.json()` returns it as is. Anything else (other
 * content types, malformed JSON, an empty object the adapter would not take) stays the Buffer, so
 * yoga answers it exactly as before.
 */
function adapterBody(req: IncomingMessage, body: Buffer): unknown {
  const type = req.headers['content-type'] ?? ''
  if (!/^application\/(graphql\+)?json\b/i.test(type)) return body
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    return body
  }
  return parsed !== null && typeof parsed === 'object' && Object.keys(parsed).length > 0 ? parsed : body
}

/** Methods that carry no body: nothing to admit or read before yoga (GraphiQL, GET queries, CORS preflights). */
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Body limit of requests nobody authenticated from the headers (Stripe's signed webhooks, the dev demo). */
const ANONYMOUS_MAX_BODY_BYTES = 1024 * 1024

/**
 * node:http around the yoga app: each request with a body is admitted on its headers first
 * (credentials, content type, declared size), then its body is read within the admitted limit
 * (enforced while streaming, so a lying or absent Content-Length cannot get past it); a health
 * endpoint, and graceful shutdown.
 */
export async function startServer(app: App, config: Config, logger: Logger): Promise<RunningServer> {
  const limit = config.MAX_BODY_BYTES
  let inFlight = 0
  let closing = false
  let drained: (() => void) | null = null
  const eventStreams = new Set<ServerResponse>()

  const meter = new BodyMeter()

  /** A request that has (or may have) a body: admitted on its headers, then read within its limit. */
  async function withBody(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    const route = findRoute(app.routes, req.method, path ?? '/')
    let admission: Admission
    if (route)
      admission = route.admit
        ? await route.admit(req)
        : { ok: true, maxBodyBytes: Math.min(limit, ANONYMOUS_MAX_BODY_BYTES) }
    else if (path === '/graphql') admission = await app.admitGraphQL(req)
    else admission = { ok: true, maxBodyBytes: Math.min(limit, ANONYMOUS_MAX_BODY_BYTES) }
    if (!admission.ok) return refuse(req, res, admission.status, admission.payload, admission.headers)
    const tooLarge = () =>
      refuse(req, res, 413, admission.tooLarge?.(admission.maxBodyBytes) ?? payloadTooLarge(admission.maxBodyBytes))
    if (Number(req.headers['content-length'] ?? 0) > admission.maxBodyBytes) return tooLarge()
    // Only now is the client told to send the body it announced with "Expect: 100-continue".
    if (expectsContinue) res.writeContinue()
    const body = await readBody(req, res, admission.maxBodyBytes, meter)
    if (body === 'too-large') return tooLarge()
    if (body === 'aborted') return void res.destroy()
    if (route) return route.handle(req, res, body)
    // A body on the request is what whatwg-node (yoga's adapter) uses instead of the stream.
    ;(req as IncomingMessage & { body?: unknown }).body = adapterBody(req, body)
    // requestListener runs yoga and writes its response (handleNodeRequestAndResponse only returns it).
    return app.yoga.requestListener(req, res)
  }

  /**
   * Every request gets an id (the caller's x-request-id when sane): handed on to yoga and the routes in the
   * header, answered in x-request-id (a route may set its own), and on every log line written while serving it.
   */
  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue = false) => {
    const given = req.headers['x-request-id']
    const requestId = requestIdFrom(Array.isArray(given) ? given[0] : given)
    req.headers['x-request-id'] = requestId
    res.setHeader('x-request-id', requestId)
    if (!tracingEnabled()) return withRequestId(logger, requestId, () => serve(req, res, expectsContinue))
    // Tracing on: a server span per request, child of the caller's W3C traceparent when it sends one.
    const parent = incomingContext(req.headers)
    const path = (req.url ?? '/').split('?')[0]!
    const span = tracer().startSpan(
      `${req.method} ${path}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': req.method ?? '', 'url.path': path, 'burnrate.request_id': requestId },
      },
      parent,
    )
    res.on('close', () => {
      span.setAttribute('http.response.status_code', res.statusCode)
      span.end()
    })
    context.with(trace.setSpan(parent, span), () =>
      withRequestId(logger, requestId, () => serve(req, res, expectsContinue)),
    )
  }

  const serve = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
    if (closing) res.setHeader('connection', 'close')
    if (req.url === '/healthz') {
      res.writeHead(closing ? 503 : 200, { 'content-type': 'text/plain' })
      res.end(closing ? 'shutting down' : 'ok')
      return
    }
    inFlight += 1
    // Subscriptions over SSE never finish on their own: shutdown cuts them (clients reconnect elsewhere).
    if (String(req.headers.accept ?? '').includes('text/event-stream')) {
      eventStreams.add(res)
      res.on('close', () => eventStreams.delete(res))
    }
    res.on('close', () => {
      inFlight -= 1
      if (closing && inFlight === 0) drained?.()
    })
    if (BODYLESS.has(req.method ?? '') && !expectsContinue) {
      const path = (req.url ?? '/').split('?')[0]
      const route = findRoute(app.routes, req.method, path ?? '/')
      if (route) return void route.handle(req, res, Buffer.alloc(0))
      return void app.yoga.requestListener(req, res)
    }
    withBody(req, res, expectsContinue).catch((error: unknown) => {
      logger.error('request failed before it reached its handler', {
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      })
      if (!res.headersSent)
        refuse(req, res, 500, {
          errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
        })
      else res.destroy()
    })
  }

  const server = createServer(
    {
      // An anonymous connection holds at most its headers (Node's 16 KiB) for HTTP_HEADERS_TIMEOUT_MS; a body is read
      // only once the headers are admitted, and the whole request must have arrived within HTTP_REQUEST_TIMEOUT_MS.
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS),
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // How often those two are checked (Node's default is every 30 s).
      connectionsCheckingInterval: Math.min(1_000, config.HTTP_HEADERS_TIMEOUT_MS),
    },
    (req, res) => handle(req, res),
  )
  // Without a listener Node answers "100 Continue" itself, before the headers were admitted.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true))
  server.keepAliveTimeout = 5_000

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.PORT, config.HOST, () => resolve())
  })
  // GraphQL over WebSocket (graphql-ws) on the same port and path as HTTP.
  const webSocket = attachGraphQLWebSocket(server, app, logger)
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${address.port}`

  return {
    server,
    url,
    bodyBytes: meter,
    close: async () => {
      closing = true
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      await webSocket.close()
      for (const stream of eventStreams) stream.destroy()
      server.closeIdleConnections()
      if (inFlight > 0) {
        const timeout = new Promise<'timeout'>((resolve) =>
          setTimeout(() => resolve('timeout'), config.SHUTDOWN_TIMEOUT_MS).unref(),
        )
        const done = new Promise<'drained'>((resolve) => (drained = () => resolve('drained')))
        const outcome = await Promise.race([done, timeout])
        if (outcome === 'timeout') logger.warn('shutdown timeout: closing remaining connections', { inFlight })
      }
      server.closeAllConnections()
      await stopped
    },
  }
}
