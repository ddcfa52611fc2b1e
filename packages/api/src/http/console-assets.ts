import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Logger } from '../logger.ts'
import type { HttpRoute } from '../shared/http-route.ts'

/**
 * The operator console (packages/console): its built single-page app under /console. Hashed
 * assets are cached for good; every other path under /console answers index.html, so the app's
 * own routes (/console/customers/…) survive a reload. /console/widget/burnrate-spend.js is the
 * spend widget's standalone build, for the console's live widget preview. The console's session
 * endpoints (/console/api/…) are exact routes of their own, matched before this prefix route.
 */
const CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist/', import.meta.url))
const WIDGET_ELEMENT = fileURLToPath(new URL('../../../widget/dist/burnrate-spend.js', import.meta.url))

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
}

const SECURITY_HEADERS = {
  // Scripts and connections: this origin only. Styles may be inline (the widget's Shadow DOM).
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, cache: string) {
  res.writeHead(status, { 'content-type': type, 'cache-control': cache, ...SECURITY_HEADERS })
  res.end(body)
}

/** Builds the console when it is missing or older than its sources (quick when fresh); never fails the start. */
export function ensureConsoleBuild(logger: Logger): void {
  const script = join(CONSOLE_DIST, '..', 'scripts', 'build-if-needed.mjs')
  if (!existsSync(script)) return
  const result = spawnSync(process.execPath, [script], { cwd: join(CONSOLE_DIST, '..'), encoding: 'utf8' })
  if (!existsSync(join(CONSOLE_DIST, 'index.html')))
    logger.warn('console build missing: /console will say so', {
      output: `${result.stdout}${result.stderr}`.slice(-2000),
    })
}

export function consoleRoutes(): HttpRoute[] {
  const handle: HttpRoute['handle'] = (req, res) => {
    let path: string
    try {
      path = decodeURIComponent((req.url ?? '/').split('?')[0]!)
    } catch {
      return send(res, 400, 'text/plain', 'Malformed path', 'no-store')
    }
    if (path === '/console/widget/burnrate-spend.js') {
      if (!existsSync(WIDGET_ELEMENT))
        return send(res, 404, 'text/plain', 'The widget bundle is not built.', 'no-store')
      return send(res, 200, TYPES['.js']!, readFileSync(WIDGET_ELEMENT), 'no-cache')
    }
    if (path.startsWith('/console/assets/')) {
      const file = normalize(join(CONSOLE_DIST, path.slice('/console/'.length)))
      if (!file.startsWith(join(CONSOLE_DIST, 'assets') + sep) || !existsSync(file) || !statSync(file).isFile())
        return send(res, 404, 'text/plain', 'Not found', 'no-store')
      return send(
        res,
        200,
        TYPES[extname(file)] ?? 'application/octet-stream',
        readFileSync(file),
        'public, max-age=31536000, immutable',
      )
    }
    if (path.startsWith('/console/api/'))
      return send(
        res,
        404,
        'application/json',
        JSON.stringify({ error: { code: 'NOT_FOUND', message: `No console endpoint ${path}.` } }),
        'no-store',
      )
    const index = join(CONSOLE_DIST, 'index.html')
    if (!existsSync(index))
      return send(
        res,
        503,
        'text/plain; charset=utf-8',
        'The console is not built: npx pnpm@10 --filter @burnrate/console build',
        'no-store',
      )
    return send(res, 200, TYPES['.html']!, readFileSync(index), 'no-store')
  }
  return [
    { method: 'GET', path: '/console', handle },
    { method: 'GET', path: '/console/', prefix: true, handle },
  ]
}
