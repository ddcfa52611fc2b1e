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
  method: 'GET' | 'POST'
  path: string
  admit?(req: IncomingMessage): Promise<Admission>
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> | void
}
