/**
 * Latency the metering gateway adds to a model call: the same request sent straight to a fake
 * provider and through the gateway (tenant-key auth, provider-key lookup, budget lookup, forwarding,
 * usage parsing and recording), alternating one by one so both see the same machine noise. Then
 * the same for a customer with a hard budget: the call's worst case is also priced and reserved
 * before forwarding (one more transaction) and settled by the recorded usage.
 * Timed from sending the request to reading the last byte of the answer (fetch + text()).
 *
 *   npx tsx bench/gateway-overhead.ts [--requests 2000]
 *
 * The database is PostgreSQL from BENCH_DATABASE_URL (default the local server), a fresh database
 * per run, dropped afterwards; the fake provider answers at once, so the figures are pure overhead.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'

process.env.DATABASE_URL ??= process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const { createApp } = await import('../packages/api/src/app.ts')
const { systemClock } = await import('../packages/api/src/clock.ts')
const { defaultConfig } = await import('../packages/api/src/config.ts')
const { createLogger } = await import('../packages/api/src/logger.ts')
const { startServer } = await import('../packages/api/src/server.ts')
const { createTestDatabase } = await import('../packages/api/test/support/db.ts')

const { values } = parseArgs({ options: { requests: { type: 'string' } }, strict: true })
const REQUESTS = Number(values.requests ?? process.env.BENCH_REQUESTS ?? 2000)
const WARMUP = 500

const completion = JSON.parse(
  readFileSync(new URL('../packages/sdk/test/fixtures/openai-chat-completion.json', import.meta.url), 'utf8'),
)
const chunks = JSON.parse(
  readFileSync(new URL('../packages/sdk/test/fixtures/openai-chat-stream.json', import.meta.url), 'utf8'),
) as Record<string, unknown>[]

// ------------------------------------------------------------------ a provider that answers at once

let served = 0
const upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
  const body: Buffer[] = []
  req.on('data', (c: Buffer) => body.push(c))
  req.on('end', () => {
    served += 1
    const request = JSON.parse(Buffer.concat(body).toString('utf8')) as { stream?: boolean }
    const id = `chatcmpl-bench-${served}-${randomBytes(4).toString('hex')}`
    const created = Math.floor(Date.now() / 1000)
    if (request.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(chunks.map((c) => `data: ${JSON.stringify({ ...c, id, created })}\n\n`).join('') + 'data: [DONE]\n\n')
    } else {
      const text = JSON.stringify({ ...completion, id, created })
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
  })
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

// ------------------------------------------------------------------ the API with its gateway

const database = await createTestDatabase()
const config = defaultConfig({
  PORT: 0,
  LOG_LEVEL: 'silent',
  GRAPHIQL: false,
  GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
  GATEWAY_OPENAI_URL: upstreamUrl,
})
const logger = createLogger('silent')
const app = createApp({ db: database.db, clock: systemClock, config, logger })
await app.services.catalog.syncBundled()
const { tenant, apiKey } = await app.services.tenants.create({ name: 'bench gateway' })
await app.services.gateway.setProviderKey(tenant, 'openai', 'sk-bench-upstream-key')
const server = await startServer(app, config, logger)
// Never reached: every call is reserved, forwarded and settled.
await app.services.budgets.setBudget(tenant, {
  customerId: 'bench-hard-customer',
  period: 'MONTH',
  limit: '1000000000',
  hardLimit: true,
})

// ------------------------------------------------------------------ measurement

async function timedCall(url: string, body: string, headers: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint()
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })
  await response.text()
  if (response.status !== 200) throw new Error(`HTTP ${response.status} from ${url}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

async function scenario(name: string, stream: boolean, options: { warmupOnly?: boolean; customer?: string } = {}) {
  const body = JSON.stringify({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'hi' }],
    ...(stream ? { stream: true } : {}),
  })
  const direct = `${upstreamUrl}/v1/chat/completions`
  const viaGateway = `${server.url}/v1/chat/completions`
  const gatewayHeaders = {
    authorization: `Bearer ${apiKey}`,
    'burnrate-customer': options.customer ?? 'bench-customer',
  }
  const d: number[] = []
  const g: number[] = []
  const diff: number[] = []
  const total = options.warmupOnly ? WARMUP : REQUESTS
  for (let i = 0; i < total; i++) {
    const a = await timedCall(direct, body, {})
    const b = await timedCall(viaGateway, body, gatewayHeaders)
    if (options.warmupOnly) continue
    d.push(a)
    g.push(b)
    diff.push(b - a)
  }
  if (options.warmupOnly) return
  for (const list of [d, g, diff]) list.sort((x, y) => x - y)
  const f = (n: number) => `${n.toFixed(2)} ms`
  console.log(`${name}`)
  console.log(`  direct to provider   p50 ${f(pct(d, 50))}  p99 ${f(pct(d, 99))}`)
  console.log(`  through the gateway  p50 ${f(pct(g, 50))}  p99 ${f(pct(g, 99))}`)
  console.log(`  added (paired)       p50 ${f(pct(diff, 50))}  p99 ${f(pct(diff, 99))}`)
}

const [one, five] = loadavg()
console.log(`\n=== Gateway overhead: POST /v1/chat/completions`)
console.log(
  `date ${new Date().toISOString()}, node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model}), load average ${one!.toFixed(2)} / ${five!.toFixed(2)}`,
)
console.log(
  `settings ${JSON.stringify({ requests: REQUESTS, warmup: WARMUP, database: database.url ? 'PostgreSQL' : 'PGlite' })}`,
)
try {
  // Both paths warmed up (JIT, connection pools, catalog snapshot) before anything is measured.
  await scenario('warm-up', false, { warmupOnly: true })
  await scenario('warm-up', true, { warmupOnly: true })
  await scenario('JSON answer (usage recorded after the answer is written)', false)
  await scenario('SSE stream (usage recorded before the stream ends)', true)
  await scenario('warm-up', false, { warmupOnly: true, customer: 'bench-hard-customer' })
  await scenario('JSON answer, hard budget (worst case reserved before, settled by the usage)', false, {
    customer: 'bench-hard-customer',
  })
  await scenario('SSE stream, hard budget', true, { customer: 'bench-hard-customer' })
  const open = await database.db
    .selectFrom('budget_reservations')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenant.id)
    .where('settled_event_id', 'is', null)
    .executeTakeFirstOrThrow()
  console.log(`hard-budget reservations not settled by an event: ${open.n}`)
  const recorded = await database.db
    .selectFrom('usage_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenant.id)
    .executeTakeFirstOrThrow()
  console.log(`events recorded ${recorded.n} of ${3 * WARMUP + 4 * REQUESTS} gateway calls`)
} finally {
  await server.close()
  await database.destroy()
  upstream.close()
}
process.exit(0)
