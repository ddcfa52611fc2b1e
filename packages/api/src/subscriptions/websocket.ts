import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { ExecutionArgs } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import { WebSocketServer, type WebSocket } from 'ws'
import type { YogaServerInstance } from 'graphql-yoga'
import type { GraphQLContext } from '../context.ts'
import { withRequestId, type Logger } from '../logger.ts'

/** What the socket needs of the app (app.ts's App): its yoga, whose envelop executes every operation. */
export interface YogaApp {
  yoga: YogaServerInstance<Record<string, unknown>, GraphQLContext>
}

export interface GraphQLWebSocket {
  /** Closes every socket (1001 Going Away, so clients reconnect elsewhere) and stops accepting new ones. */
  close(): Promise<void>
}

type Extra = {
  socket: WebSocket
  request: IncomingMessage
}

/**
 * A Fetch Request standing for a WebSocket subscription: the bearer token from connectionParams
 * ({ authorization: 'Bearer …' }) or else the console's session cookie, and the upgrade request's Origin, so the yoga context factory
 * authenticates it exactly like an HTTP request (tenant keys, widget tokens, allowed origins).
 */
function requestFor(
  upgrade: IncomingMessage,
  connectionParams: Readonly<Record<string, unknown>> | undefined,
): Request {
  const headers = new Headers()
  const given = connectionParams?.authorization ?? connectionParams?.Authorization
  if (typeof given === 'string') headers.set('authorization', given)
  // The console's session cookie on the upgrade request (browsers send it; same origin only, checked
  // by the context like for HTTP), and its CSRF token in connectionParams for mutations.
  else if (typeof upgrade.headers.cookie === 'string') headers.set('cookie', upgrade.headers.cookie)
  const csrf = connectionParams?.['x-csrf-token'] ?? connectionParams?.csrfToken
  if (typeof csrf === 'string') headers.set('x-csrf-token', csrf)
  if (typeof upgrade.headers.origin === 'string') headers.set('origin', upgrade.headers.origin)
  const requestId = upgrade.headers['x-request-id']
  if (typeof requestId === 'string') headers.set('x-request-id', requestId)
  return new Request(`http://${upgrade.headers.host ?? 'localhost'}${upgrade.url ?? '/graphql'}`, {
    method: 'POST',
    headers,
  })
}

type Root = { execute: (a: ExecutionArgs) => unknown; subscribe: (a: ExecutionArgs) => unknown }
const rootOf = (args: ExecutionArgs) => args.rootValue as Root

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' && value !== null && Symbol.asyncIterator in value

/** `iterable`, with every step (next, return, throw) run through `run`: the stream keeps its context. */
function iterateIn<T>(iterable: AsyncIterable<T>, run: <R>(fn: () => R) => R): AsyncIterableIterator<T> {
  const iterator = iterable[Symbol.asyncIterator]()
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    next: (...value: [] | [unknown]) => run(() => iterator.next(...value)),
    return: (value?: unknown) =>
      run(() =>
        iterator.return ? iterator.return(value) : Promise.resolve({ done: true as const, value: value as T }),
      ),
    throw: (error?: unknown) => run(() => (iterator.throw ? iterator.throw(error) : Promise.reject(error))),
  }
}

/**
 * GraphQL over WebSocket (the graphql-ws protocol) on the server's upgrade event, executed through
 * yoga's envelop (yoga's graphql-ws recipe): same schema, plugins, limits, error masking and context.
 */
export function attachGraphQLWebSocket(
  server: Server,
  app: YogaApp,
  logger: Logger,
  path = app.yoga.graphqlEndpoint,
): GraphQLWebSocket {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 })
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.url ?? '').split('?')[0] !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  }
  server.on('upgrade', onUpgrade)

  const inRequestOf = <R>(args: ExecutionArgs, fn: () => R): R => {
    const requestId = (args.contextValue as Partial<GraphQLContext> | undefined)?.requestId
    return requestId ? withRequestId(logger, requestId, fn) : fn()
  }

  const disposable = useServer<Record<string, unknown> | undefined, Extra>(
    {
      // Each operation runs in its request's log context (as HTTP requests do in server.ts): every line
      // it writes, also while a subscription streams, carries its requestId.
      execute: (args) => inRequestOf(args, () => rootOf(args).execute(args)) as never,
      subscribe: (args) =>
        inRequestOf(args, async () => {
          const result = await rootOf(args).subscribe(args)
          return isAsyncIterable(result) ? iterateIn(result, (fn) => inRequestOf(args, fn)) : result
        }) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const request = requestFor(ctx.extra.request, ctx.connectionParams)
        const { schema, execute, subscribe, contextFactory, parse, validate } = app.yoga.getEnveloped({
          ...ctx,
          request,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        })
        let document
        try {
          document = parse(payload.query)
        } catch (error) {
          return [error as never]
        }
        const args: ExecutionArgs = {
          schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        }
        const errors = validate(args.schema, args.document)
        if (errors.length) return errors
        return args
      },
    },
    wss,
    // Keep-alive pings: a dead peer is noticed and its subscriptions released.
    12_000,
  )
  wss.on('error', (error) => logger.warn('websocket server error', { error: error.message }))

  return {
    async close() {
      server.off('upgrade', onUpgrade)
      // Closes each socket with 1001 Going Away (clients reconnect, to another process) and the server.
      await disposable.dispose()
    },
  }
}
