import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { diffCatalog, rowInForce, samePrice, type CatalogDiff, type ExistingRow } from '../src/diff.ts'
import type { NormalizedPrice } from '../src/types.ts'

const EPOCH = new Date('1970-01-01T00:00:00Z')
const at = (iso: string) => new Date(iso)

function price(overrides: Partial<NormalizedPrice> = {}): NormalizedPrice {
  return {
    provider: 'openai',
    model: 'gpt-4o',
    usageType: 'input',
    unit: 'token',
    unitPrice: '0.0000025',
    currency: 'USD',
    tiers: null,
    timeWindow: null,
    effectiveFrom: EPOCH,
    effectiveTo: null,
    ...overrides,
  }
}

/** Writes a diff the way apply.ts does, in memory: closes move effective_to, opens get new ids. */
function applyDiff(rows: readonly ExistingRow[], diff: CatalogDiff): ExistingRow[] {
  const closes = new Map(diff.close.map((c) => [c.id, c.effectiveTo]))
  let nextId = Math.max(0, ...rows.map((r) => r.id)) + 1
  return [
    ...rows.map((row) => (closes.has(row.id) ? { ...row, effectiveTo: closes.get(row.id)! } : row)),
    ...diff.open.map((p) => ({ ...p, id: nextId++ })),
  ]
}

function sync(rows: readonly ExistingRow[], desired: readonly NormalizedPrice[], observedAt: Date) {
  const diff = diffCatalog(rows, desired, observedAt)
  return { diff, rows: applyDiff(rows, diff) }
}

describe('diffCatalog', () => {
  const gpt4o = [price(), price({ usageType: 'output', unitPrice: '0.00001' })]

  it('opens the whole timeline of a source into an empty catalog, with the source dates', () => {
    const desired = [
      ...gpt4o,
      price({ model: 'o3', effectiveTo: at('2025-06-10T00:00:00Z') }),
      price({ model: 'o3', unitPrice: '0.000002', effectiveFrom: at('2025-06-10T00:00:00Z') }),
    ]
    const diff = diffCatalog([], desired, at('2026-11-23T10:00:00Z'))
    expect(diff.close).toEqual([])
    expect(diff.unchanged).toBe(0)
    expect(diff.open).toHaveLength(4)
    expect(diff.open).toEqual(expect.arrayContaining(desired))
  })

  it('writes nothing when the same data is synced twice', () => {
    const first = sync([], gpt4o, at('2026-11-23T10:00:00Z'))
    const second = diffCatalog(first.rows, gpt4o, at('2026-11-24T10:00:00Z'))
    expect(second).toEqual({ open: [], close: [], unchanged: 2, corrections: [] })
  })

  it('treats equal decimals written differently as the same price', () => {
    const rows: ExistingRow[] = [{ ...price({ unitPrice: '0.00000250' }), id: 1 }]
    expect(diffCatalog(rows, [price()], at('2026-11-23T10:00:00Z'))).toEqual({
      open: [],
      close: [],
      unchanged: 1,
      corrections: [],
    })
  })

  it('closes the row in force and opens a new one when a price changes, keeping the past as billed', () => {
    const observedAt = at('2026-11-23T10:00:00Z')
    const { rows } = sync([], gpt4o, at('2026-01-01T00:00:00Z'))
    const changed = [price({ unitPrice: '0.000002' }), gpt4o[1]!]
    const diff = diffCatalog(rows, changed, observedAt)
    const inputRow = rows.find((r) => r.usageType === 'input')!
    expect(diff.close).toEqual([{ id: inputRow.id, effectiveTo: observedAt }])
    expect(diff.open).toEqual([price({ unitPrice: '0.000002', effectiveFrom: observedAt })])
    expect(diff.unchanged).toBe(1)
    // The closed row keeps its price: the diff has no way to say otherwise.
    const after = applyDiff(rows, diff)
    expect(after.find((r) => r.id === inputRow.id)).toMatchObject({
      unitPrice: '0.0000025',
      effectiveFrom: EPOCH,
      effectiveTo: observedAt,
    })
    // And the result is stable.
    expect(diffCatalog(after, changed, at('2026-11-25T00:00:00Z'))).toEqual({
      open: [],
      close: [],
      unchanged: 3,
      corrections: [],
    })
  })

  it('opens a model the catalog has never priced with its whole source timeline, leaving the others alone', () => {
    const { rows } = sync([], gpt4o, at('2026-01-01T00:00:00Z'))
    const mini = price({ model: 'gpt-4o-mini', unitPrice: '0.00000015' })
    const diff = diffCatalog(rows, [...gpt4o, mini], at('2026-11-23T10:00:00Z'))
    expect(diff).toEqual({ open: [mini], close: [], unchanged: 2, corrections: [] })
  })

  it('schedules a new start_date entry: the row in force closes at that date and the new price opens there', () => {
    const { rows } = sync([], gpt4o, at('2026-01-01T00:00:00Z'))
    const startDate = at('2027-01-01T00:00:00Z')
    const desired = [
      price({ effectiveTo: startDate }),
      price({ unitPrice: '0.000003', effectiveFrom: startDate }),
      gpt4o[1]!,
    ]
    const diff = diffCatalog(rows, desired, at('2026-11-23T10:00:00Z'))
    const inputRow = rows.find((r) => r.usageType === 'input')!
    expect(diff.close).toEqual([{ id: inputRow.id, effectiveTo: startDate }])
    expect(diff.open).toEqual([price({ unitPrice: '0.000003', effectiveFrom: startDate })])
    expect(diffCatalog(applyDiff(rows, diff), desired, at('2026-11-24T00:00:00Z')).open).toEqual([])
  })

  it('corrects the past from a start date the source states when the catalog had another price there', () => {
    const { rows } = sync([], gpt4o, at('2026-01-01T00:00:00Z'))
    const startDate = at('2026-06-01T00:00:00Z')
    const observedAt = at('2026-11-23T10:00:00Z')
    const desired = [
      price({ effectiveTo: startDate }),
      price({ unitPrice: '0.000003', effectiveFrom: startDate }),
      gpt4o[1]!,
    ]
    const diff = diffCatalog(rows, desired, observedAt)
    const inputRow = rows.find((r) => r.usageType === 'input')!
    expect(diff.close).toEqual([{ id: inputRow.id, effectiveTo: startDate }])
    expect(diff.open).toEqual([price({ unitPrice: '0.000003', effectiveFrom: startDate })])
    expect(diff.corrections).toEqual([
      { provider: 'openai', model: 'gpt-4o', usageType: 'input', timeWindow: null, from: startDate },
    ])
    // Only the timeline the source dated moves: output keeps its row, and the past before the date is kept.
    expect(diff.unchanged).toBe(1)
    const after = applyDiff(rows, diff)
    expect(
      rowInForce(
        after.filter((r) => r.usageType === 'input'),
        at('2026-05-31T23:59:59Z').getTime(),
      )?.id,
    ).toBe(inputRow.id)
    expect(
      rowInForce(
        after.filter((r) => r.usageType === 'input'),
        at('2026-06-01T00:00:00Z').getTime(),
      )?.unitPrice,
    ).toBe('0.000003')
    // Idempotent: a re-run on its own result writes nothing and corrects nothing.
    expect(diffCatalog(after, desired, observedAt)).toEqual({ open: [], close: [], unchanged: 3, corrections: [] })
    expect(diffCatalog(after, desired, at('2026-11-30T00:00:00Z'))).toEqual({
      open: [],
      close: [],
      unchanged: 3,
      corrections: [],
    })
  })

  it('corrects nothing when the catalog already has the stated price at the stated start', () => {
    const startDate = at('2026-06-01T00:00:00Z')
    const desired = [price({ effectiveTo: startDate }), price({ unitPrice: '0.000003', effectiveFrom: startDate })]
    const { rows } = sync([], desired, at('2026-01-01T00:00:00Z'))
    expect(diffCatalog(rows, desired, at('2026-11-23T10:00:00Z'))).toEqual({
      open: [],
      close: [],
      unchanged: 2,
      corrections: [],
    })
  })

  it('applies an undated (epoch) price change from observedAt only, as before', () => {
    const { rows } = sync([], [price()], at('2026-01-01T00:00:00Z'))
    const observedAt = at('2026-11-23T10:00:00Z')
    const diff = diffCatalog(rows, [price({ unitPrice: '0.000003' })], observedAt)
    expect(diff).toEqual({
      open: [price({ unitPrice: '0.000003', effectiveFrom: observedAt })],
      close: [{ id: rows[0]!.id, effectiveTo: observedAt }],
      unchanged: 0,
      corrections: [],
    })
  })

  it('corrects from the earliest disagreeing stated start, and fills a usage type the model lacked there', () => {
    const { rows } = sync([], [price()], at('2026-01-01T00:00:00Z'))
    const [d1, d2] = [at('2026-03-01T00:00:00Z'), at('2026-06-01T00:00:00Z')]
    const observedAt = at('2026-11-23T10:00:00Z')
    const desired = [
      price({ effectiveTo: d1 }),
      price({ unitPrice: '0.000002', effectiveFrom: d1, effectiveTo: d2 }),
      price({ unitPrice: '0.000003', effectiveFrom: d2 }),
      // A new usage type with a stated start: the model had rows there, this timeline none.
      price({ usageType: 'cache_read', unitPrice: '0.000001', effectiveFrom: d2 }),
    ]
    const { diff, rows: after } = sync(rows, desired, observedAt)
    expect(diff.corrections).toEqual([
      { provider: 'openai', model: 'gpt-4o', usageType: 'input', timeWindow: null, from: d1 },
      { provider: 'openai', model: 'gpt-4o', usageType: 'cache_read', timeWindow: null, from: d2 },
    ])
    expect(diff.close).toEqual([{ id: rows[0]!.id, effectiveTo: d1 }])
    expect(diff.open).toEqual([desired[1], desired[2], desired[3]])
    expect(diffCatalog(after, desired, observedAt)).toMatchObject({ open: [], close: [], corrections: [] })
  })

  it('reports no correction for a stated start in a gap the model never had a row for (it is filled anyway)', () => {
    const startDate = at('2026-06-01T00:00:00Z')
    const diff = diffCatalog(
      [],
      [price({ effectiveTo: startDate }), price({ unitPrice: '0.000003', effectiveFrom: startDate })],
      at('2026-11-23T10:00:00Z'),
    )
    expect(diff.open).toHaveLength(2)
    expect(diff.corrections).toEqual([])
  })

  it('closes the rows of a model the source dropped', () => {
    const { rows } = sync([], gpt4o, at('2026-01-01T00:00:00Z'))
    const observedAt = at('2026-11-23T10:00:00Z')
    const diff = diffCatalog(rows, [], observedAt)
    expect(diff.open).toEqual([])
    expect(diff.close).toEqual(rows.map((r) => ({ id: r.id, effectiveTo: observedAt })))
  })

  it('supersedes a scheduled price replaced before it took effect with a row of the same start', () => {
    const startDate = at('2027-01-01T00:00:00Z')
    const announced = [price({ effectiveTo: startDate }), price({ unitPrice: '0.000003', effectiveFrom: startDate })]
    const { rows } = sync([], announced, at('2026-01-01T00:00:00Z'))
    const revised = [price({ effectiveTo: startDate }), price({ unitPrice: '0.0000035', effectiveFrom: startDate })]
    const { diff, rows: after } = sync(rows, revised, at('2026-11-23T10:00:00Z'))
    expect(diff.open).toEqual([price({ unitPrice: '0.0000035', effectiveFrom: startDate })])
    expect(diff.close).toEqual([])
    expect(rowInForce(after, at('2027-02-01T00:00:00Z').getTime())?.unitPrice).toBe('0.0000035')
    expect(diffCatalog(after, revised, at('2026-11-24T00:00:00Z')).open).toEqual([])
  })

  it('keys rows by time window: an off-peak price is its own timeline, added from the moment it is seen on a known model', () => {
    const { rows } = sync(
      [],
      [price({ provider: 'deepseek', model: 'deepseek-chat', unitPrice: '0.00000027' })],
      at('2026-01-01T00:00:00Z'),
    )
    const observedAt = at('2026-11-23T10:00:00Z')
    const offPeak = price({
      provider: 'deepseek',
      model: 'deepseek-chat',
      unitPrice: '0.000000135',
      timeWindow: { startSecond: 59400, endSecond: 1800 },
    })
    const diff = diffCatalog(
      rows,
      [price({ provider: 'deepseek', model: 'deepseek-chat', unitPrice: '0.00000027' }), offPeak],
      observedAt,
    )
    expect(diff).toEqual({
      open: [{ ...offPeak, effectiveFrom: observedAt }],
      close: [],
      unchanged: 1,
      corrections: [],
    })
  })

  it('refuses a source whose rows overlap', () => {
    expect(() => diffCatalog([], [price(), price({ effectiveFrom: at('2026-01-01T00:00:00Z') })], new Date())).toThrow(
      /overlap/,
    )
  })

  it('compares tiers by start and exact price', () => {
    const a = {
      unit: 'token',
      unitPrice: '0.000003',
      currency: 'USD',
      tiers: [{ start: 200000, unitPrice: '0.000006' }],
    }
    expect(samePrice(a, { ...a, tiers: [{ start: 200000, unitPrice: '0.0000060' }] })).toBe(true)
    expect(samePrice(a, { ...a, tiers: [{ start: 128000, unitPrice: '0.000006' }] })).toBe(false)
    expect(samePrice(a, { ...a, tiers: null })).toBe(false)
  })
})

describe('diffCatalog over random sync histories', () => {
  const DAY = 86_400_000
  const BASE = Date.UTC(2026, 0, 1)
  const day = (d: number) => new Date(BASE + d * DAY)

  // A desired timeline for one usage type: consecutive segments over whole days, each priced or a gap.
  const segmentsArb = fc.array(
    fc.record({
      length: fc.integer({ min: 1, max: 6 }),
      price: fc.option(fc.constantFrom('1', '2', '3'), { nil: null }),
    }),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  // start null: the first segment is undated (SOURCE_EPOCH), like a genai-prices base price or any OpenRouter/LiteLLM row.
  const timelineArb = fc.record({
    start: fc.option(fc.integer({ min: 0, max: 8 }), { nil: null, freq: 3 }),
    segments: segmentsArb,
    openEnded: fc.boolean(),
  })
  const snapshotArb = fc.record({ input: timelineArb, output: fc.option(timelineArb, { nil: null }) })
  type Timeline = { start: number | null; segments: { length: number; price: string | null }[]; openEnded: boolean }
  const historyArb = fc.array(fc.record({ snapshot: snapshotArb, advance: fc.integer({ min: 1, max: 5 * 24 }) }), {
    minLength: 1,
    maxLength: 5,
  })

  function toPrices(usageType: string, timeline: Timeline): NormalizedPrice[] {
    const prices: NormalizedPrice[] = []
    let from = timeline.start ?? 0
    timeline.segments.forEach((segment, i) => {
      const last = i === timeline.segments.length - 1
      if (segment.price !== null) {
        const effectiveFrom = i === 0 && timeline.start === null ? EPOCH : day(from)
        prices.push(
          price({
            usageType,
            unitPrice: segment.price,
            effectiveFrom,
            effectiveTo: last && timeline.openEnded ? null : day(from + segment.length),
          }),
        )
      }
      from += segment.length
    })
    return prices
  }

  const desiredAt = (desired: readonly NormalizedPrice[], usageType: string, t: number) =>
    desired.find(
      (p) =>
        p.usageType === usageType &&
        p.effectiveFrom.getTime() <= t &&
        (p.effectiveTo === null || t < p.effectiveTo.getTime()),
    )
  const catalogAt = (rows: readonly ExistingRow[], usageType: string, t: number) =>
    rowInForce(
      rows.filter((r) => r.usageType === usageType),
      t,
    )
  const probes = Array.from({ length: 80 }, (_, i) => BASE + (i / 2 - 2) * DAY + 3_600_000)

  /** The rule, restated: the earliest stated (non-epoch) start before observedAt where the model had a row and this usage type another price or none. */
  function expectedCorrection(
    before: readonly ExistingRow[],
    desired: readonly NormalizedPrice[],
    usageType: string,
    observed: number,
  ): number | null {
    const starts = desired
      .filter(
        (p) =>
          p.usageType === usageType &&
          p.effectiveFrom.getTime() !== EPOCH.getTime() &&
          p.effectiveFrom.getTime() < observed,
      )
      .filter((p) => ['input', 'output'].some((u) => catalogAt(before, u, p.effectiveFrom.getTime())))
      .filter((p) => {
        const current = catalogAt(before, usageType, p.effectiveFrom.getTime())
        return !current || !samePrice(current, p)
      })
      .map((p) => p.effectiveFrom.getTime())
    return starts.length ? Math.min(...starts) : null
  }

  it('follows the source from observedAt on (from a stated start it disagrees with, before), never changes the rest of the billed past, and is idempotent', () => {
    fc.assert(
      fc.property(historyArb, (history) => {
        let rows: ExistingRow[] = []
        let observed = BASE
        for (const step of history) {
          observed += step.advance * 3_600_000
          const desired = [
            ...toPrices('input', step.snapshot.input),
            ...(step.snapshot.output ? toPrices('output', step.snapshot.output) : []),
          ]
          const before = rows
          const { diff, rows: after } = sync(before, desired, new Date(observed))
          const correctFrom = Object.fromEntries(
            ['input', 'output'].map((u) => [u, expectedCorrection(before, desired, u, observed)]),
          )
          expect(diff.corrections.map((c) => [c.usageType, c.from.getTime()]).sort()).toEqual(
            Object.entries(correctFrom)
              .filter(([, from]) => from !== null)
              .sort(),
          )

          for (const close of diff.close) {
            const row = before.find((r) => r.id === close.id)!
            expect(close.effectiveTo.getTime()).toBeGreaterThanOrEqual(correctFrom[row.usageType] ?? observed)
            expect(close.effectiveTo.getTime()).toBeGreaterThan(row.effectiveFrom.getTime())
            expect(close.effectiveTo.getTime()).toBeLessThan(row.effectiveTo?.getTime() ?? Infinity)
          }
          for (const t of probes) {
            const modelHadPrice = ['input', 'output'].some((u) => t < observed && catalogAt(before, u, t))
            for (const usageType of ['input', 'output']) {
              const now = catalogAt(after, usageType, t)
              const wanted = desiredAt(desired, usageType, t)
              const corrected = correctFrom[usageType] !== null && t >= correctFrom[usageType]! && t < observed
              if (modelHadPrice && !corrected) {
                expect(now?.id, 'the billed past is kept').toBe(catalogAt(before, usageType, t)?.id)
              } else if (modelHadPrice && corrected && !wanted) {
                // Where the correcting source states no price, the billed price stays (possibly in a copy of the row).
                const was = catalogAt(before, usageType, t)
                expect(
                  now === undefined ? was === undefined : was !== undefined && samePrice(now, was),
                  'kept where the source is silent',
                ).toBe(true)
              } else if (wanted) {
                expect(now && samePrice(now, wanted), `price at ${new Date(t).toISOString()}`).toBe(true)
              } else if (now) {
                // Known limit: a scheduled price the source withdrew before it took effect cannot be closed at its own start.
                expect(now.effectiveFrom.getTime()).toBeGreaterThanOrEqual(
                  corrected ? correctFrom[usageType]! : observed,
                )
              }
            }
          }
          expect(diffCatalog(after, desired, new Date(observed)), 'a re-run writes nothing').toMatchObject({
            open: [],
            close: [],
            corrections: [],
          })
          rows = after
        }
      }),
      { numRuns: 400 },
    )
  })
})
