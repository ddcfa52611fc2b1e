/**
 * Alert latency: from `recordUsage` returning to the budget alert it raised arriving at a live
 * subscriber. One real API server (node:http, yoga) on a fresh database; a tenant subscribed to
 * `budgetAlerts` with the real graphql-ws (or graphql-sse) client; N customers, each with a budget
 * that its first event crosses (one alert each), recorded one at a time over HTTP.
 *
 *   npx tsx bench/alert-latency.ts [--alerts 300] [--transport ws|sse] [--redis redis://127.0.0.1:6379]
 *
 * Database: PostgreSQL when DATABASE_URL is set (a fresh database on that server, dropped after),
 * else in-memory PGlite. With --redis the pubsub goes through Redis (as with several processes).
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createApp } from '../packages/api/src/app.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { defaultConfig } from '../packages/api/src/config.ts'
import { createLogger } from '../packages/api/src/logger.ts'
import { startServer } from '../packages/api/src/server.ts'
import { createRedisPubSub } from '../packages/api/src/subscriptions/redis.ts'
import { createTestDatabase } from '../packages/api/test/support/db.ts'
import { sseSubscribe, wsSubscribe } from '../packages/api/test/support/subscription-clients.ts'

const { values } = parseArgs({
  options: {
    alerts: { type: 'string', default: '300' },
    transport: { type: 'string', default: 'ws' },
    redis: { type: 'string' },
  },
})
const ALERTS = Number(values.alerts)
const transport = values.transport === 'sse' ? 'sse' : 'ws'

const logger = createLogger(process.env.BENCH_LOG === '1' ? 'error' : 'silent')
const database = await createTestDatabase()
const config = defaultConfig({ LOG_LEVEL: 'silent', PORT: 0 })
const redis = values.redis
  ? await createRedisPubSub(values.redis, `bench-${randomBytes(4).toString('hex')}:`, logger)
  : undefined
const app = createApp({
  db: database.db,
  clock: systemClock,
  config,
  logger,
  ...(redis ? { pubsub: redis.pubsub } : {}),
})
await app.services.catalog.syncBundled()
const { apiKey } = await app.services.tenants.create({ name: 'Bench' })
const server = await startServer(app, config, logger)
const url = `${server.url}/graphql`

async function gql(query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ query, variables }),
  })
  const body = (await response.json()) as { data?: any; errors?: unknown[] }
  if (body.errors) throw new Error(JSON.stringify(body.errors))
  return body.data
}

for (let i = 0; i < ALERTS; i++) {
  await gql(
    `mutation ($c: String!) { setBudget(input: { customerId: $c, period: MONTH, limit: "0.000001", thresholds: [100] }) { id } }`,
    { c: `cust-${i}` },
  )
}

const subscribe = transport === 'sse' ? sseSubscribe : wsSubscribe
const sub = subscribe(url, apiKey, `subscription { budgetAlerts { customerId threshold } }`)
const arrivals = new Map<string, number>()
const waiting = new Map<string, (at: number) => void>()
void (async () => {
  for (;;) {
    const result = await sub.next(600_000).catch(() => null)
    if (!result) return
    const at = performance.now()
    const customer = result.data?.budgetAlerts.customerId as string
    arrivals.set(customer, at)
    waiting.get(customer)?.(at)
  }
})()

// Warm-up: the subscription is live once an alert comes through (not measured).
const record = (customerId: string, id: string) =>
  gql(`mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }`, {
    e: {
      id,
      customerId,
      model: 'gpt-4o',
      timestamp: new Date(Date.now() - 1000).toISOString(),
      inputTokens: 1000,
      outputTokens: 100,
    },
  })
// The subscription gives no signal when it is in place: alert fresh warm-up customers until one arrives.
for (let k = 0; ; k++) {
  if (k === 100) throw new Error('the subscription never received an alert')
  await gql(
    `mutation ($c: String!) { setBudget(input: { customerId: $c, period: MONTH, limit: "0.000001", thresholds: [100] }) { id } }`,
    { c: `warm-${k}` },
  )
  const warm = new Promise<number>((resolve) => waiting.set(`warm-${k}`, resolve))
  await record(`warm-${k}`, `warm-${k}`)
  if (await Promise.race([warm.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))])) break
}

const fromReturn: number[] = []
const fromSend: number[] = []
let beforeReturn = 0
for (let i = 0; i < ALERTS; i++) {
  const customer = `cust-${i}`
  const arrived = new Promise<number>((resolve) => {
    const already = arrivals.get(customer)
    if (already !== undefined) resolve(already)
    else waiting.set(customer, resolve)
  })
  const sent = performance.now()
  await record(customer, `evt-${i}`)
  const returned = performance.now()
  const at = await arrived
  waiting.delete(customer)
  if (at < returned) beforeReturn += 1
  fromReturn.push(Math.max(0, at - returned))
  fromSend.push(at - sent)
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}
const fmt = (ms: number) => `${ms.toFixed(2)} ms`
console.log(
  `alert latency over ${transport.toUpperCase()}${redis ? ' through Redis' : ' (in-process pubsub)'}, ${database.url ? 'PostgreSQL' : 'PGlite'}, ${ALERTS} alerts`,
)
console.log(
  `  recordUsage returned -> alert received: p50 ${fmt(pct(fromReturn, 50))}  p95 ${fmt(pct(fromReturn, 95))}  p99 ${fmt(pct(fromReturn, 99))}  max ${fmt(Math.max(...fromReturn))}`,
)
console.log(`  (${beforeReturn} of ${ALERTS} alerts arrived before recordUsage's response did; counted as 0)`)
console.log(
  `  recordUsage sent     -> alert received: p50 ${fmt(pct(fromSend, 50))}  p95 ${fmt(pct(fromSend, 95))}  p99 ${fmt(pct(fromSend, 99))}`,
)

await sub.dispose()
await server.close()
await redis?.close()
await database.destroy()
process.exit(0)
