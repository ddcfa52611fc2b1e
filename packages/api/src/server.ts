import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { App } from './app.ts'
import type { Config } from './config.ts'
import type { Logger } from './logger.ts'
import { attachGraphQLWebSocket } from './subscriptions/websocket.ts'

export interface RunningServer {
  server: Server
  url: string
  /** Stops accepting connections, lets in-flight requests finish (up to the timeout), then resolves. */
  close(): Promise<void>
}

function tooLarge(req: IncomingMessage, res: ServerResponse, limit: number) {
  res.writeHead(413, { 'content-type': 'application/json', connection: 'close' })
  res.end(JSON.stringify({ errors: [{ message: `Request body is larger than ${limit} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }))
  // Keep discarding what the client still sends until the socket closes: closing a socket with unread
  // input makes the kernel reset the connection, and the client may lose the 413 before reading it.
  req.resume()
}

/**
 * The whole request body, refused as soon as it passes `limit` bytes (declared or actually sent), so a
 * lying or absent Content-Length cannot get past it. GraphQL bodies are parsed whole anyway.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined | 'too-large' | 'aborted'> {
  if (req.method === 'GET' || req.method === 'HEAD') return Promise.resolve(undefined)
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve('too-large')
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let seen = 0
    const settle = (outcome: Buffer | 'too-large' | 'aborted' | Error) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
      if (outcome instanceof Error) reject(outcome)
      else resolve(outcome)
    }
    const onData = (chunk: Buffer) => {
      seen += chunk.length
      if (seen > limit) {
        req.pause()
        settle('too-large')
      } else chunks.push(chunk)
    }
    const onEnd = () => settle(Buffer.concat(chunks))
    const onError = (error: Error) => settle(req.destroyed ? 'aborted' : error)
    const onClose = () => settle('aborted')
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose)
  })
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

/**
 * node:http around the yoga app: a request body size limit enforced while streaming (so a lying
 * or absent Content-Length cannot get past it), a health endpoint, and graceful shutdown.
 */
export async function startServer(app: App, config: Config, logger: Logger): Promise<RunningServer> {
  const limit = config.MAX_BODY_BYTES
  let inFlight = 0
  let closing = false
  let drained: (() => void) | null = null
  const eventStreams = new Set<ServerResponse>()

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
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
    void readBody(req, limit).then(
      (body) => {
        if (body === 'too-large') return tooLarge(req, res, limit)
        if (body === 'aborted') return void res.destroy()
        const path = (req.url ?? '/').split('?')[0]
        const route = app.routes.find((r) => r.method === req.method && r.path === path)
        if (route) return route.handle(req, res, body ?? Buffer.alloc(0))
        // A body on the request is what whatwg-node (yoga's adapter) uses instead of the stream.
        if (body) (req as IncomingMessage & { body?: unknown }).body = adapterBody(req, body)
        // requestListener runs yoga and writes its response (handleNodeRequestAndResponse only returns it).
        return app.yoga.requestListener(req, res)
      },
      (error: unknown) => {
        logger.error('request body could not be read', { error: error instanceof Error ? error.message : String(error) })
        res.destroy()
      },
    )
  })
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 60_000

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
    close: async () => {
      closing = true
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      await webSocket.close()
      for (const stream of eventStreams) stream.destroy()
      server.closeIdleConnections()
      if (inFlight > 0) {
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.SHUTDOWN_TIMEOUT_MS).unref())
        const done = new Promise<'drained'>((resolve) => (drained = () => resolve('drained')))
        const outcome = await Promise.race([done, timeout])
        if (outcome === 'timeout') logger.warn('shutdown timeout: closing remaining connections', { inFlight })
      }
      server.closeAllConnections()
      await stopped
    },
  }
}
