import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type ReceiverMode = 'ok' | 'fail' | 'hang' | 'reset'

export interface Delivery {
  headers: IncomingHttpHeaders
  body: string
}

export interface WebhookReceiver {
  url: string
  /** Every request it got, in order. */
  received: Delivery[]
  /** How requests after the script are answered from now on. */
  setFallback(mode: ReceiverMode): void
  close(): Promise<void>
}

/**
 * A tenant's webhook endpoint on a local port: answers each request per `script` (then
 * `fallback`: 204, a 500, a hang until close, or a reset connection) and keeps what it got.
 */
export async function startWebhookReceiver(
  script: ReceiverMode[] = [],
  fallback: ReceiverMode = 'ok',
): Promise<WebhookReceiver> {
  const received: Delivery[] = []
  const hanging: ServerResponse[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      const mode = script.shift() ?? fallback
      if (mode === 'ok') res.writeHead(204).end()
      else if (mode === 'fail') res.writeHead(500, { 'content-type': 'text/plain' }).end('boom')
      else if (mode === 'reset') req.socket.destroy()
      else hanging.push(res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    setFallback: (mode) => (fallback = mode),
    close: () => {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * The README's verification recipe, written independently of the server's code: the timestamp
 * within 300 s, and any v1 entry (there are two while a rotated secret's grace period runs) equal
 * to HMAC-SHA256(secret, "<t>.<body>").
 */
export function receiverVerifies(secret: string, delivery: Delivery, nowSeconds: number): boolean {
  const header = String(delivery.headers['burnrate-signature'] ?? '')
  const pairs = header.split(',').map((kv) => {
    const i = kv.indexOf('=')
    return [kv.slice(0, i).trim(), kv.slice(i + 1).trim()] as const
  })
  const ts = Number(pairs.find(([k]) => k === 't')?.[1])
  if (!Number.isInteger(ts) || Math.abs(nowSeconds - ts) > 300) return false
  const expected = createHmac('sha256', secret).update(`${ts}.${delivery.body}`).digest()
  return pairs
    .filter(([k]) => k === 'v1')
    .some(([, v]) => {
      const given = Buffer.from(v, 'hex')
      return given.length === expected.length && timingSafeEqual(given, expected)
    })
}
