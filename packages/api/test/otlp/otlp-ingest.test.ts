/**
 * POST /v1/traces end to end: real OTLP exporters (protobuf and JSON, gzip too) from a real
 * NodeTracerProvider, aimed at a real API server on 127.0.0.1, with spans shaped as
 * @opentelemetry/instrumentation-openai and the Vercel AI SDK produce them (fixtures/). What they
 * meter must equal, in usageSummary, the same usage sent by recordUsageBatch.
 */
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { SpanKind, type Attributes } from '@opentelemetry/api'
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

interface FixtureSpan {
  name: string
  kind: keyof typeof SpanKind
  attributes: Attributes
}
const fixture = (name: string): FixtureSpan[] =>
  (JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as { spans: FixtureSpan[] })
    .spans

const OPENAI = fixture('openai-instrumentation')
const AI_SDK = fixture('vercel-ai-sdk')

let t: TestApp
let server: RunningServer
const tracesUrl = () => `${server.url}/v1/traces`

// Every span of a run ends within the last two hours, on whole milliseconds.
const base = new Date(Math.floor((Date.now() - 2 * 3_600_000) / 60_000) * 60_000)
const at = (seconds: number) => new Date(base.getTime() + seconds * 1_000)
const FROM = new Date(base.getTime() - 3_600_000).toISOString()
const TO = new Date(base.getTime() + 3 * 3_600_000).toISOString()

beforeAll(async () => {
  t = await createTestApp({ config: { PORT: 0 } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})

afterAll(async () => {
  await server?.close()
  await t?.close()
})

/** Spans from a real provider, as ReadableSpans (for the serializers and for exporter.export). */
async function makeSpans(spans: FixtureSpan[], start = 0): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter()
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] })
  const tracer = provider.getTracer('burnrate-test')
  spans.forEach((s, i) => {
    const span = tracer.startSpan(s.name, {
      kind: SpanKind[s.kind],
      attributes: s.attributes,
      startTime: at(start + i),
    })
    span.end(new Date(at(start + i).getTime() + 1_500))
  })
  await provider.forceFlush()
  const finished = memory.getFinishedSpans()
  await provider.shutdown()
  return finished
}

/** Spans exported the way an application does it: provider → BatchSpanProcessor → exporter → us. */
async function exportThroughProvider(exporter: SpanExporter, spans: FixtureSpan[], start = 0): Promise<void> {
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] })
  const tracer = provider.getTracer('burnrate-test')
  spans.forEach((s, i) => {
    const span = tracer.startSpan(s.name, {
      kind: SpanKind[s.kind],
      attributes: s.attributes,
      startTime: at(start + i),
    })
    span.end(new Date(at(start + i).getTime() + 1_500))
  })
  await provider.forceFlush()
  await provider.shutdown()
}

const exportOnce = (exporter: SpanExporter, spans: ReadableSpan[]) =>
  new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(spans, resolve))

const SUMMARY = `query($c: String!, $from: DateTime!, $to: DateTime!) {
  usageSummary(customerId: $c, from: $from, to: $to, groupBy: [MODEL, PROVIDER, FEATURE, USAGE_TYPE]) {
    events amount cost currency inputTokens outputTokens unpricedEvents
    groups { model provider feature usageType events amount cost inputTokens outputTokens }
  }
}`

async function summaries(key: string) {
  const out: Record<string, unknown> = {}
  for (const c of ['acme', 'globex', 'initech']) {
    const r = await t.gql(SUMMARY, { c, from: FROM, to: TO }, key)
    expect(r.errors).toBeUndefined()
    out[c] = r.data!.usageSummary
  }
  return out
}

/** The usage the fixtures describe, as recordUsageBatch events (the mapping written out by hand). */
function referenceEvents(start: number) {
  const ts = (i: number) => new Date(at(start + i).getTime() + 1_500).toISOString()
  return [
    {
      id: 'ref-1',
      customerId: 'acme',
      model: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      timestamp: ts(0),
      inputTokens: 1200,
      outputTokens: 310,
      feature: 'chat',
    },
    {
      id: 'ref-2',
      customerId: 'globex',
      model: 'text-embedding-3-small',
      provider: 'openai',
      timestamp: ts(1),
      inputTokens: 5000,
      feature: 'search',
    },
    {
      id: 'ref-3',
      customerId: 'acme',
      model: 'o4-mini-2025-04-16',
      provider: 'openai',
      timestamp: ts(2),
      inputTokens: 3000,
      cacheReadTokens: 2048,
      outputTokens: 900,
      reasoningTokens: 640,
      feature: 'agent',
    },
    // The AI SDK's doGenerate span (index 4 of the combined list: the outer span is 3, the tool call 5).
    {
      id: 'ref-4',
      customerId: 'initech',
      model: 'claude-sonnet-4-5-20250929',
      provider: 'anthropic',
      timestamp: ts(4),
      inputTokens: 4100,
      cacheReadTokens: 3000,
      cacheWriteTokens: 1000,
      outputTokens: 250,
      feature: 'support',
    },
  ]
}

const ALL = [...OPENAI, ...AI_SDK]

describe('OTLP exporters → usage events, priced like recordUsage', () => {
  let reference: Record<string, unknown>

  beforeAll(async () => {
    const ref = await t.createTenant('reference')
    const r = await t.gql(
      `mutation($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded results { status error { message } } } }`,
      { e: referenceEvents(0) },
      ref.apiKey,
    )
    expect(r.errors).toBeUndefined()
    expect(r.data!.recordUsageBatch.recorded).toBe(4)
    reference = await summaries(ref.apiKey)
    // The reference itself is fully priced (an UNPRICED reference would compare nothing).
    for (const s of Object.values(reference) as { unpricedEvents: number; amount: string }[]) {
      expect(s.unpricedEvents).toBe(0)
      expect(Number(s.amount)).toBeGreaterThan(0)
    }
  })

  it('protobuf exporter (http/protobuf) through a NodeTracerProvider', async () => {
    const tenant = await t.createTenant('proto')
    await exportThroughProvider(
      new ProtoExporter({ url: tracesUrl(), headers: { Authorization: `Bearer ${tenant.apiKey}` } }),
      ALL,
    )
    expect(await summaries(tenant.apiKey)).toEqual(reference)
  })

  it('JSON exporter (http/json), gzip, key in x-api-key', async () => {
    const tenant = await t.createTenant('json')
    await exportThroughProvider(
      new JsonExporter({
        url: tracesUrl(),
        headers: { 'x-api-key': tenant.apiKey },
        compression: 'gzip' as ConstructorParameters<typeof JsonExporter>[0] extends infer C
          ? C extends { compression?: infer A }
            ? A
            : never
          : never,
      }),
      ALL,
    )
    expect(await summaries(tenant.apiKey)).toEqual(reference)
  })

  it("an exporter's retry of the same spans is a no-op, in both encodings", async () => {
    const tenant = await t.createTenant('retry')
    const spans = await makeSpans(ALL)
    const headers = { Authorization: `Bearer ${tenant.apiKey}` }
    const proto = new ProtoExporter({ url: tracesUrl(), headers })
    const json = new JsonExporter({ url: tracesUrl(), headers })
    expect((await exportOnce(proto, spans)).code).toBe(0)
    const first = await summaries(tenant.apiKey)
    expect(first).toEqual(reference)
    expect((await exportOnce(proto, spans)).code).toBe(0)
    expect((await exportOnce(json, spans)).code).toBe(0)
    expect(await summaries(tenant.apiKey)).toEqual(first)
    await proto.shutdown()
    await json.shutdown()
  })
})

describe('OTLP/HTTP answers', () => {
  const post = (body: Buffer | string, headers: Record<string, string>) =>
    fetch(tracesUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tenant.apiKey}`, ...headers },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    })
  const PB = { 'content-type': 'application/x-protobuf' }
  const JSON_TYPE = { 'content-type': 'application/json' }

  it('partial success: a GenAI span without a customer is rejected with its reason; other spans are ignored', async () => {
    const noCustomer = { ...OPENAI[0]!, attributes: { ...OPENAI[0]!.attributes } }
    delete noCustomer.attributes['burnrate.customer_id']
    const plain = { name: 'GET /orders', kind: 'SERVER' as const, attributes: { 'http.route': '/orders' } }
    const spans = await makeSpans([noCustomer, plain, OPENAI[1]!], 100)

    const json = await post(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!), JSON_TYPE)
    expect(json.status).toBe(200)
    expect(json.headers.get('content-type')).toMatch(/^application\/json/)
    const body = (await json.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } }
    expect(body.partialSuccess.rejectedSpans).toBe('1')
    expect(body.partialSuccess.errorMessage).toContain('no customer')
    expect(body.partialSuccess.errorMessage).toContain('burnrate.customer_id, enduser.id')

    const proto = await post(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!), PB)
    expect(proto.status).toBe(200)
    expect(proto.headers.get('content-type')).toBe('application/x-protobuf')
    const decoded = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(await proto.arrayBuffer()))
    expect(Number(decoded.partialSuccess?.rejectedSpans)).toBe(1)
    expect(decoded.partialSuccess?.errorMessage).toContain('no customer')

    const events = await t.gql(`{ usageEvents(customerId: "globex", first: 50) { edges { node { id } } } }`)
    const ids = events.data!.usageEvents.edges.map((e: { node: { id: string } }) => e.node.id)
    expect(ids).toContain(`otlp:${spans[2]!.spanContext().traceId}:${spans[2]!.spanContext().spanId}`)
  })

  it('a fully accepted export has no partial_success', async () => {
    const spans = await makeSpans([OPENAI[1]!], 200)
    const res = await post(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!), JSON_TYPE)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({})
  })

  it('malformed payloads are 400 in the request encoding, never retried', async () => {
    const badProto = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), PB)
    expect(badProto.status).toBe(400)
    expect(badProto.headers.get('content-type')).toBe('application/x-protobuf')
    expect(badProto.headers.get('retry-after')).toBeNull()

    const badJson = await post('{"resourceSpans": [', JSON_TYPE)
    expect(badJson.status).toBe(400)
    expect(((await badJson.json()) as { message: string }).message).toMatch(/malformed JSON/)

    const wrongShape = await post('{"resourceSpans": "nope"}', JSON_TYPE)
    expect(wrongShape.status).toBe(400)
    const badId = await post(
      JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'not hex', spanId: 'zz' }] }] }] }),
      JSON_TYPE,
    )
    expect(badId.status).toBe(400)

    const gzipGarbage = await post(Buffer.from('definitely not gzip'), { ...PB, 'content-encoding': 'gzip' })
    expect(gzipGarbage.status).toBe(400)
    expect(((await gzipGarbage.json().catch(() => null)) as unknown) ?? 'protobuf').toBeTruthy()

    const gzipOfGarbage = await post(gzipSync(Buffer.from([0xff, 0xff, 0xff])), { ...PB, 'content-encoding': 'gzip' })
    expect(gzipOfGarbage.status).toBe(400)
  })

  it('a decompression bomb is refused with 413', async () => {
    const bomb = gzipSync(Buffer.alloc(4 * t.app.services.config.MAX_BODY_BYTES + 1024))
    const res = await post(bomb, { ...JSON_TYPE, 'content-encoding': 'gzip' })
    expect(res.status).toBe(413)
  })

  it('unknown content type or encoding: 415; no or a wrong key: 401, before the body is read', async () => {
    expect((await post('{}', { 'content-type': 'text/plain' })).status).toBe(415)
    expect((await post('{}', { 'content-type': 'application/grpc' })).status).toBe(415)
    expect((await post('{}', { ...JSON_TYPE, 'content-encoding': 'br' })).status).toBe(415)
    const noKey = await fetch(tracesUrl(), { method: 'POST', headers: JSON_TYPE, body: '{}' })
    expect(noKey.status).toBe(401)
    expect(((await noKey.json()) as { message: string }).message).toMatch(/tenant key/)
    const wrongKey = await post('{}', { ...PB, authorization: 'Bearer br_sk_wrong' })
    expect(wrongKey.status).toBe(401)
    expect(wrongKey.headers.get('content-type')).toBe('application/x-protobuf')
  })

  it('an exporter given a bad key fails without retrying forever', async () => {
    const exporter = new ProtoExporter({ url: tracesUrl(), headers: { Authorization: 'Bearer br_sk_nope' } })
    const result = await exportOnce(exporter, await makeSpans([OPENAI[0]!], 300))
    expect(result.code).toBe(1)
    await exporter.shutdown()
  })
})

describe('a database that is unavailable: 503 with Retry-After (and a retry then succeeds)', () => {
  it('answers 503 while ingest fails transiently, then records on retry', async () => {
    const usage = t.app.services.usage
    const original = usage.record
    let failures = 1
    usage.record = async (tenant, inputs) => {
      if (failures-- > 0)
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
      return original.call(usage, tenant, inputs)
    }
    try {
      const spans = await makeSpans([OPENAI[1]!], 400)
      const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!)
      const headers = { authorization: `Bearer ${t.tenant.apiKey}`, 'content-type': 'application/x-protobuf' }
      const first = await fetch(tracesUrl(), { method: 'POST', headers, body })
      expect(first.status).toBe(503)
      expect(first.headers.get('retry-after')).toBe('5')
      const second = await fetch(tracesUrl(), { method: 'POST', headers, body })
      expect(second.status).toBe(200)
    } finally {
      usage.record = original
    }
  })

  it('an unexpected failure is 500, which exporters do not retry', async () => {
    const usage = t.app.services.usage
    const original = usage.record
    usage.record = async () => {
      throw new Error('a bug')
    }
    try {
      const spans = await makeSpans([OPENAI[1]!], 500)
      const res = await fetch(tracesUrl(), {
        method: 'POST',
        headers: { authorization: `Bearer ${t.tenant.apiKey}`, 'content-type': 'application/x-protobuf' },
        body: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!),
      })
      expect(res.status).toBe(500)
      expect(res.headers.get('retry-after')).toBeNull()
    } finally {
      usage.record = original
    }
  })
})
