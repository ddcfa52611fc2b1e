import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach } from 'vitest'
import type { UsageEvent } from '../src/index.ts'

/**
 * A local stand-in for the Burnrate API that can be told to fail: each request goes to `behave`,
 * which answers 'ok' (record with idempotency, like the API), 'lost' (record, then drop the
 * connection before answering), 'reset' (drop the connection), or a status code. It speaks both
 * ways in: `POST /v1/usage/batch` (`{ events }` in, `{ results, … }` or `{ error }` out) and GraphQL's
 * recordUsageBatch (`{ variables: { events } }` in, `{ data }` or `{ errors }` out); a behaviour's
 * body is given in GraphQL's shape and answered in the shape of the route asked. With `httpIngest`
 * false, /v1/usage/batch answers 404 (an API or proxy without it) without counting as a request.
 */
export type Behaviour = 'ok' | 'lost' | 'reset' | { status: number; body?: unknown; headers?: Record<string, string> }

export interface FakeApi {
  url: string
  batches: UsageEvent[][]
  stored: Map<string, UsageEvent>
  /** How many times each id reached the API in a batch it processed. */
  received: Map<string, number>
  behave: (n: number) => Behaviour
  /** Resolves when the server has handled `n` requests. */
  requests(n: number): Promise<void>
  /** Requests handled so far, and when each arrived (Date.now()). */
  arrivals: number[]
  /** The path of every request, 404s included. */
  paths: string[]
  httpIngest: boolean
  close(): Promise<void>
}

export const servers: Server[] = []
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve())))),
  )
})

export async function fakeApi(behave: (n: number) => Behaviour = () => 'ok'): Promise<FakeApi> {
  let handled = 0
  const waiting: { n: number; resolve: () => void }[] = []
  const api: FakeApi = {
    url: '',
    batches: [],
    stored: new Map(),
    received: new Map(),
    behave,
    requests: (n) => new Promise((resolve) => (handled >= n ? resolve() : waiting.push({ n, resolve }))),
    arrivals: [],
    paths: [],
    httpIngest: true,
    close: async () => {},
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const http = (req.url ?? '').startsWith('/v1/usage/batch')
      api.paths.push(req.url ?? '')
      if (http && !api.httpIngest) {
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end('Not Found')
        return
      }
      handled += 1
      api.arrivals.push(Date.now())
      const n = handled
      const behaviour = api.behave(n)
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        events?: UsageEvent[]
        variables?: { events: UsageEvent[] }
      }
      const events = (http ? body.events : body.variables?.events) ?? []
      if (behaviour === 'ok' || behaviour === 'lost') {
        api.batches.push(events)
        const results = events.map((e) => {
          api.received.set(e.id, (api.received.get(e.id) ?? 0) + 1)
          if (e.model === 'reject-me')
            return { status: 'REJECTED', error: { code: 'INVALID_INPUT', message: 'no such thing', field: 'model' } }
          if (api.stored.has(e.id)) return { status: 'DUPLICATE', error: null }
          api.stored.set(e.id, e)
          return { status: 'RECORDED', error: null }
        })
        if (behaviour === 'lost') res.destroy()
        else {
          const answer = { results, recorded: 0, duplicates: 0, rejected: 0 }
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(http ? answer : { data: { recordUsageBatch: answer } }))
        }
      } else if (behaviour === 'reset') {
        res.destroy()
      } else {
        res.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers })
        const graphqlBody = behaviour.body ?? { errors: [{ message: `HTTP ${behaviour.status}` }] }
        res.end(JSON.stringify(http ? asRouteError(graphqlBody) : graphqlBody))
      }
      for (const w of waiting.filter((w) => n >= w.n)) w.resolve()
    })
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return api
}

/** A GraphQL error body as /v1/usage/batch says it (`{ error: { code, message } }`); other bodies as they are. */
function asRouteError(body: unknown): unknown {
  const first = (body as { errors?: { message: string; extensions?: { code?: string } }[] } | null)?.errors?.[0]
  if (!first) return body
  return { error: { code: first.extensions?.code, message: first.message, field: null } }
}
