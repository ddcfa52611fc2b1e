import { describe, expect, it } from 'vitest'
import type { CatalogPrice } from '../../src/catalog/types.ts'
import {
  ATTACHMENT_TOKENS,
  boundCall,
  holdAmount,
  REQUEST_OVERHEAD_TOKENS,
  UnpricedCallError,
  WEB_SEARCH_DEFAULT_USES,
  worstCaseAmount,
} from '../../src/gateway/estimate.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { parseRules } from '../../src/rating/rules.ts'

const DEFAULT = { defaultMaxOutputTokens: 4096 }
const bytesOf = (body: unknown) => Buffer.byteLength(JSON.stringify(body), 'utf8')

function price(usageType: string, unitPrice: string, extra: Partial<CatalogPrice> = {}): CatalogPrice {
  return {
    id: `p_${usageType}`,
    provider: 'anthropic',
    model: 'm',
    usageType,
    unit: usageType === 'requests' ? 'request' : usageType === 'web_searches' ? 'search' : 'token',
    unitPrice,
    currency: 'USD',
    tiers: null,
    timeWindow: null,
    effectiveFrom: new Date('2024-01-01T00:00:00Z'),
    effectiveTo: null,
    source: 'test',
    ...extra,
  }
}

describe('boundCall: input tokens', () => {
  it('are the UTF-8 bytes of the whole JSON body plus the fixed overhead (multi-byte text counts every byte)', () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'héllo 世界 🎉' }], max_tokens: 10 }
    const bound = boundCall('openai', body, DEFAULT)
    expect(bound.inputTokens).toBe(bytesOf(body) + REQUEST_OVERHEAD_TOKENS)
    // é is 2 bytes, each CJK character 3, the emoji 4: more than the string's length in UTF-16 units.
    expect(bytesOf(body)).toBeGreaterThan(JSON.stringify(body).length)
  })

  it('system prompt, tools and response schemas are in the body, so they are counted', () => {
    const base = { model: 'claude-sonnet-4-20250514', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }
    const withTools = {
      ...base,
      system: 'You are terse.',
      tools: [
        {
          name: 'get_weather',
          description: 'Weather for a city',
          input_schema: { type: 'object', properties: { city: { type: 'string' } } },
        },
      ],
    }
    expect(
      boundCall('anthropic', withTools, DEFAULT).inputTokens - boundCall('anthropic', base, DEFAULT).inputTokens,
    ).toBe(bytesOf(withTools) - bytesOf(base))
  })

  it('adds an allowance per non-text part (an image by URL costs tokens its bytes do not show)', () => {
    const openai = {
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
          ],
        },
      ],
    }
    expect(boundCall('openai', openai, DEFAULT).inputTokens).toBe(
      bytesOf(openai) + REQUEST_OVERHEAD_TOKENS + ATTACHMENT_TOKENS,
    )
    const anthropic = {
      model: 'claude-sonnet-4-20250514',
      max_tokens: 5,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
            { type: 'document', source: { type: 'url', url: 'https://example.com/a.pdf' } },
          ],
        },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'x', input: {} }] },
        {
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: 't1',
              content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }],
            },
          ],
        },
      ],
    }
    expect(boundCall('anthropic', anthropic, DEFAULT).inputTokens).toBe(
      bytesOf(anthropic) + REQUEST_OVERHEAD_TOKENS + 3 * ATTACHMENT_TOKENS,
    )
  })
})

describe('boundCall: output tokens', () => {
  it('OpenAI: max_completion_tokens, else the legacy max_tokens, times n choices', () => {
    expect(boundCall('openai', { model: 'o3', messages: [], max_completion_tokens: 500 }, DEFAULT)).toMatchObject({
      outputTokens: 500,
      defaultedOutputCap: false,
    })
    expect(boundCall('openai', { model: 'gpt-4o', messages: [], max_tokens: 300 }, DEFAULT)).toMatchObject({
      outputTokens: 300,
      defaultedOutputCap: false,
    })
    expect(
      boundCall('openai', { model: 'gpt-4o', messages: [], max_tokens: 300, max_completion_tokens: 200 }, DEFAULT)
        .outputTokens,
    ).toBe(300)
    expect(
      boundCall('openai', { model: 'gpt-4o', messages: [], max_completion_tokens: 100, n: 3 }, DEFAULT).outputTokens,
    ).toBe(300)
  })

  it('absent (or not a positive integer): the configured default, flagged so the gateway sends it as the cap', () => {
    expect(boundCall('openai', { model: 'gpt-4o', messages: [] }, DEFAULT)).toMatchObject({
      outputTokens: 4096,
      defaultedOutputCap: true,
    })
    expect(
      boundCall('openai', { model: 'gpt-4o', messages: [], max_tokens: null, n: 2 }, { defaultMaxOutputTokens: 100 }),
    ).toMatchObject({ outputTokens: 200, defaultedOutputCap: true })
    expect(boundCall('openai', { model: 'gpt-4o', messages: [], max_tokens: '50' }, DEFAULT).defaultedOutputCap).toBe(
      true,
    )
    expect(boundCall('anthropic', { model: 'claude-sonnet-4-20250514', messages: [] }, DEFAULT)).toMatchObject({
      outputTokens: 4096,
      defaultedOutputCap: true,
    })
  })

  it('Anthropic: max_tokens (thinking counts inside it); n means nothing there', () => {
    const body = {
      model: 'claude-sonnet-4-20250514',
      max_tokens: 2000,
      n: 5,
      thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [],
    }
    expect(boundCall('anthropic', body, DEFAULT)).toMatchObject({
      outputTokens: 2000,
      defaultedOutputCap: false,
      webSearches: 0,
    })
  })

  it('Anthropic web search: max_uses searches, else the assumed default', () => {
    const body = (tool: Record<string, unknown>) => ({
      model: 'claude-sonnet-4-20250514',
      max_tokens: 10,
      messages: [],
      tools: [tool],
    })
    expect(
      boundCall('anthropic', body({ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }), DEFAULT)
        .webSearches,
    ).toBe(3)
    expect(boundCall('anthropic', body({ type: 'web_search_20250305', name: 'web_search' }), DEFAULT).webSearches).toBe(
      WEB_SEARCH_DEFAULT_USES,
    )
    expect(
      boundCall('anthropic', body({ name: 'get_weather', input_schema: { type: 'object' } }), DEFAULT).webSearches,
    ).toBe(0)
  })
})

describe('worstCaseAmount', () => {
  const bound = { inputTokens: 1000, outputTokens: 100, webSearches: 0, defaultedOutputCap: false }

  it("rates the call under the customer's rating plan, from the period meters as they stand", () => {
    const prices = [price('input', '0.000003'), price('output', '0.000015')]
    const rating = {
      id: 'plan-1',
      customerId: 'c',
      version: 1,
      effectiveFrom: new Date(0),
      prepaidOnly: false,
      rules: parseRules([
        { id: 'free', type: 'TOKEN_ALLOWANCE', model: '*', usageType: 'input', quantity: '1500' },
        { id: 'out', type: 'FIXED_PRICE', model: '*', usageType: 'output', price: '20' },
      ]),
    }
    // Nothing used yet: the 1,000 input tokens are free, 100 output at $20 per 1M (not the provider's $15).
    const fresh = new Map([['free', new Decimal(0)]])
    expect(worstCaseAmount(bound, prices, { rating, model: 'claude', counters: fresh }).toFixed()).toBe('0.002')
    // 1,200 of the allowance used: 300 free, 700 at cost (no cost rule), plus the output.
    const used = new Map([['free', new Decimal(1200)]])
    expect(worstCaseAmount(bound, prices, { rating, model: 'claude', counters: used }).toFixed()).toBe('0.0041')
    // The meters are read, never advanced.
    expect(used.get('free')!.toFixed()).toBe('1200')
  })

  it('prices input at the dearest of plain, cache read and cache write, output at plain or reasoning', () => {
    const prices = [
      price('input', '0.000003'),
      price('cache_read', '0.0000003'),
      price('cache_write', '0.00000375'),
      price('output', '0.000015'),
    ]
    // 1000 × 3.75e-6 (all input written to cache) + 100 × 15e-6
    expect(worstCaseAmount(bound, prices, null).toFixed()).toBe('0.00525')
    // Without a cache-write price the plain input price is the worst case.
    expect(
      worstCaseAmount(
        bound,
        prices.filter((p) => p.usageType !== 'cache_write'),
        null,
      ).toFixed(),
    ).toBe('0.0045')
    // A dearer reasoning price is taken for all output.
    expect(
      worstCaseAmount(
        bound,
        [price('input', '0.000001'), price('output', '0.000002'), price('reasoning', '0.00001')],
        null,
      ).toFixed(),
    ).toBe('0.002')
  })

  it('applies the plan like ingest, counts a per-request price once, and web searches by the bound', () => {
    const prices = [
      price('input', '0.000001'),
      price('output', '0.000002'),
      price('requests', '0.01'),
      price('web_searches', '0.01'),
    ]
    expect(worstCaseAmount({ ...bound, webSearches: 2 }, prices, null).toFixed()).toBe('0.0312')
    expect(worstCaseAmount({ ...bound, webSearches: 2 }, prices, { kind: 'MARKUP', percent: '50' }).toFixed()).toBe(
      '0.0468',
    )
  })

  it('long-context tiers switch on the bound of total input tokens', () => {
    const tiered = [
      price('input', '0.000003', { tiers: [{ start: 200_000, unitPrice: '0.000006' }] }),
      price('output', '0.000015'),
    ]
    expect(worstCaseAmount({ ...bound, inputTokens: 200_001, outputTokens: 0 }, tiered, null).toFixed()).toBe(
      '1.200006',
    )
  })

  it('refuses to count a usage type the call may use and no row prices as free (the ingest rule)', () => {
    const unpriced = (b: typeof bound, prices: CatalogPrice[] | null) => {
      try {
        return worstCaseAmount(b, prices, null).toFixed()
      } catch (error) {
        if (error instanceof UnpricedCallError) return error.reason
        throw error
      }
    }
    // A negotiated input price alone, no public output price: not an input-only estimate.
    expect(unpriced(bound, [price('input', '0.000002')])).toEqual({
      code: 'MISSING_USAGE_PRICE',
      usageTypes: ['output'],
    })
    expect(unpriced({ ...bound, webSearches: 2 }, [price('input', '0.000001'), price('output', '0.000002')])).toEqual({
      code: 'MISSING_USAGE_PRICE',
      usageTypes: ['web_searches'],
    })
    expect(unpriced(bound, null)).toEqual({ code: 'UNKNOWN_MODEL', usageTypes: [] })
    expect(unpriced(bound, [])).toEqual({ code: 'NO_PRICE_AT_TIME', usageTypes: [] })
    // With the output row (the public one a negotiation leaves in place) the estimate is exact again.
    expect(unpriced(bound, [price('input', '0.000002'), price('output', '0.00001')])).toBe('0.003')
  })

  it('holdAmount rounds up to 18 places, never down', () => {
    expect(holdAmount(new Decimal('0.0000000000000000011'))).toBe('0.000000000000000002')
    expect(holdAmount(new Decimal('1.5'))).toBe('1.5')
  })
})
