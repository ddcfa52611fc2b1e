/**
 * usageSummary's partial hours. planHours() reads each end's partial hour either directly (its
 * part inside the range, added) or as its whole hour's rollup less the part outside the range
 * (taken away), whichever is shorter, and raw events count with the net change of their
 * re-pricing corrections. Checked: the plan tiles [from, to) exactly (fast-check), and the
 * summary equals a plain SQL sum over the events at their latest correction, for ranges that read
 * ends either way, with every grouping, for a customer and the tenant.
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Decimal } from '../../src/money/decimal.ts'
import { HOUR_MS, planHours } from '../../src/shared/date-range.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { seededRandom } from '../../src/shared/random.ts'

describe('planHours', () => {
  const BASE = Date.parse('2026-11-10T00:00:00Z')
  it('tiles [from, to): every instant counts once inside the range and zero times outside', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 * HOUR_MS }),
        fc.integer({ min: 1, max: 50 * HOUR_MS }),
        fc.array(fc.integer({ min: -2 * HOUR_MS, max: 54 * HOUR_MS }), { minLength: 20, maxLength: 20 }),
        (start, length, probes) => {
          const from = new Date(BASE + start)
          const to = new Date(BASE + start + length)
          const { hours, raw } = planHours(from, to)
          if (hours) {
            expect(hours.from.getTime() % HOUR_MS).toBe(0)
            expect(hours.to.getTime() % HOUR_MS).toBe(0)
          }
          // No end reads more than half an hour of raw events.
          for (const r of raw) expect(r.to.getTime() - r.from.getTime()).toBeLessThanOrEqual(HOUR_MS / 2)
          const inside = (x: number, r: { from: Date; to: Date }) => x >= r.from.getTime() && x < r.to.getTime()
          for (const offset of [...probes, start, start + length - 1, start + length]) {
            const x = BASE + offset
            const count = (hours && inside(x, hours) ? 1 : 0) + raw.reduce((n, r) => n + (inside(x, r) ? r.sign : 0), 0)
            expect(count).toBe(inside(x, { from, to }) ? 1 : 0)
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  it('reads nothing raw for whole hours, and a late "now" as its hour less the rest', () => {
    expect(planHours(new Date('2026-11-10T05:00:00Z'), new Date('2026-11-12T00:00:00Z')).raw).toEqual([])
    const late = planHours(new Date('2026-11-01T00:00:00Z'), new Date('2026-11-10T05:50:00Z'))
    expect(late.hours).toEqual({ from: new Date('2026-11-01T00:00:00Z'), to: new Date('2026-11-10T06:00:00Z') })
    expect(late.raw).toEqual([
      { from: new Date('2026-11-10T05:50:00Z'), to: new Date('2026-11-10T06:00:00Z'), sign: -1 },
    ])
  })

  it('never widens past the last DateTime', () => {
    const plan = planHours(new Date('9999-12-31T22:10:00Z'), new Date('9999-12-31T23:59:59.999Z'))
    expect(plan).toEqual({
      hours: { from: new Date('9999-12-31T22:00:00Z'), to: new Date('9999-12-31T23:00:00Z') },
      raw: [
        { from: new Date('9999-12-31T22:00:00Z'), to: new Date('9999-12-31T22:10:00Z'), sign: -1 },
        { from: new Date('9999-12-31T23:00:00Z'), to: new Date('9999-12-31T23:59:59.999Z'), sign: 1 },
      ],
    })
  })
})

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

async function ok(query: string, variables?: Record<string, unknown>) {
  const r = await t.gql(query, variables)
  expect(r.errors).toBeUndefined()
  return r.data!
}

const MODELS = ['gpt-4o', 'gpt-4o-mini', 'mystery-3'] // mystery-3: UNPRICED
const FEATURES = ['chat', 'search', null]

beforeAll(async () => {
  t = await createTestApp({ clock })
  await ok(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "20" }) { kind } }`)
  const next = seededRandom(20261213)
  // 400 events over 2026-11-18 00:00 … 2026-11-19 23:59, at any second, two customers.
  const events = Array.from({ length: 400 }, (_, i) => ({
    id: `edge-${i}`,
    customerId: next() < 0.6 ? 'edge-a' : 'edge-b',
    model: MODELS[Math.floor(next() * MODELS.length)]!,
    feature: FEATURES[Math.floor(next() * FEATURES.length)],
    timestamp: new Date(
      Date.parse('2026-11-18T00:00:00Z') + Math.floor((next() * 48 * HOUR_MS) / 1000) * 1000,
    ).toISOString(),
    inputTokens: 100 + Math.floor(next() * 4000),
    outputTokens: Math.floor(next() * 800),
  }))
  await ok(`mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }`, { e: events })
  // A negotiated gpt-4o price from 18 Nov 13:00, re-priced twice (corrections chain), the second
  // time only from the 19th.
  for (const [unitPrice, from] of [
    ['0.000001', '2026-11-18T13:00:00Z'],
    ['0.0000008', '2026-11-19T00:00:00Z'],
  ] as const) {
    for (const usageType of ['input', 'output'])
      await ok(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
        i: { provider: 'openai', model: 'gpt-4o', usageType, unitPrice, effectiveFrom: from },
      })
    await ok(
      `mutation ($from: DateTime!) { repriceUsage(model: "gpt-4o", from: $from, to: "2026-11-20T00:00:00Z", reason: "negotiated") { examined } }`,
      { from },
    )
  }
  const corrections = await sql<{ n: string }>`select count(*) as n from usage_corrections`.execute(t.database.db)
  expect(Number(corrections.rows[0]!.n)).toBeGreaterThan(20)
})
afterAll(() => t?.close())

/** The plain definition: every event in [from, to) at its latest correction, summed in SQL. */
async function reference(customerId: string | null, from: string, to: string) {
  const { rows } = await sql<{
    events: string
    unpriced: string
    input: string
    output: string
    cost: string
    amount: string
  }>`
    select count(*) as events, count(*) filter (where e.status = 'UNPRICED') as unpriced,
      coalesce(sum(e.input_tokens), 0) as input, coalesce(sum(e.output_tokens), 0) as output,
      coalesce(sum(coalesce(c.new_cost, e.cost)), 0)::text as cost, coalesce(sum(coalesce(c.new_amount, e.amount)), 0)::text as amount
    from usage_events e
    left join lateral (select new_cost, new_amount from usage_corrections c
      where c.tenant_id = e.tenant_id and c.event_id = e.id order by c.id desc limit 1) c on true
    where e.tenant_id = ${t.tenant.id} and (${customerId}::text is null or e.customer_id = ${customerId})
      and e.ts >= ${from}::timestamptz and e.ts < ${to}::timestamptz`.execute(t.database.db)
  const r = rows[0]!
  return {
    events: Number(r.events),
    unpricedEvents: Number(r.unpriced),
    inputTokens: Number(r.input),
    outputTokens: Number(r.output),
    cost: new Decimal(r.cost).toFixed(),
    amount: new Decimal(r.amount).toFixed(),
  }
}

const FIGURES = 'events unpricedEvents inputTokens outputTokens cost amount'
const SUMMARY = `query ($c: String, $from: DateTime!, $to: DateTime!, $g: [UsageDimension!]) {
  usageSummary(customerId: $c, from: $from, to: $to, groupBy: $g) {
    ${FIGURES} groups { model provider feature usageType bucketStart events inputTokens outputTokens cost amount }
  }
}`
const GROUPINGS = [
  [],
  ['MODEL'],
  ['DAY'],
  ['MODEL', 'DAY'],
  ['PROVIDER'],
  ['FEATURE'],
  ['HOUR'],
  ['USAGE_TYPE'],
  ['MODEL', 'USAGE_TYPE'],
]

// Ends read directly (minutes 40 and 20: the shorter part is inside) and as their hour less the
// rest (minutes 10 and 50), within one hour both ways, and across midnight.
const RANGES = [
  ['2026-11-18T03:40:13Z', '2026-11-19T20:20:07Z'],
  ['2026-11-18T03:10:13Z', '2026-11-19T20:50:07Z'],
  ['2026-11-18T03:10:13Z', '2026-11-19T20:20:07Z'],
  ['2026-11-18T15:05:00Z', '2026-11-18T15:55:00Z'],
  ['2026-11-18T15:20:00Z', '2026-11-18T15:35:00Z'],
  ['2026-11-18T23:45:30Z', '2026-11-19T00:14:30Z'],
  ['2026-11-18T23:05:30Z', '2026-11-19T01:58:30Z'],
] as const

describe('usageSummary over partial hours, with re-pricing corrections', () => {
  for (const [from, to] of RANGES) {
    it(`equals the events at their latest correction over [${from}, ${to})`, async () => {
      for (const customerId of ['edge-a', null]) {
        const expected = await reference(customerId, from, to)
        expect(expected.events).toBeGreaterThan(0)
        for (const g of GROUPINGS) {
          const { usageSummary: s } = await ok(SUMMARY, { c: customerId, from, to, g })
          expect({ grouping: g, ...pick(s) }).toEqual({ grouping: g, ...expected })
          if (g.length === 0) continue
          // The groups add up to the totals and none is empty.
          const sum = (field: 'cost' | 'amount') =>
            s.groups.reduce((n: Decimal, x: Record<string, string>) => n.plus(x[field]!), new Decimal(0)).toFixed()
          expect({ grouping: g, cost: sum('cost'), amount: sum('amount') }).toEqual({
            grouping: g,
            cost: expected.cost,
            amount: expected.amount,
          })
          if (!g.includes('USAGE_TYPE')) {
            expect(s.groups.reduce((n: number, x: { events: number }) => n + x.events, 0)).toBe(expected.events)
            for (const group of s.groups) expect(group.events).toBeGreaterThan(0)
          }
        }
      }
    })
  }
})

function pick(s: Record<string, unknown>) {
  return {
    events: s.events,
    unpricedEvents: s.unpricedEvents,
    inputTokens: s.inputTokens,
    outputTokens: s.outputTokens,
    cost: new Decimal(s.cost as string).toFixed(),
    amount: new Decimal(s.amount as string).toFixed(),
  }
}
