/**
 * GenAI spans → usage events, after the OpenTelemetry GenAI semantic conventions. Pure.
 *
 * Tokens: `gen_ai.usage.input_tokens` counts all input, cached included, and
 * `gen_ai.usage.output_tokens` all output, reasoning included — exactly what Burnrate's
 * `inputTokens` / `outputTokens` mean — so cache reads (`gen_ai.usage.cache_read.input_tokens`),
 * cache writes (`gen_ai.usage.cache_creation.input_tokens`) and reasoning
 * (`gen_ai.usage.reasoning.output_tokens`) are carried as the parts they are, never added again.
 * A span whose cache counts exceed its input (an instrumentation that reports the provider's
 * uncached input, as Anthropic's API does) evidently left them out: they are added to the input,
 * likewise reasoning above output. Older names (`gen_ai.usage.prompt_tokens`,
 * `completion_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`) and the Vercel AI
 * SDK's `ai.usage.inputTokenDetails.*` / `ai.usage.reasoningTokens` (on the same span) fill in when the current ones
 * are absent. Only a span that reports GenAI usage (`gen_ai.usage.input_tokens` or
 * `output_tokens`, or their older names) is metered: the AI SDK's outer `ai.generateText` span
 * (which has only `ai.usage.*`) is not, its provider-call span is, so nothing is counted twice.
 */
import type { UsageEventInput } from '../usage/validation.ts'
import type { OtlpAttributes, OtlpAttributeValue, OtlpSpan } from './types.ts'

export interface SpanMappingOptions {
  /** Attribute keys naming the customer, first present wins (span attributes, then the resource's). */
  customerAttributes: readonly string[]
  /** Attribute keys naming the feature, first present wins. */
  featureAttributes: readonly string[]
}

/** The Vercel AI SDK puts `experimental_telemetry.metadata` on its spans under this prefix. */
const AI_SDK_METADATA = 'ai.telemetry.metadata.'

export type SpanOutcome =
  | { kind: 'ignored' }
  | { kind: 'rejected'; reason: RejectReason; message: string }
  | { kind: 'event'; event: UsageEventInput }

export type RejectReason = 'NO_CUSTOMER' | 'NO_MODEL' | 'BAD_TOKENS' | 'BAD_SPAN'

const INPUT = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens'] as const
const OUTPUT = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens'] as const
const CACHE_READ = [
  'gen_ai.usage.cache_read.input_tokens',
  'gen_ai.usage.cache_read_input_tokens',
  'ai.usage.inputTokenDetails.cacheReadTokens',
  'ai.usage.cachedInputTokens',
] as const
const CACHE_WRITE = [
  'gen_ai.usage.cache_creation.input_tokens',
  'gen_ai.usage.cache_creation_input_tokens',
  'ai.usage.inputTokenDetails.cacheWriteTokens',
] as const
const REASONING = [
  'gen_ai.usage.reasoning.output_tokens',
  'ai.usage.outputTokenDetails.reasoningTokens',
  'ai.usage.reasoningTokens',
] as const

/**
 * `gen_ai.provider.name` values (and the older `gen_ai.system`) whose catalog provider id differs;
 * others go to the catalog as given (it resolves `openai`, `anthropic`, `aws.bedrock`, `gcp.gemini`,
 * the AI SDK's `openai.chat`, … and infers the provider from the model otherwise).
 */
const PROVIDERS: Readonly<Record<string, string>> = {
  x_ai: 'x-ai',
  xai: 'x-ai',
  mistral_ai: 'mistral',
  'gcp.vertex_ai': 'google',
  'gcp.gen_ai': 'google',
  'gcp.gemini': 'google',
  'google.generative-ai': 'google',
  'aws.bedrock': 'aws',
  'azure.ai.openai': 'azure',
  'azure.ai.inference': 'azure',
}

function first(attributes: OtlpAttributes, keys: readonly string[]): OtlpAttributeValue | undefined {
  for (const key of keys) {
    const value = attributes.get(key)
    if (value !== undefined && value !== null) return value
  }
  return undefined
}

/** A non-empty identifier from a string or integer attribute. */
function name(value: OtlpAttributeValue | undefined): string | undefined {
  if (typeof value === 'string') return value.trim() || undefined
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return undefined
}

function lookup(span: OtlpAttributes, resource: OtlpAttributes, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const found = name(span.get(key)) ?? name(span.get(AI_SDK_METADATA + key)) ?? name(resource.get(key))
    if (found) return found
  }
  return undefined
}

/** A token count: a non-negative integer (an integral double or a decimal string counts too). */
function count(value: OtlpAttributeValue | undefined): number | null | 'bad' {
  if (value === undefined || value === null) return null
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : 'bad'
}

/** The Vercel AI SDK's `gen_ai.system` is `<provider>.<api>`: `openai.chat`, `anthropic.messages`, … */
const AI_SDK_PROVIDER = /^([a-z0-9-]+)\.(chat|responses|completion|messages|embedding|image|transcription|speech)$/

export function providerOf(value: string | undefined): string | null {
  if (!value) return null
  const lower = value.trim().toLowerCase()
  if (PROVIDERS[lower]) return PROVIDERS[lower]
  const sdk = AI_SDK_PROVIDER.exec(lower)?.[1]
  if (sdk) return PROVIDERS[sdk] ?? sdk
  return lower || null
}

/** Nanoseconds since the epoch (decimal text) as a Date, or null for 0 or an impossible value. */
function dateOf(nanos: string): Date | null {
  if (!/^\d{1,20}$/.test(nanos) || /^0+$/.test(nanos)) return null
  const ms = Number(BigInt(nanos) / 1_000_000n)
  const date = new Date(ms)
  return Number.isNaN(date.getTime()) ? null : date
}

/** The idempotency key of a span's event: an exporter's retry of the same span is a DUPLICATE. */
const spanEventId = (traceId: string, spanId: string) => `otlp:${traceId}:${spanId}`

export function mapSpan(span: OtlpSpan, resource: OtlpAttributes, options: SpanMappingOptions): SpanOutcome {
  const a = span.attributes
  const inputRaw = first(a, INPUT)
  const outputRaw = first(a, OUTPUT)
  // The cheap test first: most spans of a trace (HTTP, DB, tools) carry no GenAI usage.
  if (inputRaw === undefined && outputRaw === undefined) return { kind: 'ignored' }
  const at = `span ${span.spanId || '(no id)'}`
  const reject = (reason: RejectReason, message: string): SpanOutcome => ({
    kind: 'rejected',
    reason,
    message: `${at}: ${message}`,
  })

  if (!/^[0-9a-f]{32}$/.test(span.traceId) || /^0+$/.test(span.traceId))
    return reject('BAD_SPAN', 'trace id must be 16 bytes, not all zero')
  if (!/^[0-9a-f]{16}$/.test(span.spanId) || /^0+$/.test(span.spanId))
    return reject('BAD_SPAN', 'span id must be 8 bytes, not all zero')
  const timestamp = dateOf(span.endTimeUnixNano) ?? dateOf(span.startTimeUnixNano)
  if (!timestamp) return reject('BAD_SPAN', 'the span has no end (or start) time')

  const customerId = lookup(a, resource, options.customerAttributes)
  if (!customerId)
    return reject('NO_CUSTOMER', `no customer: set one of the attributes ${options.customerAttributes.join(', ')}`)
  const model = name(a.get('gen_ai.response.model')) ?? name(a.get('gen_ai.request.model'))
  if (!model) return reject('NO_MODEL', 'no model: gen_ai.response.model and gen_ai.request.model are both absent')

  const counts = {
    input: count(inputRaw),
    output: count(outputRaw),
    cacheRead: count(first(a, CACHE_READ)),
    cacheWrite: count(first(a, CACHE_WRITE)),
    reasoning: count(first(a, REASONING)),
  }
  for (const [key, value] of Object.entries(counts))
    if (value === 'bad') return reject('BAD_TOKENS', `the ${key} token count is not a non-negative integer`)
  const n = counts as Record<keyof typeof counts, number | null>
  const cacheRead = n.cacheRead ?? 0
  const cacheWrite = n.cacheWrite ?? 0
  const reasoning = n.reasoning ?? 0
  let inputTokens = n.input ?? 0
  let outputTokens = n.output ?? 0
  if (cacheRead + cacheWrite > inputTokens) inputTokens += cacheRead + cacheWrite
  if (reasoning > outputTokens) outputTokens += reasoning

  const responseId = name(a.get('gen_ai.response.id'))
  const operation = name(a.get('gen_ai.operation.name'))
  const feature = lookup(a, resource, options.featureAttributes)
  return {
    kind: 'event',
    event: {
      id: spanEventId(span.traceId, span.spanId),
      customerId,
      model,
      provider: providerOf(name(a.get('gen_ai.provider.name')) ?? name(a.get('gen_ai.system'))),
      timestamp,
      inputTokens,
      outputTokens,
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      reasoningTokens: reasoning,
      feature: feature ?? null,
      metadata: {
        source: 'otlp',
        traceId: span.traceId,
        spanId: span.spanId,
        ...(responseId ? { responseId: responseId.slice(0, 255) } : {}),
        ...(operation ? { operation: operation.slice(0, 100) } : {}),
      },
    },
  }
}
