import { describe, expect, it } from 'vitest'
import { mapSpan, providerOf, type SpanMappingOptions } from '../../src/otlp/mapping.ts'
import { decodeJsonRequest } from '../../src/otlp/json.ts'
import type { OtlpAttributeValue, OtlpSpan } from '../../src/otlp/types.ts'

const OPTIONS: SpanMappingOptions = {
  customerAttributes: ['burnrate.customer_id', 'enduser.id'],
  featureAttributes: ['burnrate.feature'],
}
const span = (attributes: Record<string, OtlpAttributeValue>, overrides: Partial<OtlpSpan> = {}): OtlpSpan => ({
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  name: 'chat gpt-4o',
  startTimeUnixNano: '1764928800000000000',
  endTimeUnixNano: '1764928801500000000',
  attributes: new Map(Object.entries(attributes)),
  ...overrides,
})
const usage = { 'gen_ai.request.model': 'gpt-4o', 'burnrate.customer_id': 'acme' }
const event = (attributes: Record<string, OtlpAttributeValue>, resource: Record<string, OtlpAttributeValue> = {}) => {
  const outcome = mapSpan(span(attributes), new Map(Object.entries(resource)), OPTIONS)
  if (outcome.kind !== 'event') throw new Error(`expected an event, got ${JSON.stringify(outcome)}`)
  return outcome.event
}

describe('GenAI span mapping', () => {
  it('ignores spans without GenAI usage (the AI SDK outer span has only ai.usage.*)', () => {
    expect(mapSpan(span({ 'http.route': '/x' }), new Map(), OPTIONS)).toEqual({ kind: 'ignored' })
    expect(mapSpan(span({ 'ai.usage.inputTokens': 10, ...usage }), new Map(), OPTIONS)).toEqual({ kind: 'ignored' })
  })

  it('cached input is part of input_tokens and reasoning part of output_tokens: never added twice', () => {
    const e = event({
      ...usage,
      'gen_ai.usage.input_tokens': 1000,
      'gen_ai.usage.cache_read.input_tokens': 600,
      'gen_ai.usage.cache_creation.input_tokens': 100,
      'gen_ai.usage.output_tokens': 500,
      'gen_ai.usage.reasoning.output_tokens': 300,
    })
    expect(e).toMatchObject({
      inputTokens: 1000,
      cacheReadTokens: 600,
      cacheWriteTokens: 100,
      outputTokens: 500,
      reasoningTokens: 300,
    })
  })

  it('cache counts above input (uncached input reported, as Anthropic does) are added to it', () => {
    const e = event({
      ...usage,
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.cache_read.input_tokens': 3000,
      'gen_ai.usage.cache_creation.input_tokens': 1000,
      'gen_ai.usage.output_tokens': 10,
    })
    expect(e).toMatchObject({ inputTokens: 4100, cacheReadTokens: 3000, cacheWriteTokens: 1000 })
  })

  it('older attribute names and the AI SDK details fill in', () => {
    expect(event({ ...usage, 'gen_ai.usage.prompt_tokens': 7, 'gen_ai.usage.completion_tokens': 3 })).toMatchObject({
      inputTokens: 7,
      outputTokens: 3,
    })
    expect(
      event({
        ...usage,
        'gen_ai.usage.input_tokens': 50,
        'gen_ai.usage.output_tokens': 20,
        'ai.usage.inputTokenDetails.cacheReadTokens': 30,
        'ai.usage.inputTokenDetails.cacheWriteTokens': 5,
        'ai.usage.reasoningTokens': 8,
      }),
    ).toMatchObject({ inputTokens: 50, cacheReadTokens: 30, cacheWriteTokens: 5, outputTokens: 20, reasoningTokens: 8 })
  })

  it('response model over request model; provider from gen_ai.provider.name, then gen_ai.system', () => {
    const e = event({
      ...usage,
      'gen_ai.usage.input_tokens': 1,
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.provider.name': 'openai',
      'gen_ai.system': 'something-else',
    })
    expect(e).toMatchObject({ model: 'gpt-4o-2024-08-06', provider: 'openai' })
    expect(event({ ...usage, 'gen_ai.usage.input_tokens': 1, 'gen_ai.system': 'anthropic.messages' }).provider).toBe(
      'anthropic',
    )
    expect(providerOf('x_ai')).toBe('x-ai')
    expect(providerOf('gcp.vertex_ai')).toBe('google')
    expect(providerOf('openai.responses')).toBe('openai')
    expect(providerOf('groq')).toBe('groq')
  })

  it('customer and feature: configured keys in order, the AI SDK metadata form, then resource attributes', () => {
    const base = { 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1 }
    expect(event({ ...base, 'enduser.id': 'u1', 'burnrate.customer_id': 'c1' }).customerId).toBe('c1')
    expect(event({ ...base, 'enduser.id': 'u1' }).customerId).toBe('u1')
    expect(event({ ...base, 'ai.telemetry.metadata.burnrate.customer_id': 'c2' }).customerId).toBe('c2')
    expect(event(base, { 'burnrate.customer_id': 'from-resource' }).customerId).toBe('from-resource')
    expect(event({ ...base, 'enduser.id': 42, 'burnrate.feature': 'chat' })).toMatchObject({
      customerId: '42',
      feature: 'chat',
    })
  })

  it('idempotency key from trace and span id; timestamp from the span end', () => {
    const e = event({ ...usage, 'gen_ai.usage.input_tokens': 1 })
    expect(e.id).toBe('otlp:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331')
    expect(e.timestamp).toEqual(new Date(1764928801500))
  })

  it('rejects with a reason: no customer, no model, bad counts, bad ids, no time', () => {
    const reject = (attributes: Record<string, OtlpAttributeValue>, overrides: Partial<OtlpSpan> = {}) =>
      mapSpan(span(attributes, overrides), new Map(), OPTIONS)
    expect(reject({ 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 1 })).toMatchObject({
      kind: 'rejected',
      reason: 'NO_CUSTOMER',
    })
    expect(reject({ 'burnrate.customer_id': 'a', 'gen_ai.usage.input_tokens': 1 })).toMatchObject({
      reason: 'NO_MODEL',
    })
    expect(reject({ ...usage, 'gen_ai.usage.input_tokens': -1 })).toMatchObject({ reason: 'BAD_TOKENS' })
    expect(reject({ ...usage, 'gen_ai.usage.input_tokens': 1.5 })).toMatchObject({ reason: 'BAD_TOKENS' })
    expect(reject({ ...usage, 'gen_ai.usage.input_tokens': 1 }, { spanId: '' })).toMatchObject({ reason: 'BAD_SPAN' })
    expect(
      reject({ ...usage, 'gen_ai.usage.input_tokens': 1 }, { traceId: '00000000000000000000000000000000' }),
    ).toMatchObject({ reason: 'BAD_SPAN' })
    expect(
      reject({ ...usage, 'gen_ai.usage.input_tokens': 1 }, { startTimeUnixNano: '0', endTimeUnixNano: '0' }),
    ).toMatchObject({ reason: 'BAD_SPAN' })
  })
})

describe('OTLP/JSON decoding', () => {
  it('reads hex ids, string int64s, nested values, and proto field names', () => {
    const [rs] = decodeJsonRequest(
      JSON.stringify({
        resource_spans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'app' } }] },
            scopeSpans: [
              {
                scope: { name: 'x' },
                spans: [
                  {
                    traceId: '0AF7651916CD43DD8448EB211C80319C',
                    spanId: 'b7ad6b7169203331',
                    endTimeUnixNano: '1764928801500000000',
                    attributes: [
                      { key: 'gen_ai.usage.input_tokens', value: { intValue: '12' } },
                      { key: 'list', value: { arrayValue: { values: [{ boolValue: true }, { doubleValue: 1.5 }] } } },
                      { key: 'kv', value: { kvlistValue: { values: [{ key: 'a', value: { stringValue: 'b' } }] } } },
                      { key: 'unknown', value: { somethingElse: 1 } },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      }),
    )
    const s = rs!.scopes[0]!.spans[0]!
    expect(rs!.resource.get('service.name')).toBe('app')
    expect(s.traceId).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(s.endTimeUnixNano).toBe('1764928801500000000')
    expect(s.attributes.get('gen_ai.usage.input_tokens')).toBe(12)
    expect(s.attributes.get('list')).toEqual([true, 1.5])
    expect(s.attributes.get('kv')).toEqual(new Map([['a', 'b']]))
    expect(s.attributes.get('unknown')).toBeNull()
  })

  it('refuses what is not OTLP/JSON', () => {
    expect(() => decodeJsonRequest('[]')).toThrow(/JSON object/)
    expect(() => decodeJsonRequest('{"resourceSpans":[{"scopeSpans":{}}]}')).toThrow(/must be an array/)
    expect(() =>
      decodeJsonRequest('{"resourceSpans":[{"scopeSpans":[{"spans":[{"endTimeUnixNano":"-1"}]}]}]}'),
    ).toThrow(/unsigned integer/)
  })
})
