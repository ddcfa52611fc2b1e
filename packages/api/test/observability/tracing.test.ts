import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { inSpan, startTracing, tracedFetch, tracingWanted } from '../../src/observability/tracing.ts'
import { systemClock } from '../../src/runtime.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { wsSubscribe } from '../support/subscription-clients.ts'

const onPostgres = Boolean(process.env.DATABASE_URL)
const METRICS_TOKEN = 'metrics-token-for-tracing-test'

const RECORD = /* GraphQL */ `
  mutation Record($event: UsageEventInput!) {
    recordUsage(event: $event) {
      status
    }
  }
`

describe(`OpenTelemetry tracing of the API (${onPostgres ? 'PostgreSQL' : 'PGlite'})`, () => {
  const exporter = new InMemorySpanExporter()
  const lines: Record<string, unknown>[] = []
  let tracing: { shutdown(): Promise<void> }
  let database: TestDatabase
  let app: App
  let server: RunningServer
  let apiKey: string
  let tenantId: string

  beforeAll(async () => {
    tracing = startTracing({ OTEL_SERVICE_NAME: 'burnrate-traced' }, exporter)
    database = await createTestDatabase()
    const config = defaultConfig({
      LOG_LEVEL: 'debug',
      PORT: 0,
      STRIPE_PUSH_ENABLED: false,
      METRICS_TOKEN: METRICS_TOKEN,
    })
    const logger = createLogger('debug', (line) => lines.push(JSON.parse(line) as Record<string, unknown>))
    app = createApp({ db: database.db, clock: systemClock, config, logger })
    await app.services.catalog.syncBundled()
    const created = await app.services.tenants.create({ name: 'Traced' })
    apiKey = created.apiKey
    tenantId = created.tenant.id
    server = await startServer(app, config, logger)
  })
  afterAll(async () => {
    await server?.close()
    await app?.services.usage.drain()
    await database?.destroy()
    await tracing?.shutdown()
  })

  it('is off by default and on with the standard OTEL variables', () => {
    expect(tracingWanted({})).toBe(false)
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true)
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true)
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(
      false,
    )
  })

  it('a recordUsage call under a W3C traceparent: server span → GraphQL span → database spans, trace id on the log line', async () => {
    exporter.reset()
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const parentSpanId = '00f067aa0ba902b7'
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${apiKey}`,
        traceparent: `00-${traceId}-${parentSpanId}-01`,
      },
      body: JSON.stringify({
        query: RECORD,
        operationName: 'Record',
        variables: {
          event: {
            id: 'traced-1',
            customerId: 'c1',
            model: 'gpt-4o-mini',
            provider: 'openai',
            inputTokens: 10,
            outputTokens: 5,
            timestamp: new Date().toISOString(),
          },
        },
      }),
    })
    const body = (await response.json()) as { data: { recordUsage: { status: string } } }
    expect(body.data, JSON.stringify(body)).toBeTruthy()
    expect(response.headers.get('x-request-id')).toBeTruthy()
    expect(body.data.recordUsage.status).toBe('RECORDED')
    let spans: ReadableSpan[] = []
    for (let i = 0; i < 100; i++) {
      spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
      if (spans.some((s) => s.name === 'POST /graphql')) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const server_ = spans.find((s) => s.name === 'POST /graphql')!
    expect(server_, spans.map((s) => s.name).join(', ')).toBeDefined()
    expect(server_.parentSpanContext?.spanId).toBe(parentSpanId)
    const op = spans.find((s) => s.name === 'graphql.mutation Record')!
    expect(op.parentSpanContext?.spanId).toBe(server_.spanContext().spanId)
    expect(op.attributes).toMatchObject({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'Record',
      'burnrate.tenant_id': tenantId,
    })
    const dbSpans = spans.filter((s) => s.attributes['db.system.name'] === 'postgresql')
    expect(dbSpans.some((s) => s.name.startsWith('INSERT') || s.name === 'SQL')).toBe(true)
    // Every database span of this call is inside the operation's subtree.
    const ids = new Set(spans.map((s) => s.spanContext().spanId))
    for (const s of dbSpans) expect(ids.has(s.parentSpanContext!.spanId)).toBe(true)
    expect(dbSpans.some((s) => s.parentSpanContext?.spanId === op.spanContext().spanId)).toBe(true)
    // The log line of the operation carries the trace id and its span id.
    const line = lines.find((l) => l.msg === 'graphql operation' && l.operation === 'Record')
    expect(line).toMatchObject({ traceId, spanId: op.spanContext().spanId })
    expect(typeof line!.requestId).toBe('string')
  })
  /** Spans of one trace, once a span named `name` among them has ended. */
  async function spansOf(traceId: string, name: string): Promise<ReadableSpan[]> {
    let spans: ReadableSpan[] = []
    for (let i = 0; i < 100; i++) {
      spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
      if (spans.some((s) => s.name === name)) return spans
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error(`no span ${name} in ${spans.map((s) => s.name).join(', ')}`)
  }

  it('spans carry service.name from OTEL_SERVICE_NAME', async () => {
    exporter.reset()
    await fetch(`${server.url}/healthz`)
    await inSpan('probe', {}, async () => undefined)
    const probe = exporter.getFinishedSpans().find((s) => s.name === 'probe')!
    expect(probe.resource.attributes['service.name']).toBe('burnrate-traced')
    expect(probe.resource.attributes['telemetry.sdk.name']).toBe('opentelemetry')
  })

  it('a failed operation marks its span with the error code of the contract', async () => {
    exporter.reset()
    const traceId = 'aaf92f3577b34da6a3ce929d0e0e4736'
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${apiKey}`,
        traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify({
        query: 'query Backwards { usageSummary(from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { amount } }',
        operationName: 'Backwards',
      }),
    })
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] }
    expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe('BAD_USER_INPUT')
    const spans = await spansOf(traceId, 'POST /graphql')
    const op = spans.find((s) => s.name === 'graphql.query Backwards')!
    expect(op, spans.map((s) => s.name).join(', ')).toBeDefined()
    expect(op.attributes['graphql.error.code']).toBe('BAD_USER_INPUT')
    expect(op.status.code).toBe(SpanStatusCode.ERROR)
  })

  it('an outgoing call is a CLIENT span whose traceparent reaches the receiver, without the query string', async () => {
    let received: IncomingHttpHeaders = {}
    const receiver: Server = createServer((req, res) => {
      received = req.headers
      res.writeHead(204).end()
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    try {
      const port = (receiver.address() as AddressInfo).port
      exporter.reset()
      const doFetch = tracedFetch()
      const parent = await inSpan('job', {}, async (span) => {
        const answer = await doFetch(`http://127.0.0.1:${port}/hook?token=secret-value`, { method: 'POST', body: '{}' })
        expect(answer.status).toBe(204)
        return span.spanContext()
      })
      const client = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)!
      expect(client.name).toBe(`POST 127.0.0.1:${port}`)
      expect(client.parentSpanContext?.spanId).toBe(parent.spanId)
      expect(client.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 204,
        'url.full': `http://127.0.0.1:${port}/hook`,
      })
      expect(JSON.stringify(client.attributes)).not.toContain('secret-value')
      expect(received.traceparent).toBe(`00-${parent.traceId}-${client.spanContext().spanId}-01`)
    } finally {
      receiver.close()
    }
  })

  it('an operation over WebSocket logs with its own request id', async () => {
    lines.length = 0
    const ws = wsSubscribe<{ viewer: { tenant: { id: string } } }>(
      `${server.url}/graphql`,
      apiKey,
      'query WsViewer { viewer { tenant { id } } }',
    )
    try {
      const result = await ws.next()
      expect(result.data?.viewer.tenant.id, JSON.stringify(result)).toBe(tenantId)
    } finally {
      await ws.dispose()
    }
    const line = lines.find((l) => l.msg === 'graphql operation' && l.operation === 'WsViewer')
    expect(line, JSON.stringify(lines.slice(-5))).toBeDefined()
    expect(typeof line!.requestId).toBe('string')
    expect(typeof line!.traceId).toBe('string')
  })
  it('/metrics still reports the database pool with tracing on (the traced db shares the pool)', async () => {
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    expect(response.status).toBe(200)
    const text = await response.text()
    if (onPostgres) expect(text).toMatch(/^burnrate_db_pool_connections\{state="max"\} 10$/m)
    else expect(text).not.toMatch(/^burnrate_db_pool_connections\{/m) // PGlite: one connection, no pool
  })
})
