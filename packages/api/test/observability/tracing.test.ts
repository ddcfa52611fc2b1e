import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { startTracing, tracingWanted } from '../../src/observability/tracing.ts'
import { systemClock } from '../../src/runtime.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

const onPostgres = Boolean(process.env.DATABASE_URL)

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
    tracing = startTracing({}, exporter)
    database = await createTestDatabase()
    const config = defaultConfig({ LOG_LEVEL: 'debug', PORT: 0, STRIPE_PUSH_ENABLED: false })
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
})
