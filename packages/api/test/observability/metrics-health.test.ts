/**
 * GET /metrics (token, Prometheus text format, counts that move with ingest), GET /healthz and
 * GET /readyz (a database behind on migrations, an unreachable one), on a real server.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const TOKEN = 'metrics-token-0123456789abcdef'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text exposition format (0.0.4): HELP/TYPE comments and `name{labels} value` lines. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    const value = m[3] === '+Inf' ? Infinity : Number(m[3])
    if (Number.isNaN(value)) throw new Error(`bad value: ${line}`)
    samples.push({ name: m[1]!, labels, value })
  }
  return { samples, types }
}

let t: TestApp
let server: RunningServer

beforeAll(async () => {
  t = await createTestApp({ config: { PORT: 0, METRICS_TOKEN: TOKEN } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})
afterAll(async () => {
  await server?.close()
  await t?.close()
})

async function scrape() {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  const parsed = parseExposition(await res.text())
  const value = (name: string, labels: Record<string, string> = {}) =>
    parsed.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0)
  return { ...parsed, value }
}

describe('GET /metrics', () => {
  it('refuses without the token (401), and with a wrong one', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401)
    const wrong = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer nope-nope-nope-nope' } })
    expect(wrong.status).toBe(401)
    // The tenant key is not the metrics token.
    const tenantKey = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${t.tenant.apiKey}` } })
    expect(tenantKey.status).toBe(401)
  })

  it('is off (401) when METRICS_TOKEN is not set', async () => {
    const other = await createTestApp({ config: { PORT: 0 }, loadCatalog: false })
    const s = await startServer(other.app, other.app.services.config, createLogger('silent'))
    try {
      const res = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.status).toBe(401)
      expect(await res.text()).toMatch(/METRICS_TOKEN/)
    } finally {
      await s.close()
      await other.close()
    }
  })

  it('serves the text format, and its counts move with ingest', async () => {
    const before = await scrape()
    for (const name of [
      'burnrate_usage_events_ingested_total',
      'burnrate_ingest_duration_seconds',
      'burnrate_graphql_operation_duration_seconds',
      'burnrate_subscriptions_active',
      'burnrate_usage_events_unpriced',
      'burnrate_stripe_pushes',
      'burnrate_webhook_deliveries',
      'burnrate_catalog_sync_age_seconds',
      'burnrate_otlp_spans_total',
    ])
      expect(before.types.has(name), name).toBe(true)
    // The catalog was synced when the test app started.
    expect(before.samples.some((s) => s.name === 'burnrate_catalog_sync_age_seconds' && s.labels.source)).toBe(true)
    expect(before.value('burnrate_stripe_pushes', { status: 'PENDING' })).toBe(0)

    const ts = new Date(Date.now() - 60_000).toISOString()
    const r = await t.gql(`mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }`, {
      e: [
        { id: 'm-1', customerId: 'acme', model: 'gpt-4o-mini', timestamp: ts, inputTokens: 10, outputTokens: 5 },
        { id: 'm-2', customerId: 'acme', model: 'no-such-model-xyz', timestamp: ts, inputTokens: 10 },
        { id: 'm-3', customerId: 'acme', model: '', timestamp: ts, inputTokens: 10 },
      ],
    })
    expect(r.errors).toBeUndefined()
    const single = await t.gql(`mutation($e: UsageEventInput!) { recordUsage(event: $e) { status } }`, {
      e: { id: 'm-1', customerId: 'acme', model: 'gpt-4o-mini', timestamp: ts, inputTokens: 10, outputTokens: 5 },
    })
    expect(single.data!.recordUsage.status).toBe('DUPLICATE')

    const after = await scrape()
    const delta = (name: string, labels: Record<string, string> = {}) =>
      after.value(name, labels) - before.value(name, labels)
    expect(delta('burnrate_usage_events_ingested_total', { result: 'RECORDED', status: 'PRICED' })).toBe(1)
    expect(delta('burnrate_usage_events_ingested_total', { result: 'RECORDED', status: 'UNPRICED' })).toBe(1)
    expect(delta('burnrate_usage_events_ingested_total', { result: 'REJECTED' })).toBe(1)
    expect(delta('burnrate_usage_events_ingested_total', { result: 'DUPLICATE' })).toBe(1)
    expect(delta('burnrate_usage_events_unpriced')).toBe(1)
    expect(delta('burnrate_ingest_duration_seconds_count', { outcome: 'ok' })).toBe(2)
    expect(delta('burnrate_graphql_operation_duration_seconds_count', { operation: 'mutation' })).toBe(2)
    expect(after.value('burnrate_graphql_operation_duration_seconds_count', { operation: 'query' })).toBe(0)

    // OTLP spans count too.
    const otlp = await fetch(`${server.url}/v1/traces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tenant.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: '0af7651916cd43dd8448eb211c80319c',
                    spanId: 'b7ad6b7169203331',
                    endTimeUnixNano: String(BigInt(Date.now() - 60_000) * 1_000_000n),
                    attributes: [
                      { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o-mini' } },
                      { key: 'gen_ai.usage.input_tokens', value: { intValue: '7' } },
                    ],
                  },
                  { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203332' },
                ],
              },
            ],
          },
        ],
      }),
    })
    expect(otlp.status).toBe(200)
    const third = await scrape()
    expect(third.value('burnrate_otlp_spans_total', { outcome: 'rejected' })).toBe(1)
    expect(third.value('burnrate_otlp_spans_total', { outcome: 'ignored' })).toBe(1)
    expect(third.value('burnrate_otlp_requests_total', { status: '200' })).toBe(1)
  })

  it('counts open subscriptions', async () => {
    const controller = new AbortController()
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        authorization: `Bearer ${t.tenant.apiKey}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ query: 'subscription { usageUpdates(customerId: "acme") { customerId } }' }),
    })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    await expect.poll(async () => (await scrape()).value('burnrate_subscriptions_active')).toBe(1)
    controller.abort()
    await reader.cancel().catch(() => undefined)
    await expect.poll(async () => (await scrape()).value('burnrate_subscriptions_active')).toBe(0)
  })
})

describe('GET /healthz and /readyz', () => {
  it('/healthz: the process is up', async () => {
    const res = await fetch(`${server.url}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('ok')
  })

  it('/readyz: 200 when the database answers and every migration has run', async () => {
    const res = await fetch(`${server.url}/readyz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ready' })
  })

  it('/readyz: 503 while the database is behind on migrations', async () => {
    const db = t.app.services.db
    const latest = await sql<{
      name: string
    }>`select name from kysely_migration order by timestamp desc, name desc limit 1`.execute(db)
    const name = latest.rows[0]!.name
    await sql`update kysely_migration set name = ${`${name}-renamed`} where name = ${name}`.execute(db)
    try {
      const res = await fetch(`${server.url}/readyz`)
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({
        status: 'unavailable',
        reason: 'migrations pending',
        pendingMigrations: [name],
      })
    } finally {
      await sql`update kysely_migration set name = ${name} where name = ${`${name}-renamed`}`.execute(db)
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
  })

  it('/readyz: 503 when the database is unreachable; /healthz stays 200', async () => {
    const other = await createTestApp({ config: { PORT: 0 }, loadCatalog: false })
    const s = await startServer(other.app, other.app.services.config, createLogger('silent'))
    try {
      await other.app.services.db.destroy()
      const res = await fetch(`${s.url}/readyz`)
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({ status: 'unavailable', reason: 'database unreachable' })
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    } finally {
      await s.close()
      await other.close().catch(() => undefined)
    }
  })
})
