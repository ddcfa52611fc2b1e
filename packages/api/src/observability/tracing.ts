/**
 * OpenTelemetry tracing of the API itself (off by default): a server span per HTTP request (W3C
 * traceparent honoured), a span per GraphQL operation, a span per database statement and per outgoing
 * HTTP call (webhooks, provider reports, Stripe). Log lines written inside a span carry its traceId and
 * spanId (logger.ts). Turned on by the standard OTEL_TRACES_EXPORTER=otlp / OTEL_EXPORTER_OTLP_ENDPOINT.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node'
import type { Config } from '../config.ts'

const TRACER = 'burnrate-api'
export const tracer = () => trace.getTracer(TRACER)

let provider: NodeTracerProvider | null = null

/** Whether this process records spans (startTracing ran). */
export const tracingEnabled = () => provider !== null

export type TracingSettings = Pick<
  Config,
  'OTEL_TRACES_EXPORTER' | 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
> & { OTEL_SERVICE_NAME?: string }

/** Tracing is on with OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint and no OTEL_TRACES_EXPORTER=none. */
export function tracingWanted(settings: TracingSettings): boolean {
  if (settings.OTEL_TRACES_EXPORTER === 'none') return false
  return (
    settings.OTEL_TRACES_EXPORTER === 'otlp' ||
    Boolean(settings.OTEL_EXPORTER_OTLP_ENDPOINT || settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  )
}

/**
 * Registers the process-wide tracer provider (AsyncLocalStorage context, W3C trace context propagator):
 * spans go to `exporter` (tests: an InMemorySpanExporter, each span as it ends) or to the OTLP/HTTP
 * protobuf exporter at OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces
 * (else the exporter's default, localhost:4318), batched. Spans carry `service.name` = OTEL_SERVICE_NAME
 * (default burnrate-api) and the attributes of OTEL_RESOURCE_ATTRIBUTES.
 */
export function startTracing(settings: TracingSettings, exporter?: SpanExporter): { shutdown(): Promise<void> } {
  if (provider) throw new Error('tracing already started')
  const url =
    settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (settings.OTEL_EXPORTER_OTLP_ENDPOINT
      ? `${settings.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`
      : undefined)
  const processor = exporter
    ? new SimpleSpanProcessor(exporter)
    : new BatchSpanProcessor(new OTLPTraceExporter(url ? { url } : {}))
  // The SDK's defaults (telemetry.sdk.*), then OTEL_RESOURCE_ATTRIBUTES, then our service name on top.
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ 'service.name': settings.OTEL_SERVICE_NAME ?? 'burnrate-api' }))
  const created = new NodeTracerProvider({ resource, spanProcessors: [processor] })
  created.register()
  provider = created
  return {
    async shutdown() {
      await created.shutdown()
      trace.disable()
      context.disable()
      propagation.disable()
      provider = null
    },
  }
}

/** The context of an incoming request: its W3C traceparent/tracestate when sane, else the root. */
export const incomingContext = (headers: Record<string, string | string[] | undefined>): Context =>
  propagation.extract(ROOT_CONTEXT, headers)

/** Runs `fn` in a new span (active for everything it calls), ending it when fn settles; errors mark it. */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Record<string, string | number | boolean | undefined> },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes },
    async (span) => {
      try {
        return await fn(span)
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
        throw error
      } finally {
        span.end()
      }
    },
  )
}

/**
 * `fetch` with a CLIENT span per call and the traceparent header sent on (the receiver joins the trace).
 * The URL's query string is left out of the span (it may hold credentials).
 */
export function tracedFetch(doFetch: typeof globalThis.fetch = globalThis.fetch): typeof globalThis.fetch {
  return async (input, init) => {
    if (!tracingEnabled()) return doFetch(input, init)
    const request = new Request(input, init)
    const url = new URL(request.url)
    return inSpan(
      `${request.method} ${url.host}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': request.method,
          'server.address': url.hostname,
          'url.full': `${url.origin}${url.pathname}`,
        },
      },
      async (span) => {
        const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
        const carrier: Record<string, string> = {}
        propagation.inject(context.active(), carrier)
        for (const [k, v] of Object.entries(carrier)) headers.set(k, v)
        const response = await doFetch(input, { ...init, headers })
        span.setAttribute('http.response.status_code', response.status)
        if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        return response
      },
    )
  }
}
