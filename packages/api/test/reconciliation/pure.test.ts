import { describe, expect, it } from 'vitest'
import { Decimal } from '../../src/money/decimal.ts'
import { parseJsonExact, retryAfterMs } from '../../src/reconciliation/clients.ts'
import { contentHash, mergeRows, parseOpenAILineItem } from '../../src/reconciliation/normalize.ts'
import {
  beyondTolerance,
  classify,
  modelKey,
  toCsv,
  type ReconciliationRow,
} from '../../src/reconciliation/reconcile.ts'

const d = (v: string | null) => (v === null ? null : new Decimal(v))

describe('reconciliation, pure parts', () => {
  it('keeps provider money exact', () => {
    const parsed = parseJsonExact(
      '{"amount":{"value":0.1234567890123456789,"currency":"usd"},"input_tokens":12}',
    ) as any
    expect(parsed.amount.value).toBe('0.1234567890123456789')
    expect(parsed.input_tokens).toBe(12)
    // Inside a string nothing changes.
    expect(parseJsonExact('{"note":"\\"value\\": 1.5"}')).toEqual({ note: '"value": 1.5' })
  })

  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = new Date('2026-11-01T00:00:00Z')
    expect(retryAfterMs('7', now)).toBe(7000)
    expect(retryAfterMs('Sun, 01 Nov 2026 00:00:30 GMT', now)).toBe(30_000)
    expect(retryAfterMs(null, now)).toBeNull()
    expect(retryAfterMs('soon', now)).toBeNull()
  })

  it('reads OpenAI cost line items', () => {
    expect(parseOpenAILineItem('gpt-4o-2024-08-06, input')).toEqual({ model: 'gpt-4o-2024-08-06', usageType: 'input' })
    expect(parseOpenAILineItem('gpt-4o, cached input')).toEqual({ model: 'gpt-4o', usageType: 'cache_read' })
    expect(parseOpenAILineItem('Image models')).toEqual({ model: '', usageType: 'other' })
  })

  it('hashes content by value and merges repeated buckets', () => {
    expect(contentHash({ quantity: '10.0', cost: '0.50', currency: 'USD' })).toBe(
      contentHash({ quantity: '10', cost: '0.5', currency: 'USD' }),
    )
    const base = {
      source: 'usage' as const,
      bucketStart: new Date(0),
      bucketWidth: '1h',
      model: 'm',
      usageType: 'input',
      line: '',
      cost: null,
      currency: 'USD',
    }
    expect(
      mergeRows([
        { ...base, quantity: '2' },
        { ...base, quantity: '3' },
      ]),
    ).toEqual([{ ...base, quantity: '5' }])
  })

  it('matches dated model ids to their family', () => {
    expect(modelKey('gpt-4o-2024-08-06')).toBe('gpt-4o')
    expect(modelKey('claude-sonnet-4-20250514')).toBe('claude-sonnet-4')
    expect(modelKey('GPT-4o')).toBe('gpt-4o')
  })

  it('classifies by quantity first, then cost, within the tolerance', () => {
    const tol = new Decimal(1)
    const row = (pq: string | null, oq: string | null, pc: string | null, oc: string | null) => ({
      providerQuantity: d(pq),
      ourQuantity: d(oq),
      providerCost: d(pc),
      ourCost: d(oc),
    })
    expect(classify(row('1000', '995', '1', '0.995'), tol, true)).toBe('MATCHED')
    expect(classify(row('1000', '900', '1', '0.9'), tol, false)).toBe('UNMETERED')
    expect(classify(row('900', '1000', '0.9', '1'), tol, false)).toBe('OVER_METERED')
    expect(classify(row('1000', '1000', '1', '1.2'), tol, true)).toBe('PRICE_MISMATCH')
    // Cost-only rows (OpenRouter totals, credits): a price problem when the quantities agree.
    expect(classify(row(null, null, '2', '1'), tol, true)).toBe('PRICE_MISMATCH')
    expect(classify(row(null, null, '2', '1'), tol, false)).toBe('UNMETERED')
    expect(beyondTolerance(new Decimal(0), new Decimal(0), new Decimal(0))).toBe(false)
    expect(beyondTolerance(new Decimal(1), new Decimal(0), new Decimal(0))).toBe(true)
  })

  it('writes CSV with quoting', () => {
    const row = {
      day: new Date('2026-11-10T00:00:00Z'),
      provider: 'openai',
      model: 'gpt-4o',
      providerModels: ['gpt-4o-2024-08-06'],
      usageType: 'input',
      providerQuantity: d('10'),
      ourQuantity: d('10'),
      quantityDifference: d('0'),
      quantityDifferencePercent: d('0'),
      providerCost: d('0.25'),
      ourCost: d('0.3'),
      costDifference: d('-0.05'),
      costDifferencePercent: d('-20'),
      ourEvents: 2,
      ourUnpricedEvents: 0,
      status: 'PRICE_MISMATCH',
      estimatedCost: null,
      estimatedBillableAmount: null,
      hours: [],
      priceChanges: [],
      notes: ['Quantities agree, "cost" differs.'],
    } satisfies ReconciliationRow
    const csv = toCsv([row], 'USD').split('\r\n')
    expect(csv[1]).toBe(
      '2026-11-10,openai,gpt-4o,input,10,10,0,0,0.25,0.3,-0.05,-20,USD,2,0,PRICE_MISMATCH,,"Quantities agree, ""cost"" differs."',
    )
  })
})
