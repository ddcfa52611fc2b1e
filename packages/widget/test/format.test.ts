import { describe, expect, it } from 'vitest'
import { addDecimals, compareDecimals, fromUnits, shiftDecimal, toUnits } from '../src/decimal.ts'
import { languageFor } from '../src/messages.ts'
import {
  fillDays,
  formatMoney,
  formatUnitPrice,
  levelOf,
  monthOf,
  niceMax,
  pickBudget,
  planLabel,
  rankGroups,
} from '../src/format.ts'
import type { Budget } from '../src/types.ts'

describe('exact decimals', () => {
  it('adds API decimal strings exactly (no float drift)', () => {
    expect(addDecimals(['0.1', '0.2'])).toBe('0.3')
    expect(addDecimals(['0.00475', '1.428571428571428571', '-0.00075'])).toBe('1.432571428571428571')
    expect(addDecimals([])).toBe('0')
    expect(fromUnits(toUnits('-12.5'))).toBe('-12.5')
    expect(compareDecimals('0.0000025', '0.000003')).toBe(-1)
    expect(compareDecimals('10', '10.000')).toBe(0)
  })
  it('shifts per-token prices to per-million exactly', () => {
    expect(shiftDecimal('0.0000025', 6)).toBe('2.5')
    expect(shiftDecimal('0.00000125', 6)).toBe('1.25')
  })
})

describe('formatting with Intl', () => {
  it('formats money in the locale, with more digits for sub-cent amounts', () => {
    expect(formatMoney('12.5', 'USD', 'en-US')).toBe('$12.50')
    expect(formatMoney('0', 'USD', 'en-US')).toBe('$0.00')
    expect(formatMoney('0.00475', 'USD', 'en-US')).toBe('$0.00475')
    expect(formatMoney('0.123456', 'USD', 'en-US')).toBe('$0.123')
    expect(formatMoney('1234.5', 'EUR', 'de-DE')).toBe('1.234,50\u00a0€')
    expect(formatMoney('0.0798323', 'USD', 'en-US', true)).toBe('$0.079832')
    expect(formatMoney('0.5', 'USD', 'en-US', true)).toBe('$0.50')
  })
  it('quotes token prices per million tokens and units per unit', () => {
    expect(formatUnitPrice('0.0000025', 'input', 'USD', 'en-US')).toBe('$2.50 / 1M')
    expect(formatUnitPrice('0.01', 'web_searches', 'USD', 'en-US')).toBe('$0.01 / unit')
  })
  it('labels pricing plans', () => {
    // The percent sign as each locale writes it.
    expect(planLabel('MARKUP 30', 'en-US')).toBe('30% markup')
    expect(planLabel('MARGIN 12.5', 'en-US')).toBe('12.5% margin')
    expect(planLabel('MARKUP 30', 'de-DE', languageFor('de-DE').t)).toBe('30\u00a0% Aufschlag')
    expect(planLabel('MARGIN 12.5', 'fr-FR', languageFor('fr-FR').t)).toBe('marge de 12,5\u00a0%')
    expect(planLabel(null)).toBe('at cost')
  })
})

describe('aggregation', () => {
  const g = (model: string | null, amount: string, events = 1) => ({
    model,
    feature: null,
    bucketStart: null,
    amount,
    events,
  })
  it('ranks groups by amount and sums the tail exactly into one row', () => {
    const rows = rankGroups(
      [g('a', '0.1'), g('b', '3'), g('c', '0.2'), g(null, '0.05'), g('d', '1')],
      'model',
      '4.35',
      3,
      'Unknown',
    )
    expect(rows.map((r) => [r.label, r.amount])).toEqual([
      ['b', '3'],
      ['d', '1'],
      ['3 others', '0.35'],
    ])
    expect(rows[2]!.other).toBe(true)
    expect(rows[2]!.events).toBe(3)
    expect(rankGroups([g(null, '1')], 'model', '1', 3, 'Unknown')[0]!.label).toBe('Unknown')
  })
  it('fills every UTC day of the period, zero where nothing was used', () => {
    const days = fillDays(
      [{ model: null, feature: null, bucketStart: '2026-11-02T00:00:00.000Z', amount: '1.5', events: 3 }],
      '2026-11-01T00:00:00.000Z',
      '2026-11-05T00:00:00.000Z',
      Date.parse('2026-11-03T10:00:00Z'),
    )
    expect(days.map((d) => [d.day.slice(0, 10), d.amount, d.future])).toEqual([
      ['2026-11-01', '0', false],
      ['2026-11-02', '1.5', false],
      ['2026-11-03', '0', false],
      ['2026-11-04', '0', true],
    ])
  })
  it('picks the most used budget and the month of a customer without one', () => {
    const b = (id: string, spent: string, limit: string) => ({ id, spent, limit }) as Budget
    expect(pickBudget([b('day', '1', '10'), b('month', '60', '100')])!.id).toBe('month')
    expect(pickBudget([])).toBeNull()
    expect(monthOf(Date.parse('2026-12-31T23:00:00Z'))).toEqual({
      from: '2026-12-01T00:00:00.000Z',
      to: '2027-01-01T00:00:00.000Z',
    })
  })
  it('levels: warn from the highest threshold under 100, over at the limit', () => {
    expect(levelOf('10', '100', [50, 80, 100])).toBe('ok')
    expect(levelOf('80', '100', [50, 80, 100])).toBe('warn')
    expect(levelOf('100', '100', [50, 80, 100])).toBe('over')
  })
  it('rounds chart maxima to 1, 2 or 5 × 10^n', () => {
    expect([niceMax(0), niceMax(0.0034), niceMax(1.2), niceMax(37)]).toEqual([1, 0.005, 2, 50])
  })
})
