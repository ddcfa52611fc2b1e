/**
 * Latency the metering gateway adds to a model call: the same request sent straight to a fake
 * provider and through the gateway (tenant-key auth, provider-key lookup, budget lookup, forwarding,
 * usage parsing and recording), alternating one by one so both see the same machine noise. Then
 * the same for a customer with a hard budget: the call's worst case is also priced and held before
 * forwarding (on the process's budget lease, or reserved alone with GATEWAY_BUDGET_LEASE_CALLS=0:
 * one more transaction per call, settled by the recorded usage).
 * Timed from sending the request to reading the last byte of the answer (fetch + text()).
 *
 *   npx tsx bench/gateway-overhead.ts [--requests 2000] [--concurrent 4000] [--clients 16] [--inProcess]
 *
 * The database is PostgreSQL from BENCH_DATABASE_URL (default the local server), a fresh database
 * per run, dropped afterwards; the fake provider answers at once, so the figures are pure overhead.
 * Burnrate runs as its own process, the real start command (`packages/api/src/main.ts`), as Portkey
 * does: this process is only the clients and the fake provider, so neither gateway shares its event
 * loop with them (`--inProcess` serves Burnrate from this process instead, as runs before
 * 2026-12-08 did).
 *
 * Side by side, the open-source Portkey gateway (`@portkey-ai/gateway`, a root dev dependency,
 * started as a child process, aimed at the same fake provider with x-portkey-custom-host): it
 * meters nothing, so it is the bar for "forwarding only". Note: Portkey waits 25 ms before the
 * first streamed event, so its SSE figures include that wait. Then C concurrent clients
 * (--clients, default 16) for --concurrent requests per target: requests/s and latency.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

process.env.DATABASE_URL ??= process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const { createApp } = await import('../packages/api/src/app.ts')
const { systemClock } = await import('../packages/api/src/clock.ts')
const { defaultConfig } = await import('../packages/api/src/config.ts')
const { createLogger } = await import('../packages/api/src/logger.ts')
const { startServer } = await import('../packages/api/src/server.ts')
const { createTestDatabase } = await import('../packages/api/test/support/db.ts')
const { startApiProcess } = await import('../test/support/api-process.ts')

const { values } = parseArgs({
  options: {
    requests: { type: 'string' },
    warmup: { type: 'string' },
    clients: { type: 'string' },
    concurrent: { type: 'string' },
    inProcess: { type: 'boolean' },
  },
  strict: true,
})
const REQUESTS = Number(values.requests ?? process.env.BENCH_REQUESTS ?? 2000)
const WARMUP = Number(values.warmup ?? process.env.BENCH_WARMUP ?? 500)
const CLIENTS = Number(values.clients ?? process.env.BENCH_CLIENTS ?? 16)
const CONCURRENT = Number(values.concurrent ?? process.env.BENCH_CONCURRENT ?? 4000)

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
const gatewayEncryptionKey = randomBytes(32).toString('hex')
const config = defaultConfig({
  PORT: 0,
  LOG_LEVEL: 'silent',
  GRAPHIQL: false,
  GATEWAY_ENCRYPTION_KEY: gatewayEncryptionKey,
  GATEWAY_OPENAI_URL: upstreamUrl,
})
const logger = createLogger('silent')
// Set-up and the final counts; with --inProcess it also serves the gateway.
const app = createApp({ db: database.db, clock: systemClock, config, logger })
await app.services.catalog.syncBundled()
const { tenant, apiKey } = await app.services.tenants.create({ name: 'bench gateway' })
await app.services.gateway.setProviderKey(tenant, 'openai', 'sk-bench-upstream-key')
// Never reached: every call is reserved, forwarded and settled.
await app.services.budgets.setBudget(tenant, {
  customerId: 'bench-hard-customer',
  period: 'MONTH',
  limit: '1000000000',
  hardLimit: true,
})
let gatewayUrl: string
let closeGateway: () => Promise<unknown>
if (values.inProcess) {
  const server = await startServer(app, config, logger)
  gatewayUrl = server.url
  closeGateway = async () => {
    await server.close()
    await app.services.usage.drain()
  }
} else {
  if (!database.url) throw new Error('the gateway process needs PostgreSQL (BENCH_DATABASE_URL)')
  const api = await startApiProcess(
    {
      DATABASE_URL: database.url,
      GATEWAY_ENCRYPTION_KEY: gatewayEncryptionKey,
      GATEWAY_OPENAI_URL: upstreamUrl,
      DEV_TENANT: 'false',
      GRAPHIQL: 'false',
      CATALOG_SYNC_ON_START: 'false',
      LOG_LEVEL: 'warn',
    },
    90_000,
    // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a CPU profile of the gateway process (bench/profile-top.ts reads it).
    process.env.BENCH_GATEWAY_NODE_ARGS?.split(/\s+/).filter(Boolean),
  )
  gatewayUrl = api.url.replace(/\/graphql$/, '')
  // SIGTERM: the process drains its group commit before it exits.
  closeGateway = () => api.stop()
}

let closed: Promise<unknown> | null = null
const stopGateway = () => (closed ??= closeGateway())

// ------------------------------------------------------------------ Portkey, same fake provider

const portkeyScript = fileURLToPath(
  new URL('../node_modules/@portkey-ai/gateway/build/start-server.js', import.meta.url),
)
let portkey: ChildProcess | null = null
let portkeyUrl: string | null = null
if (existsSync(portkeyScript)) {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
  portkey = fork(portkeyScript, [`--port=${port}`, '--headless'], { execArgv: [], stdio: 'ignore' })
  portkeyUrl = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try {
      await fetch(portkeyUrl)
      break
    } catch {
      if (i > 100) throw new Error('Portkey did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
  }
} else {
  console.log('Portkey gateway not installed (node_modules/@portkey-ai/gateway): its columns are skipped')
}
const portkeyHeaders = {
  authorization: 'Bearer sk-bench-upstream-key',
  'x-portkey-provider': 'openai',
  'x-portkey-custom-host': `${upstreamUrl}/v1`,
}

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
  const viaGateway = `${gatewayUrl}/v1/chat/completions`
  const gatewayHeaders = {
    authorization: `Bearer ${apiKey}`,
    'burnrate-customer': options.customer ?? 'bench-customer',
  }
  const viaPortkey = portkeyUrl && `${portkeyUrl}/v1/chat/completions`
  const d: number[] = []
  const g: number[] = []
  const diff: number[] = []
  const p: number[] = []
  const pdiff: number[] = []
  const total = options.warmupOnly ? WARMUP : REQUESTS
  for (let i = 0; i < total; i++) {
    const a = await timedCall(direct, body, {})
    const b = await timedCall(viaGateway, body, gatewayHeaders)
    const c = viaPortkey ? await timedCall(viaPortkey, body, portkeyHeaders) : NaN
    if (options.warmupOnly) continue
    d.push(a)
    g.push(b)
    diff.push(b - a)
    if (viaPortkey) {
      p.push(c)
      pdiff.push(c - a)
    }
  }
  if (options.warmupOnly) return
  for (const list of [d, g, diff, p, pdiff]) list.sort((x, y) => x - y)
  const f = (n: number) => `${n.toFixed(2)} ms`
  console.log(`${name}`)
  console.log(`  direct to provider   p50 ${f(pct(d, 50))}  p99 ${f(pct(d, 99))}`)
  console.log(`  through Burnrate     p50 ${f(pct(g, 50))}  p99 ${f(pct(g, 99))}`)
  console.log(`  Burnrate added       p50 ${f(pct(diff, 50))}  p99 ${f(pct(diff, 99))}   (paired)`)
  if (viaPortkey) {
    console.log(`  through Portkey      p50 ${f(pct(p, 50))}  p99 ${f(pct(p, 99))}`)
    console.log(`  Portkey added        p50 ${f(pct(pdiff, 50))}  p99 ${f(pct(pdiff, 99))}   (paired)`)
  }
}

/** C clients, each with one call in flight, until `total` calls are done: requests/s and latency. */
async function concurrent(url: string, body: string, headers: Record<string, string>, total: number) {
  const latencies: number[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < total) {
        next += 1
        latencies.push(await timedCall(url, body, headers))
      }
    }),
  )
  const seconds = (performance.now() - start) / 1000
  latencies.sort((x, y) => x - y)
  return { rate: total / seconds, p50: pct(latencies, 50), p99: pct(latencies, 99) }
}

async function concurrentScenario(name: string, stream: boolean, customer = 'bench-customer') {
  const body = JSON.stringify({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'hi' }],
    ...(stream ? { stream: true } : {}),
  })
  const targets: [string, string, Record<string, string>][] = [
    ['direct to provider', `${upstreamUrl}/v1/chat/completions`, {}],
    [
      'through Burnrate',
      `${gatewayUrl}/v1/chat/completions`,
      { authorization: `Bearer ${apiKey}`, 'burnrate-customer': customer },
    ],
    ...(portkeyUrl
      ? [
          ['through Portkey', `${portkeyUrl}/v1/chat/completions`, portkeyHeaders] as [
            string,
            string,
            Record<string, string>,
          ],
        ]
      : []),
  ]
  console.log(`${name}, ${CLIENTS} concurrent clients, ${CONCURRENT} calls per target`)
  let directP50 = 0
  for (const [label, url, headers] of targets) {
    await concurrent(url, body, headers, Math.min(200, CONCURRENT))
    const r = await concurrent(url, body, headers, CONCURRENT)
    if (label.startsWith('direct')) directP50 = r.p50
    console.log(
      `  ${label.padEnd(20)} ${Math.round(r.rate).toString().padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${label.startsWith('direct') ? '' : `  (p50 added vs direct ${(r.p50 - directP50).toFixed(2)} ms)`}`,
    )
  }
}

const [one, five] = loadavg()
console.log(`\n=== Gateway overhead: POST /v1/chat/completions`)
console.log(
  `date ${new Date().toISOString()}, node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model}), load average ${one!.toFixed(2)} / ${five!.toFixed(2)}`,
)
console.log(
  `settings ${JSON.stringify({ requests: REQUESTS, warmup: WARMUP, clients: CLIENTS, concurrent: CONCURRENT, database: database.url ? 'PostgreSQL' : 'PGlite', burnrate: values.inProcess ? 'in this process' : 'own process', portkey: portkeyUrl ? 'yes' : 'not installed' })}`,
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
  await concurrentScenario('JSON answer', false)
  await concurrentScenario('JSON answer, hard budget', false, 'bench-hard-customer')
  await stopGateway()
  // Settled by their call's event, or (leases) released once their calls were recorded: none left open.
  const open = await database.db
    .selectFrom('budget_reservations')
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('settled_event_id').as('settled')])
    .where('tenant_id', '=', tenant.id)
    .where('settled_at', 'is', null)
    .executeTakeFirstOrThrow()
  const all = await database.db
    .selectFrom('budget_reservations')
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('settled_event_id').as('settled')])
    .where('tenant_id', '=', tenant.id)
    .executeTakeFirstOrThrow()
  console.log(
    `hard-budget reservations: ${all.n} (${all.settled} settled by a call's event, the rest leases released), still open: ${open.n}`,
  )
  const recorded = await database.db
    .selectFrom('usage_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenant.id)
    .executeTakeFirstOrThrow()
  console.log(
    `events recorded ${recorded.n} of ${3 * WARMUP + 4 * REQUESTS + 2 * (CONCURRENT + Math.min(200, CONCURRENT))} gateway calls`,
  )
} finally {
  await stopGateway()
  await database.destroy()
  upstream.close()
  portkey?.kill()
}
process.exit(0)
