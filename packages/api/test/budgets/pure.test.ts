import { describe, expect, it } from 'vitest'
import {
  availableOf,
  crossedThresholds,
  fitsHardLimit,
  forecastSpend,
  reachedThresholds,
  remainingOf,
} from '../../src/budgets/evaluate.ts'
import { checkTimeZone, periodBounds } from '../../src/budgets/periods.ts'

const at = (iso: string) => new Date(iso)
const bounds = (period: 'DAY' | 'WEEK' | 'MONTH', tz: string, iso: string) => {
  const b = periodBounds(period, tz, at(iso))
  return [b.start.toISOString(), b.end.toISOString()]
}

describe('periodBounds in UTC', () => {
  it('DAY runs midnight to midnight; an instant at midnight opens its day', () => {
    expect(bounds('DAY', 'UTC', '2026-11-20T12:00:00Z')).toEqual([
      '2026-11-20T00:00:00.000Z',
      '2026-11-21T00:00:00.000Z',
    ])
    expect(bounds('DAY', 'UTC', '2026-11-21T00:00:00Z')).toEqual([
      '2026-11-21T00:00:00.000Z',
      '2026-11-22T00:00:00.000Z',
    ])
    expect(bounds('DAY', 'UTC', '2026-11-20T23:59:59.999Z')).toEqual([
      '2026-11-20T00:00:00.000Z',
      '2026-11-21T00:00:00.000Z',
    ])
  })

  it('WEEK is the ISO week from Monday, across month and year ends', () => {
    // 2026-11-20 is a Friday; 2026-11-23 a Monday; 2027-01-01 a Friday.
    expect(bounds('WEEK', 'UTC', '2026-11-20T12:00:00Z')).toEqual([
      '2026-11-16T00:00:00.000Z',
      '2026-11-23T00:00:00.000Z',
    ])
    expect(bounds('WEEK', 'UTC', '2026-11-23T00:00:00Z')).toEqual([
      '2026-11-23T00:00:00.000Z',
      '2026-11-30T00:00:00.000Z',
    ])
    expect(bounds('WEEK', 'UTC', '2026-11-22T23:59:59Z')).toEqual([
      '2026-11-16T00:00:00.000Z',
      '2026-11-23T00:00:00.000Z',
    ])
    expect(bounds('WEEK', 'UTC', '2027-01-01T08:00:00Z')).toEqual([
      '2026-12-28T00:00:00.000Z',
      '2027-01-04T00:00:00.000Z',
    ])
  })

  it('MONTH runs from the 1st, with leap Februaries and December', () => {
    expect(bounds('MONTH', 'UTC', '2026-11-20T12:00:00Z')).toEqual([
      '2026-11-01T00:00:00.000Z',
      '2026-12-01T00:00:00.000Z',
    ])
    expect(bounds('MONTH', 'UTC', '2026-12-31T23:59:59Z')).toEqual([
      '2026-12-01T00:00:00.000Z',
      '2027-01-01T00:00:00.000Z',
    ])
    expect(bounds('MONTH', 'UTC', '2028-02-29T10:00:00Z')).toEqual([
      '2028-02-01T00:00:00.000Z',
      '2028-03-01T00:00:00.000Z',
    ])
  })
})

describe('periodBounds in a tenant time zone', () => {
  it('uses local midnights: Europe/Paris in winter (UTC+1) and summer (UTC+2)', () => {
    expect(bounds('DAY', 'Europe/Paris', '2026-11-20T23:30:00Z')).toEqual([
      '2026-11-20T23:00:00.000Z',
      '2026-11-21T23:00:00.000Z',
    ])
    expect(bounds('MONTH', 'Europe/Paris', '2026-07-15T12:00:00Z')).toEqual([
      '2026-06-30T22:00:00.000Z',
      '2026-07-31T22:00:00.000Z',
    ])
    expect(bounds('DAY', 'Asia/Kolkata', '2026-11-20T20:00:00Z')).toEqual([
      '2026-11-20T18:30:00.000Z',
      '2026-11-21T18:30:00.000Z',
    ])
  })

  it('a spring-forward day lasts 23 hours and a fall-back day 25 (Europe/Paris 2026)', () => {
    expect(bounds('DAY', 'Europe/Paris', '2026-03-29T12:00:00Z')).toEqual([
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
    ])
    expect(bounds('DAY', 'Europe/Paris', '2026-10-25T12:00:00Z')).toEqual([
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
    ])
    // The month holding the change spans it: October 2026 is 31 days and one hour.
    expect(bounds('MONTH', 'Europe/Paris', '2026-10-10T00:00:00Z')).toEqual([
      '2026-09-30T22:00:00.000Z',
      '2026-10-31T23:00:00.000Z',
    ])
    // Instants inside the repeated hour belong to the same day.
    expect(bounds('DAY', 'Europe/Paris', '2026-10-25T00:30:00Z')).toEqual([
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
    ])
    expect(bounds('DAY', 'Europe/Paris', '2026-10-25T01:30:00Z')).toEqual([
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
    ])
  })

  it('when clocks skip midnight, the day starts at the end of the gap (America/Santiago, 2026-09-06)', () => {
    expect(bounds('DAY', 'America/Santiago', '2026-09-06T12:00:00Z')).toEqual([
      '2026-09-06T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
    ])
    expect(bounds('DAY', 'America/Santiago', '2026-09-06T03:59:59Z')).toEqual([
      '2026-09-05T04:00:00.000Z',
      '2026-09-06T04:00:00.000Z',
    ])
    // Fall back at 24:00 on 2026-04-04: that day lasts 25 hours.
    expect(bounds('DAY', 'America/Santiago', '2026-04-04T12:00:00Z')).toEqual([
      '2026-04-04T03:00:00.000Z',
      '2026-04-05T04:00:00.000Z',
    ])
    // ISO week containing the gap: Monday 2026-08-31 to Monday 2026-09-07.
    expect(bounds('WEEK', 'America/Santiago', '2026-09-06T12:00:00Z')).toEqual([
      '2026-08-31T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
    ])
  })

  it('every instant lies in [start, end) and consecutive periods tile time (every 7 hours, so every hour of the day, through a DST year)', () => {
    for (const tz of ['Europe/Paris', 'America/Santiago', 'Australia/Lord_Howe', 'UTC']) {
      for (const period of ['DAY', 'WEEK', 'MONTH'] as const) {
        let t = Date.parse('2026-01-01T00:00:00Z')
        let previous = periodBounds(period, tz, new Date(t))
        while (t < Date.parse('2027-01-01T00:00:00Z')) {
          t += 7 * 3_600_000
          const b = periodBounds(period, tz, new Date(t))
          expect(b.start.getTime()).toBeLessThanOrEqual(t)
          expect(b.end.getTime()).toBeGreaterThan(t)
          if (b.start.getTime() !== previous.start.getTime()) expect(b.start.getTime()).toBe(previous.end.getTime())
          previous = b
        }
      }
    }
  })

  it('checks time zone names', () => {
    expect(checkTimeZone('Europe/Paris')).toBe('Europe/Paris')
    expect(() => checkTimeZone('Mars/Olympus')).toThrow(/unknown time zone/)
    expect(() => checkTimeZone('')).toThrow()
  })
})

describe('budget arithmetic', () => {
  it('thresholds reached and crossed, exactly at the boundary', () => {
    expect(reachedThresholds([80, 50, 100], '10', '4.999999999999999999')).toEqual([])
    expect(reachedThresholds([80, 50, 100], '10', '5')).toEqual([50])
    expect(crossedThresholds([50, 80, 100], '10', '4.99', '8.00')).toEqual([50, 80])
    expect(crossedThresholds([50, 80, 100], '10', '8', '12')).toEqual([100])
    expect(crossedThresholds([50, 80, 100], '10', '12', '13')).toEqual([])
    expect(crossedThresholds([33], '0.03', '0', '0.0099')).toEqual([33])
  })

  it('remaining and available never go negative', () => {
    expect(remainingOf('10', '3.25').toFixed()).toBe('6.75')
    expect(remainingOf('10', '12').toFixed()).toBe('0')
    expect(availableOf('10', '3', '2.5').toFixed()).toBe('4.5')
    expect(availableOf('10', '8', '4').toFixed()).toBe('0')
  })

  it('hard limits: a positive estimate may fill the budget exactly; no estimate is refused once the limit is reached', () => {
    expect(fitsHardLimit('1', '0.5', '0.4', '0.1')).toBe(true)
    expect(fitsHardLimit('1', '0.5', '0.4', '0.100000000000000001')).toBe(false)
    expect(fitsHardLimit('1', '0.5', '0.4', '0')).toBe(true)
    expect(fitsHardLimit('1', '0.6', '0.4', '0')).toBe(false)
  })

  it('forecast = spent × period length ÷ elapsed, elapsed at least 5 % of the period', () => {
    const day = { start: at('2026-11-20T00:00:00Z'), end: at('2026-11-21T00:00:00Z') }
    expect(forecastSpend('0.007', day, at('2026-11-20T12:00:00Z')).toFixed()).toBe('0.014')
    expect(forecastSpend('1', day, at('2026-11-20T08:00:00Z')).toFixed()).toBe('3')
    // 1 minute in: measured over 5 % of the day (72 minutes), so ×20, not ×1440.
    expect(forecastSpend('1', day, at('2026-11-20T00:01:00Z')).toFixed()).toBe('20')
    expect(forecastSpend('5', day, at('2026-11-21T03:00:00Z')).toFixed()).toBe('5')
    // Non-terminating ratios are rounded to 18 places.
    expect(forecastSpend('1', day, at('2026-11-20T07:00:00Z')).toFixed()).toBe('3.428571428571428571')
  })
})
