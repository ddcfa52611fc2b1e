import type { IncomingMessage, ServerResponse } from 'node:http'

/** What a request may do before its body is read, decided from its method, path and headers alone. */
export type Admission =
  | {
      ok: true
      maxBodyBytes: number
      /** The 413 body in the route's own error format (default: a GraphQL-style error). */
      tooLarge?: (limit: number) => unknown
    }
  | { ok: false; status: number; headers?: Record<string, string>; payload: unknown }

/**
 * A plain HTTP endpoint beside /graphql (webhooks from Stripe, provider-compatible gateways…).
 * The server reads the body before calling it: up to what `admit` allows from the headers alone
 * (an authenticated caller: MAX_BODY_BYTES), or ANONYMOUS_MAX_BODY_BYTES for a route without it.
 */
export interface HttpRoute {
  method: 'GET' | 'POST' | 'DELETE'
  path: string
  /** Also answers every path under `path` (which then ends with "/"); exact routes are matched first. */
  prefix?: boolean
  admit?(req: IncomingMessage): Promise<Admission>
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> | void
}

/** The route for a request: an exact path first, else the longest prefix route. */
export function findRoute(routes: HttpRoute[], method: string | undefined, path: string): HttpRoute | undefined {
  let found: HttpRoute | undefined
  for (const r of routes) {
    if (r.method !== method) continue
    if (r.path === path && !r.prefix) return r
    if (r.prefix && path.startsWith(r.path) && (!found || r.path.length > found.path.length)) found = r
  }
  return found
}
