import { describe, expect, it } from 'vitest'
import { problemOf, WidgetError } from '../src/client.ts'
import { daysPerBar, fillDays, groupDays, MIN_BAR_PX, remainingOf, usageTypeLabel } from '../src/format.ts'
import { CATALOGS, languageFor, type MessageKey } from '../src/messages.ts'

describe('message catalogs', () => {
  it('ship every message in every language, with the same placeholders as English', () => {
    const placeholders = (m: unknown) => [...new Set(JSON.stringify(m).match(/\{\w+\}/g) ?? [])].sort()
    const keys = Object.keys(CATALOGS.en!) as MessageKey[]
    expect(Object.keys(CATALOGS).sort()).toEqual(['de', 'en', 'es', 'fr', 'ja'])
    for (const [lang, catalog] of Object.entries(CATALOGS)) {
      expect(Object.keys(catalog).sort(), lang).toEqual([...keys].sort())
      for (const key of keys)
        expect(placeholders(catalog[key]), `${lang}.${key}`).toEqual(placeholders(CATALOGS.en![key]))
    }
  })

  it('picks the language shown from the locale, falling back to English, and says which (the lang attribute)', () => {
    expect(languageFor('de-DE').lang).toBe('de')
    expect(languageFor('de-DE').t('remaining')).toBe('Verbleibend')
    expect(languageFor('ja-JP').t('title')).toBe('利用状況と費用')
    expect(languageFor('pt-BR').lang).toBe('en')
    expect(languageFor('not a locale!').lang).toBe('en')
  })

  it('plural forms and placeholders', () => {
    const en = languageFor('en-US').t
    expect(en('events', { count: 1 })).toBe('1 event')
    expect(en('events', { count: 7 })).toBe('7 events')
    expect(languageFor('fr').t('events', { count: 1 })).toBe('1 événement')
    expect(languageFor('ja').t('events', { count: 1 })).toBe('1 件のイベント')
    expect(en('ofBudget', { limit: '$5.00' })).toBe('of $5.00 budget')
  })

  it('tenant overrides: a message of a shipped language, a whole new language, English for what they lack', () => {
    const overrides = { de: { title: 'KI-Nutzung' }, nl: { title: 'Gebruik en kosten', remaining: 'Resterend' } }
    expect(languageFor('de-AT', overrides).t('title')).toBe('KI-Nutzung')
    expect(languageFor('de-AT', overrides).t('remaining')).toBe('Verbleibend')
    const nl = languageFor('nl-NL', overrides)
    expect(nl.lang).toBe('nl')
    expect(nl.t('remaining')).toBe('Resterend')
    expect(nl.t('used')).toBe('Used')
  })

  it('names usage types in the language shown', () => {
    expect(usageTypeLabel('cache_read', languageFor('de').t)).toBe('Cache-Lesen')
    expect(usageTypeLabel('web_searches', languageFor('de').t)).toBe('Web searches')
  })
})

describe('day bars and budget figures', () => {
  it('groups days so every bar is at least 24 px wide, amounts summed exactly', () => {
    expect(daysPerBar(31, 1000)).toBe(1)
    expect(daysPerBar(31, 650)).toBe(2)
    expect(daysPerBar(31, 320)).toBe(3)
    for (const width of [200, 320, 375, 650, 1000])
      expect(width / Math.ceil(31 / daysPerBar(31, width))).toBeGreaterThanOrEqual(MIN_BAR_PX)
    const days = fillDays(
      [
        { model: null, feature: null, bucketStart: '2026-11-01T00:00:00.000Z', events: 1, amount: '0.1' },
        { model: null, feature: null, bucketStart: '2026-11-02T00:00:00.000Z', events: 2, amount: '0.2' },
      ],
      '2026-11-01T00:00:00Z',
      '2026-11-04T00:00:00Z',
      Date.parse('2026-11-05T00:00:00Z'),
    )
    const bars = groupDays(days, 2)
    expect(bars.map((b) => [b.day.slice(0, 10), b.amount, b.events, b.days])).toEqual([
      ['2026-11-01', '0.3', 3, 2],
      ['2026-11-03', '0', 0, 1],
    ])
  })

  it('over budget says by how much, exactly', () => {
    expect(remainingOf('5.30', '5')).toEqual({ over: true, amount: '0.3' })
    expect(remainingOf('4.1', '5')).toEqual({ over: false, amount: '0.9' })
  })

  it('tells an expired session from an invalid one and from an unreachable service', () => {
    expect(problemOf(new WidgetError('x', 'UNAUTHENTICATED', 'WIDGET_SESSION_EXPIRED'))).toBe('expired')
    expect(problemOf(new WidgetError('x', 'UNAUTHENTICATED'))).toBe('invalid')
    expect(problemOf(new WidgetError('x', 'BAD_TOKEN'))).toBe('invalid')
    expect(problemOf(new WidgetError('x', 'UNAUTHENTICATED', 'WIDGET_ORIGIN_NOT_ALLOWED'))).toBe('origin')
    expect(problemOf(new Error('token-url answered HTTP 500'))).toBe('error')
  })
})
