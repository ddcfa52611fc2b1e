import { existsSync, readdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consoleRoutes } from '../../src/http/console-assets.ts'
import { findRoute, type HttpRoute } from '../../src/shared/http-route.ts'

/**
 * The console's static serving: the SPA's index.html for every path under /console (deep links
 * survive a reload), hashed assets cached for good, no path escaping the build, and exact routes
 * (the console session endpoints) winning over the prefix route.
 */
const DIST = fileURLToPath(new URL('../../../console/dist/', import.meta.url))
const built = existsSync(`${DIST}index.html`)

describe.skipIf(!built)('console assets under /console', () => {
  let server: Server
  let origin: string
  const exact: HttpRoute = {
    method: 'GET',
    path: '/console/api/session',
    handle: (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"exact":true}'),
  }
  const routes = [...consoleRoutes(), exact]

  beforeAll(async () => {
    server = createServer((req, res) => {
      const route = findRoute(routes, req.method, (req.url ?? '/').split('?')[0] ?? '/')
      if (!route) return void res.writeHead(404).end()
      void route.handle(req, res, Buffer.alloc(0))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('answers index.html for the app and its deep links, uncached, with a strict CSP', async () => {
    for (const path of ['/console', '/console/', '/console/customers/demo-lumen', '/console/prices?x=1']) {
      const response = await fetch(origin + path)
      expect(response.status, path).toBe(200)
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
      expect(response.headers.get('cache-control')).toBe('no-store')
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'")
      expect(response.headers.get('x-frame-options')).toBe('DENY')
      expect(await response.text()).toContain('<div id="root"></div>')
    }
  })

  it('serves hashed assets immutable, and nothing outside the build', async () => {
    const js = readdirSync(`${DIST}assets`).find((f) => f.endsWith('.js'))!
    const asset = await fetch(`${origin}/console/assets/${js}`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    for (const path of [
      '/console/assets/missing.js',
      '/console/assets/..%2f..%2fpackage.json',
      '/console/assets/%E0%A4%A',
    ]) {
      const response = await fetch(origin + path)
      expect([400, 404], path).toContain(response.status)
    }
  })

  it('leaves /console/api/ to exact routes: a known one answers, an unknown one is a coded 404', async () => {
    expect(await (await fetch(`${origin}/console/api/session`)).json()).toEqual({ exact: true })
    const unknown = await fetch(`${origin}/console/api/nope`)
    expect(unknown.status).toBe(404)
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND')
  })

  it('serves the spend widget element for the live preview', async () => {
    const response = await fetch(`${origin}/console/widget/burnrate-spend.js`)
    expect([200, 404]).toContain(response.status)
    if (response.status === 200) expect(response.headers.get('content-type')).toContain('text/javascript')
  })
})
