/**
 * GET /metrics (Prometheus text, behind METRICS_TOKEN) and GET /readyz (the database answers and
 * has run every migration of this build). GET /healthz — the process is up — is answered by the
 * server itself, before any routing (server.ts).
 */
import { timingSafeEqual } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { pendingMigrations, type Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { HttpRoute } from '../shared/http-route.ts'
import type { Metrics } from './metrics.ts'
import { ping } from './repository.ts'

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const sameToken = (given: string, expected: string) => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function metricsRoute(deps: { metrics: Metrics; token: string | undefined; logger: Logger }): HttpRoute {
  return {
    method: 'GET',
    path: '/metrics',
    async handle(req, res) {
      const given = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
      if (!deps.token || !given || !sameToken(given, deps.token)) {
        return send(
          res,
          401,
          'text/plain; charset=utf-8',
          deps.token
            ? 'Send "Authorization: Bearer <METRICS_TOKEN>".\n'
            : 'Metrics are off: set METRICS_TOKEN and scrape with "Authorization: Bearer <METRICS_TOKEN>".\n',
          { 'www-authenticate': 'Bearer' },
        )
      }
      try {
        send(res, 200, deps.metrics.registry.contentType, await deps.metrics.scrape())
      } catch (error) {
        deps.logger.error('metrics: scrape failed', { error: error instanceof Error ? error.message : String(error) })
        send(res, 500, 'text/plain; charset=utf-8', 'Unexpected error.\n')
      }
    },
  }
}

export function readinessRoute(deps: { db: Db; logger: Logger }): HttpRoute {
  return {
    method: 'GET',
    path: '/readyz',
    async handle(_req, res) {
      const json = (status: number, body: unknown) =>
        send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), { 'cache-control': 'no-store' })
      try {
        await ping(deps.db)
        const pending = await pendingMigrations(deps.db)
        if (pending.length > 0)
          return json(503, { status: 'unavailable', reason: 'migrations pending', pendingMigrations: pending })
        return json(200, { status: 'ready' })
      } catch (error) {
        deps.logger.warn('readiness: database unreachable', {
          error: error instanceof Error ? error.message : String(error),
        })
        return json(503, { status: 'unavailable', reason: 'database unreachable' })
      }
    },
  }
}
