import { calcPrice, waitForUpdate, type Provider } from '@pydantic/genai-prices'
import { beforeAll, describe, expect, it } from 'vitest'
import { rowInForce } from '../src/diff.ts'
import {
  fromGenaiPrices,
  loadBundledGenaiPrices,
  resolveGenaiPricesModel,
  secondOfDay,
  unitPriceOf,
} from '../src/sources/genai-prices.ts'
import type { NormalizedPrice, SourceSnapshot } from '../src/types.ts'
import { UNIT_BY_PRICE_KEY } from '../src/units.ts'

const EPOCH = new Date('1970-01-01T00:00:00Z')

function rowsOf(snapshot: SourceSnapshot, provider: string, model: string): NormalizedPrice[] {
  return snapshot.prices.filter((p) => p.provider === provider && p.model === model)
}

/** The catalog's selection rule, restated independently: a matching windowed row wins, else the unwindowed row in force. */
function selectAt(rows: NormalizedPrice[], at: Date): Map<string, NormalizedPrice> {
  const withIds = rows.map((row, id) => ({ ...row, id }))
  const msOfDay = ((at.getTime() % 86_400_000) + 86_400_000) % 86_400_000
  const inWindow = (row: NormalizedPrice) => {
    const start = row.timeWindow!.startSecond * 1000
    const end = row.timeWindow!.endSecond * 1000
    return start < end ? msOfDay >= start && msOfDay < end : msOfDay >= start || msOfDay < end
  }
  const selected = new Map<string, NormalizedPrice>()
  for (const usageType of new Set(rows.map((r) => r.usageType))) {
    const ofType = withIds.filter((r) => r.usageType === usageType)
    const row =
      rowInForce(
        ofType.filter((r) => r.timeWindow && inWindow(r)),
        at.getTime(),
      ) ??
      rowInForce(
        ofType.filter((r) => !r.timeWindow),
        at.getTime(),
      )
    if (row) selected.set(usageType, row)
  }
  return selected
}

describe('genai-prices adapter on the bundled data', () => {
  let providers: Provider[]
  let snapshot: SourceSnapshot

  beforeAll(async () => {
    providers = (await waitForUpdate())!
    snapshot = await loadBundledGenaiPrices()
  })

  it('names the source and its version and loads every priced model', () => {
    expect(snapshot.source).toBe('genai-prices')
    expect(snapshot.sourceVersion).toBe('0.1.8')
    expect(providers.length).toBe(43)
    expect(snapshot.models).toBeGreaterThan(1500)
    expect(snapshot.prices.length).toBeGreaterThan(3500)
    expect(snapshot.skipped).toEqual([])
  })

  it('turns gpt-4o per-million prices into exact per-token prices', () => {
    const rows = rowsOf(snapshot, 'openai', 'gpt-4o')
    const byType = Object.fromEntries(rows.map((r) => [r.usageType, r]))
    expect(byType.input).toMatchObject({
      unit: 'token',
      unitPrice: '0.0000025',
      currency: 'USD',
      tiers: null,
      timeWindow: null,
      effectiveFrom: EPOCH,
      effectiveTo: null,
    })
    expect(byType.cache_read!.unitPrice).toBe('0.00000125')
    expect(byType.output!.unitPrice).toBe('0.00001')
    expect(byType.web_searches).toMatchObject({ unit: 'search', unitPrice: '0.01' })
    expect(rows).toHaveLength(5)
  })

  it('gives claude-sonnet-4-6 long-context tiers before 2026-03-13 and flat prices from then on', () => {
    const march13 = new Date('2026-03-13T00:00:00Z')
    const input = rowsOf(snapshot, 'anthropic', 'claude-sonnet-4-6').filter((r) => r.usageType === 'input')
    expect(input).toEqual([
      expect.objectContaining({
        unitPrice: '0.000003',
        tiers: [{ start: 200000, unitPrice: '0.000006' }],
        effectiveFrom: EPOCH,
        effectiveTo: march13,
      }),
      expect.objectContaining({ unitPrice: '0.000003', tiers: null, effectiveFrom: march13, effectiveTo: null }),
    ])
    const output = rowsOf(snapshot, 'anthropic', 'claude-sonnet-4-6').filter((r) => r.usageType === 'output')
    expect(output.map((r) => [r.unitPrice, r.tiers?.[0]?.unitPrice ?? null])).toEqual([
      ['0.000015', '0.0000225'],
      ['0.000015', null],
    ])
    // web search has the same price in both entries: one row, never closed.
    const search = rowsOf(snapshot, 'anthropic', 'claude-sonnet-4-6').filter((r) => r.usageType === 'web_searches')
    expect(search).toEqual([expect.objectContaining({ unitPrice: '0.01', effectiveFrom: EPOCH, effectiveTo: null })])
  })

  it('gives deepseek-chat an all-day row and a 00:30–16:30 UTC row per usage type', () => {
    const rows = rowsOf(snapshot, 'deepseek', 'deepseek-chat')
    const input = rows.filter((r) => r.usageType === 'input')
    expect(input).toEqual([
      expect.objectContaining({ unitPrice: '0.000000135', timeWindow: null, effectiveFrom: EPOCH, effectiveTo: null }),
      expect.objectContaining({
        unitPrice: '0.00000027',
        timeWindow: { startSecond: 1800, endSecond: 59400 },
        effectiveFrom: EPOCH,
        effectiveTo: null,
      }),
    ])
    expect(rows).toHaveLength(6)
  })

  it('closes a usage type that a later start_date entry no longer prices, and opens one it adds', () => {
    const rows = rowsOf(snapshot, 'mistral', 'mistral-ocr-latest')
    const annotated = rows.filter((r) => r.usageType === 'input_annotated_document_pages')
    expect(annotated[0]).toMatchObject({
      unitPrice: '0.003',
      effectiveFrom: new Date('2025-05-22T00:00:00Z'),
      effectiveTo: new Date('2026-06-23T00:00:00Z'),
    })
    const pages = rows
      .filter((r) => r.usageType === 'input_document_pages')
      .map((r) => [r.unitPrice, r.effectiveFrom.toISOString()])
    expect(pages).toEqual([
      ['0.001', '1970-01-01T00:00:00.000Z'],
      ['0.002', '2025-12-18T00:00:00.000Z'],
      ['0.004', '2026-06-23T00:00:00.000Z'],
    ])
  })

  it('rounds only per-hour prices that have no finite per-second decimal, at 30 places', () => {
    const rows = rowsOf(snapshot, 'groq', 'whisper-large-v3-turbo')
    expect(rows.find((r) => r.usageType === 'audio_seconds')!.unitPrice).toBe('0.000011111111111111111111111111')
    expect(unitPriceOf(0.36, 3600)).toBe('0.0001')
    expect(unitPriceOf(2.5, 1e6)).toBe('0.0000025')
    expect(unitPriceOf(0.1, 1e3)).toBe('0.0001')
  })

  it('never overlaps two rows of one (provider, model, usage type, window)', () => {
    const timelines = new Map<string, NormalizedPrice[]>()
    for (const p of snapshot.prices) {
      const key = [p.provider, p.model, p.usageType, JSON.stringify(p.timeWindow)].join('|')
      timelines.set(key, [...(timelines.get(key) ?? []), p])
    }
    for (const rows of timelines.values()) {
      const sorted = [...rows].sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime())
      for (let i = 1; i < sorted.length; i++) {
        expect(sorted[i - 1]!.effectiveTo!.getTime()).toBeLessThanOrEqual(sorted[i]!.effectiveFrom.getTime())
      }
    }
  })

  it('selects, at any instant, exactly the prices genai-prices itself would charge', () => {
    const instants: Date[] = []
    for (const day of [
      '2024-01-01',
      '2025-05-21',
      '2025-05-22',
      '2025-12-18',
      '2026-03-12',
      '2026-03-13',
      '2026-08-16',
      '2026-08-17',
      '2026-08-21',
      '2027-01-01',
      '2027-06-01',
    ]) {
      for (const time of [
        '00:00:00',
        '00:29:59',
        '00:30:00',
        '01:00:00',
        '03:59:59',
        '04:00:00',
        '06:00:00',
        '09:59:59',
        '12:00:00',
        '16:29:59',
        '16:30:00',
        '23:59:59',
      ]) {
        instants.push(new Date(`${day}T${time}Z`))
      }
    }
    let compared = 0
    for (const provider of providers) {
      for (const model of provider.models.filter((m) => Array.isArray(m.prices))) {
        const rows = rowsOf(snapshot, provider.id, model.id)
        for (const at of instants) {
          const calc = calcPrice({ input_tokens: 1000, output_tokens: 1000 }, model.id, {
            providerId: provider.id,
            timestamp: at,
          })
          if (!calc || calc.model.id !== model.id) continue
          const expected = new Map<
            string,
            { unitPrice: string; tiers: { start: number; unitPrice: string }[] | null }
          >()
          for (const [key, value] of Object.entries(calc.model_price)) {
            if (value === undefined) continue
            const unit = UNIT_BY_PRICE_KEY.get(key)!
            const tiers =
              typeof value === 'number' || value.tiers.length === 0
                ? null
                : value.tiers.map((t) => ({ start: t.start, unitPrice: unitPriceOf(t.price, unit.per) }))
            expected.set(unit.usageType, {
              unitPrice: unitPriceOf(typeof value === 'number' ? value : value.base, unit.per),
              tiers,
            })
          }
          const selected = new Map(
            [...selectAt(rows, at)].map(([type, row]) => [type, { unitPrice: row.unitPrice, tiers: row.tiers }]),
          )
          expect(selected, `${provider.id}/${model.id} at ${at.toISOString()}`).toEqual(expected)
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(1500)
  })
})

describe('fromGenaiPrices on constructed data', () => {
  const provider = (prices: unknown): Provider[] =>
    [
      {
        id: 'acme',
        name: 'Acme',
        api_pattern: 'acme',
        models: [{ id: 'rocket', match: { equals: 'rocket' }, prices }],
      },
    ] as Provider[]

  it('lets a later start_date entry end an earlier one, and skips an entry that a later, earlier-dated one hides', () => {
    const snapshot = fromGenaiPrices(
      provider([
        { prices: { input_mtok: 1 } },
        { constraint: { type: 'start_date', start_date: '2026-06-01' }, prices: { input_mtok: 3 } },
        { constraint: { type: 'start_date', start_date: '2026-01-01' }, prices: { input_mtok: 2 } },
      ]),
      'test',
    )
    // genai-prices checks the last entry first: from 2026-01-01 it always wins, so the June entry never applies.
    expect(
      snapshot.prices.map((p) => [p.unitPrice, p.effectiveFrom.toISOString(), p.effectiveTo?.toISOString() ?? null]),
    ).toEqual([
      ['0.000001', '1970-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
      ['0.000002', '2026-01-01T00:00:00.000Z', null],
    ])
  })

  it('ends a time window where a later start_date entry takes over', () => {
    const snapshot = fromGenaiPrices(
      provider([
        { prices: { output_mtok: 10 } },
        {
          constraint: { type: 'time_of_date', start_time: '22:00:00Z', end_time: '06:00:00Z' },
          prices: { output_mtok: 5 },
        },
        { constraint: { type: 'start_date', start_date: '2026-02-01' }, prices: { output_mtok: 8 } },
      ]),
      'test',
    )
    const windowed = snapshot.prices.filter((p) => p.timeWindow)
    expect(windowed).toEqual([
      expect.objectContaining({
        unitPrice: '0.000005',
        timeWindow: { startSecond: 79200, endSecond: 21600 },
        effectiveTo: new Date('2026-02-01T00:00:00Z'),
      }),
    ])
  })

  it('lists price keys it cannot represent and counts only models with prices', () => {
    const snapshot = fromGenaiPrices(provider({ input_mtok: 1, teleport_kcount: 4 }), 'test')
    expect(snapshot.skipped).toEqual([
      {
        model: 'acme/rocket',
        field: 'teleport_kcount',
        rawValue: '4',
        reason: 'unknown unit: no usage type for teleport_kcount',
      },
    ])
    expect(snapshot.models).toBe(1)
    expect(fromGenaiPrices(provider({}), 'test').models).toBe(0)
  })

  it('reads time-of-day offsets the way genai-prices does', () => {
    expect(secondOfDay('00:30:00Z')).toBe(1800)
    expect(secondOfDay('08:00:00+08:00')).toBe(0)
    expect(secondOfDay('23:00:00-02:00')).toBe(3600)
  })
})

describe('resolveGenaiPricesModel', () => {
  it('resolves aliases, dated names, gateway names and fallback providers to the owning provider', () => {
    expect(resolveGenaiPricesModel('gpt-4o-2024-08-06')).toEqual({ provider: 'openai', model: 'gpt-4o' })
    expect(resolveGenaiPricesModel('  GPT-4o ', 'OpenAI')).toEqual({ provider: 'openai', model: 'gpt-4o' })
    expect(resolveGenaiPricesModel('claude-3-5-sonnet-latest')).toEqual({
      provider: 'anthropic',
      model: 'claude-3-5-sonnet',
    })
    expect(resolveGenaiPricesModel('openai/gpt-4o')).toEqual({ provider: 'openai', model: 'gpt-4o' })
    expect(resolveGenaiPricesModel('anthropic/claude-3.5-sonnet', 'openrouter')).toEqual({
      provider: 'openrouter',
      model: 'anthropic/claude-3.5-sonnet',
    })
    // Azure falls back to OpenAI's model list: the row that prices it is OpenAI's.
    expect(resolveGenaiPricesModel('gpt-4o', 'azure')).toEqual({ provider: 'openai', model: 'gpt-4o' })
  })

  it('returns null for what no provider prices', () => {
    expect(resolveGenaiPricesModel('no-such-model-xyz')).toBeNull()
    expect(resolveGenaiPricesModel('gpt-4o', 'no-such-provider')).toBeNull()
    expect(resolveGenaiPricesModel('   ')).toBeNull()
  })
})
