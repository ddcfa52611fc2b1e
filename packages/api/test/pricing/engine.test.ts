import { describe, expect, it } from 'vitest'
import type { CatalogPrice } from '../../src/catalog/types.ts'
import { Decimal } from '../../src/money/decimal.ts'
import {
  applyPlan,
  billedAmount,
  planAt,
  priceUsage,
  UsageShapeError,
  type PlanVersion,
} from '../../src/pricing/engine.ts'
import { priceEvent } from '../../src/pricing/price-event.ts'

const price = (usageType: string, unitPrice: string, extra: Partial<CatalogPrice> = {}): CatalogPrice => ({
  id: `p-${usageType}`,
  provider: 'openai',
  model: 'm',
  usageType,
  unit: 'token',
  unitPrice,
  currency: 'USD',
  tiers: null,
  timeWindow: null,
  effectiveFrom: new Date(0),
  effectiveTo: null,
  source: 'test',
  ...extra,
})

const usage = (entries: Record<string, number | string>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, new Decimal(v)]))

describe('markup and margin (DESIGN.md §Money)', () => {
  it('bills a 30 % markup on $1.00 as $1.30, which is a 23.08 % margin', () => {
    const amount = billedAmount(new Decimal('1.00'), { kind: 'MARKUP', percent: '30' })
    expect(amount.toFixed()).toBe('1.3')
    expect(amount.minus(1).dividedBy(amount).times(100).toDecimalPlaces(2).toFixed()).toBe('23.08')
  })

  it('bills a 30 % margin on $1.00 as $1.428571… rounded half-even to 18 places', () => {
    expect(billedAmount(new Decimal('1.00'), { kind: 'MARGIN', percent: '30' }).toFixed()).toBe('1.428571428571428571')
  })

  it('keeps the margin: (amount - cost) / amount is the percent', () => {
    const amount = billedAmount(new Decimal('0.0375'), { kind: 'MARGIN', percent: '20' })
    expect(amount.toFixed()).toBe('0.046875')
    expect(amount.minus('0.0375').dividedBy(amount).toFixed()).toBe('0.2')
  })

  it('bills at cost without a plan and refuses a 100 % margin', () => {
    expect(billedAmount(new Decimal('2.5'), null).toFixed()).toBe('2.5')
    expect(billedAmount(new Decimal('2.5'), { kind: 'MARKUP', percent: '0' }).toFixed()).toBe('2.5')
    expect(() => billedAmount(new Decimal(1), { kind: 'MARGIN', percent: '100' })).toThrow(RangeError)
  })

  it('makes the event amount the exact sum of its line amounts', () => {
    const { lines, amount } = applyPlan(
      [
        {
          usageType: 'input',
          quantity: new Decimal(1),
          unitPrice: new Decimal('0.1'),
          cost: new Decimal('0.1'),
          priceId: 'a',
        },
        {
          usageType: 'output',
          quantity: new Decimal(1),
          unitPrice: new Decimal('0.2'),
          cost: new Decimal('0.2'),
          priceId: 'b',
        },
      ],
      { kind: 'MARGIN', percent: '30' },
    )
    expect(lines.map((l) => l.amount.toFixed())).toEqual(['0.142857142857142857', '0.285714285714285714'])
    expect(amount.toFixed()).toBe('0.428571428571428571')
  })
})

describe('priceUsage', () => {
  const gpt4o = [price('input', '0.0000025'), price('cache_read', '0.00000125'), price('output', '0.00001')]

  it('prices cached input once, at the cache price', () => {
    const { lines, cost } = priceUsage(usage({ input_tokens: 1000, cache_read_tokens: 400, output_tokens: 200 }), gpt4o)
    expect(lines.map((l) => [l.usageType, l.quantity.toFixed(), l.cost.toFixed(), l.priceId])).toEqual([
      ['input', '600', '0.0015', 'p-input'],
      ['cache_read', '400', '0.0005', 'p-cache_read'],
      ['output', '200', '0.002', 'p-output'],
    ])
    expect(cost.toFixed()).toBe('0.004')
  })

  it('charges cache writes as input when the model has no cache-write price', () => {
    const { lines } = priceUsage(usage({ input_tokens: 1000, cache_write_tokens: 300 }), gpt4o)
    expect(lines.map((l) => [l.usageType, l.quantity.toFixed()])).toEqual([['input', '1000']])
  })

  it('charges reasoning as output unless the model prices reasoning separately', () => {
    const reported = usage({ input_tokens: 0, output_tokens: 500, output_reasoning_tokens: 300 })
    expect(priceUsage(reported, gpt4o).lines.map((l) => [l.usageType, l.quantity.toFixed()])).toEqual([
      ['output', '500'],
    ])
    const withReasoning = [...gpt4o, price('reasoning', '0.00002')]
    expect(
      priceUsage(reported, withReasoning).lines.map((l) => [l.usageType, l.quantity.toFixed(), l.cost.toFixed()]),
    ).toEqual([
      ['output', '200', '0.002'],
      ['reasoning', '300', '0.006'],
    ])
  })

  it('switches every line of a long-context call to the tier price', () => {
    const tiered = [
      price('input', '0.000003', { tiers: [{ start: 200_000, unitPrice: '0.000006' }] }),
      price('output', '0.000015', { tiers: [{ start: 200_000, unitPrice: '0.0000225' }] }),
    ]
    const short = priceUsage(usage({ input_tokens: 200_000, output_tokens: 1000 }), tiered)
    expect(short.cost.toFixed()).toBe('0.615')
    const long = priceUsage(usage({ input_tokens: 200_001, output_tokens: 1000 }), tiered)
    expect(long.lines.map((l) => l.unitPrice.toFixed())).toEqual(['0.000006', '0.0000225'])
    expect(long.cost.toFixed()).toBe('1.222506')
  })

  it('charges one request per call and priced units by their quantity', () => {
    const perRequest = [
      price('requests', '0.012', { unit: 'request' }),
      price('web_searches', '0.01', { unit: 'search' }),
    ]
    const { lines, cost } = priceUsage(usage({ input_tokens: 10, web_searches: 3 }), perRequest)
    expect(lines.map((l) => [l.usageType, l.quantity.toFixed()])).toEqual([
      ['requests', '1'],
      ['web_searches', '3'],
    ])
    expect(cost.toFixed()).toBe('0.042')
  })
})

describe('priceEvent: the missing-price rule', () => {
  const gpt4o = [price('input', '0.0000025'), price('cache_read', '0.00000125'), price('output', '0.00001')]
  const lines = (result: ReturnType<typeof priceEvent>) =>
    result.status === 'PRICED' ? result.lines.map((l) => [l.usageType, l.quantity.toFixed(), l.cost.toFixed()]) : result

  it('prices like priceUsage when every reported quantity has a price', () => {
    expect(lines(priceEvent(usage({ input_tokens: 1000, cache_read_tokens: 400, output_tokens: 200 }), gpt4o))).toEqual(
      [
        ['input', '600', '0.0015'],
        ['cache_read', '400', '0.0005'],
        ['output', '200', '0.002'],
      ],
    )
  })

  it('is UNPRICED, naming each usage type no price covers, instead of billing it 0', () => {
    const inputOnly = [price('input', '0.000002')]
    expect(priceEvent(usage({ input_tokens: 1000, output_tokens: 10 }), inputOnly)).toEqual({
      status: 'UNPRICED',
      reason: { code: 'MISSING_USAGE_PRICE', usageTypes: ['output'] },
    })
    expect(priceEvent(usage({ input_tokens: 1000, output_tokens: 10, web_searches: 2 }), inputOnly)).toEqual({
      status: 'UNPRICED',
      reason: { code: 'MISSING_USAGE_PRICE', usageTypes: ['output', 'web_searches'] },
    })
    // A zero quantity needs no price.
    expect(priceEvent(usage({ input_tokens: 1000, output_tokens: 0 }), inputOnly).status).toBe('PRICED')
  })

  it('covers a part by a priced whole (cache writes as input, reasoning and audio output as output), and requests need no price', () => {
    const reported = usage({
      input_tokens: 1000,
      cache_write_tokens: 300,
      input_audio_tokens: 200,
      output_tokens: 500,
      output_reasoning_tokens: 100,
      output_audio_tokens: 50,
      requests: 1,
    })
    expect(lines(priceEvent(reported, gpt4o))).toEqual([
      ['input', '1000', '0.0025'],
      ['output', '500', '0.005'],
    ])
  })

  it('says why when there are no rows at all: unknown model (null) or none in force (empty)', () => {
    expect(priceEvent(usage({ input_tokens: 1 }), null)).toEqual({
      status: 'UNPRICED',
      reason: { code: 'UNKNOWN_MODEL', usageTypes: [] },
    })
    expect(priceEvent(usage({ input_tokens: 1 }), [])).toEqual({
      status: 'UNPRICED',
      reason: { code: 'NO_PRICE_AT_TIME', usageTypes: [] },
    })
  })

  it('fills an unreported non-token whole from its parts: input audio seconds priced per audio second', () => {
    const perSecond = [price('audio_seconds', '0.0001', { unit: 'second' })]
    expect(lines(priceEvent(usage({ input_audio_seconds: 60 }), perSecond))).toEqual([['audio_seconds', '60', '0.006']])
    const inputPerSecond = [price('input_audio_seconds', '0.0001', { unit: 'second' })]
    expect(lines(priceEvent(usage({ input_audio_seconds: 60 }), inputPerSecond))).toEqual([
      ['input_audio_seconds', '60', '0.006'],
    ])
    // Pages: annotated pages are pages; a model pricing annotated pages only cannot price plain ones.
    const annotated = [price('input_annotated_document_pages', '0.01', { unit: 'page' })]
    expect(lines(priceEvent(usage({ input_annotated_document_pages: 3 }), annotated))).toEqual([
      ['input_annotated_document_pages', '3', '0.03'],
    ])
    expect(priceEvent(usage({ input_document_pages: 5, input_annotated_document_pages: 3 }), annotated)).toEqual({
      status: 'UNPRICED',
      reason: { code: 'MISSING_USAGE_PRICE', usageTypes: ['input_document_pages'] },
    })
    expect(() => priceEvent(usage({ input_document_pages: 2, input_annotated_document_pages: 3 }), annotated)).toThrow(
      UsageShapeError,
    )
  })
})

describe('planAt', () => {
  const plans: PlanVersion[] = [
    { customerId: null, kind: 'MARKUP', percent: '10', effectiveFrom: new Date('2026-01-01T00:00:00Z') },
    { customerId: null, kind: 'MARKUP', percent: '20', effectiveFrom: new Date('2026-02-01T00:00:00Z') },
    { customerId: 'acme', kind: 'MARGIN', percent: '30', effectiveFrom: new Date('2026-03-01T00:00:00Z') },
  ]

  it('applies each plan from its effective time only', () => {
    expect(planAt(plans, 'acme', new Date('2025-12-31T23:59:59Z'))).toBeNull()
    expect(planAt(plans, 'acme', new Date('2026-01-15T00:00:00Z'))).toEqual({ kind: 'MARKUP', percent: '10' })
    expect(planAt(plans, 'acme', new Date('2026-02-15T00:00:00Z'))).toEqual({ kind: 'MARKUP', percent: '20' })
    expect(planAt(plans, 'acme', new Date('2026-03-01T00:00:00Z'))).toEqual({ kind: 'MARGIN', percent: '30' })
    expect(planAt(plans, 'other', new Date('2026-03-15T00:00:00Z'))).toEqual({ kind: 'MARKUP', percent: '20' })
  })
})
