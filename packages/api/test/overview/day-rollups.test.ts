/**
 * The per-day rollups (usage_day_models, usage_day_customers and the usage_day_deltas not yet
 * compacted into them) that the overview and top customers read for whole UTC days: after every
 * kind of write to usage_rollups — batches, replays, single calls, late pricing, re-pricing
 * corrections, a bulk delete — with compaction run at arbitrary points, they equal usage_rollups
 * summed per day exactly, and the overview over a multi-day range equals usageSummary.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, type TestApp } from '../support/app.ts'
import { seededRandom } from '../../src/shared/random.ts'

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

async function ok(query: string, variables?: Record<string, unknown>, key?: string) {
  const r = await t.gql(query, variables, key)
  expect(r.errors).toBeUndefined()
  return r.data!
}

const next = seededRandom(20261212)
const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!

const CUSTOMERS = ['c-1', 'c-2', 'c-3', 'c-4', 'c-5']
const MODELS = [
  { model: 'gpt-4o' },
  { model: 'gpt-4o-mini' },
  { model: 'claude-3-5-haiku-20241022', provider: 'anthropic' },
  { model: 'mystery-2', provider: 'acme-ai' }, // UNPRICED until an override and re-pricing
]
let seq = 0
/** Events spread over 2026-11-14 … 2026-11-20 11:59 UTC, any minute of any hour. */
function events(n: number) {
  return Array.from({ length: n }, () => {
    const day = 14 + Math.floor(next() * 7)
    const hour = day === 20 ? Math.floor(next() * 12) : Math.floor(next() * 24)
    const minute = Math.floor(next() * 60)
    return {
      id: `dr-${++seq}`,
      customerId: pick(CUSTOMERS),
      ...pick(MODELS),
      timestamp: `2026-11-${day}T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:00Z`,
      inputTokens: 100 + Math.floor(next() * 5000),
      outputTokens: Math.floor(next() * 900),
    }
  })
}

const RECORD = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded duplicates } }`

/** Per-day figures two ways, as text so NUMERIC scales never matter: the read models vs usage_rollups. */
async function perDay(by: 'model' | 'customer' | 'customer-model') {
  const keys = {
    model: sql`provider, model`,
    customer: sql`customer_id`,
    'customer-model': sql`customer_id, provider, model`,
  }[by]
  const models = {
    model: sql`usage_day_models`,
    customer: sql`usage_day_customers`,
    'customer-model': sql`usage_day_customer_models`,
  }[by]
  const sums = sql`sum(events)::text as events, sum(unpriced_events)::text as unpriced, sum(cost)::numeric::text as cost, sum(amount)::numeric::text as amount`
  const { rows: read } = await sql<Record<string, string>>`
    select tenant_id, day, ${keys}, ${sums} from (
      select tenant_id, day, ${keys}, events, unpriced_events, cost, amount from ${models}
      union all
      select tenant_id, day, ${keys}, events, unpriced_events, cost, amount from usage_day_deltas) x
    group by tenant_id, day, ${keys}
    having sum(events) <> 0 or sum(cost) <> 0 or sum(amount) <> 0
    order by 1, 2, ${keys}`.execute(t.database.db)
  const { rows: truth } = await sql<Record<string, string>>`
    select tenant_id, date_trunc('day', bucket at time zone 'UTC') at time zone 'UTC' as day, ${keys}, ${sums}
    from usage_rollups group by 1, 2, ${keys} order by 1, 2, ${keys}`.execute(t.database.db)
  const text = (rows: Record<string, string>[]) =>
    rows.map((r) =>
      JSON.stringify({ ...r, day: new Date(r.day!).toISOString(), cost: norm(r.cost!), amount: norm(r.amount!) }),
    )
  return { read: text(read), truth: text(truth) }
}
/** 1.50 and 1.5 are the same money. */
const norm = (n: string) => (n.includes('.') ? n.replace(/0+$/, '').replace(/\.$/, '') : n)

async function expectExact() {
  for (const by of ['model', 'customer', 'customer-model'] as const) {
    const { read, truth } = await perDay(by)
    expect(read.length).toBeGreaterThan(0)
    expect(read).toEqual(truth)
  }
}

const pendingDeltas = async () =>
  Number((await sql<{ n: string }>`select count(*) as n from usage_day_deltas`.execute(t.database.db)).rows[0]!.n)

beforeAll(async () => {
  t = await createTestApp({ clock })
  await ok(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "25" }) { kind } }`)
})
afterAll(() => t.close())

describe('per-day rollups', () => {
  it('equal usage_rollups per day after batches, replays, single calls and compaction at any point', async () => {
    const first = events(120)
    await ok(RECORD, { e: first })
    await expectExact()
    expect(await pendingDeltas()).toBeGreaterThan(0)
    // Part compacted, part not: reads add the two.
    expect(await t.app.services.overview.compactDayRollups()).toBeGreaterThan(0)
    expect(await pendingDeltas()).toBe(0)
    await ok(RECORD, { e: [...events(80), ...first.slice(0, 30)] }) // 30 replays count nothing
    await expectExact()
    for (const e of events(6)) await ok(`mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }`, { e })
    await expectExact()
    // A second tenant's usage stays its own.
    const other = await t.createTenant('other')
    await ok(RECORD, { e: events(40) }, other.apiKey)
    await t.app.services.overview.compactDayRollups()
    await expectExact()
  })

  it('follow late pricing and re-pricing corrections (rollup updates), compacted or not', async () => {
    await ok(RECORD, { e: events(60) })
    for (const usageType of ['input', 'output'])
      await ok(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
        i: {
          provider: 'acme-ai',
          model: 'mystery-2',
          usageType,
          unitPrice: '0.0000017',
          effectiveFrom: '2026-11-01T00:00:00Z',
        },
      })
    const repriced = await ok(
      `mutation { repriceUsage(model: "mystery-2", provider: "acme-ai", from: "2026-11-14T00:00:00Z", to: "2026-11-21T00:00:00Z", reason: "test") { examined } }`,
    )
    expect(repriced.repriceUsage.examined).toBeGreaterThan(0)
    await expectExact()
    // A lower negotiated gpt-4o price, re-priced: corrections lower cost and amount per day.
    for (const usageType of ['input', 'output'])
      await ok(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
        i: {
          provider: 'openai',
          model: 'gpt-4o',
          usageType,
          unitPrice: '0.000001',
          effectiveFrom: '2026-11-16T00:00:00Z',
        },
      })
    await ok(
      `mutation { repriceUsage(model: "gpt-4o", from: "2026-11-16T00:00:00Z", to: "2026-11-21T00:00:00Z", reason: "test") { examined } }`,
    )
    await expectExact()
    await t.app.services.overview.compactDayRollups()
    await expectExact()
  })

  it('give the overview and top customers over whole days plus edge hours: equal to usageSummary', async () => {
    // 05:00 on the 14th to 11:00 on the 20th: edge hours on both ends, five whole days between.
    const from = '2026-11-14T05:00:00Z'
    const to = '2026-11-20T11:00:00Z'
    await ok(RECORD, { e: events(25) }) // some deltas pending while reading
    expect(await pendingDeltas()).toBeGreaterThan(0)
    const data = await ok(
      `query ($from: DateTime!, $to: DateTime!) {
        overview(from: $from, to: $to) {
          events unpricedEvents cost amount
          byDay { day events cost amount }
          byModel { provider model events cost amount }
          topCustomers(first: 10) { customerId events cost amount }
        }
        total: usageSummary(from: $from, to: $to) { events unpricedEvents cost amount }
        days: usageSummary(from: $from, to: $to, groupBy: [DAY]) { groups { bucketStart events cost amount } }
        models: usageSummary(from: $from, to: $to, groupBy: [PROVIDER, MODEL]) { groups { provider model events cost amount } }
        ${CUSTOMERS.map((c, i) => `c${i}: usageSummary(customerId: "${c}", from: $from, to: $to) { customerId events cost amount }`).join('\n')}
      }`,
      { from, to },
    )
    const o = data.overview
    expect({ events: o.events, unpricedEvents: o.unpricedEvents, cost: o.cost, amount: o.amount }).toEqual(data.total)
    expect(o.byDay.map((d: any) => ({ bucketStart: d.day, events: d.events, cost: d.cost, amount: d.amount }))).toEqual(
      data.days.groups,
    )
    const byKey = (a: any, b: any) => (a.provider + a.model < b.provider + b.model ? -1 : 1)
    expect([...o.byModel].sort(byKey)).toEqual([...data.models.groups].sort(byKey))
    const customers = CUSTOMERS.map((_, i) => data[`c${i}`]).sort(
      (a: any, b: any) => Number(b.amount) - Number(a.amount) || (a.customerId < b.customerId ? -1 : 1),
    )
    expect(o.topCustomers).toEqual(customers)
  })

  it('serve usageSummary over whole days, ungrouped or by day, model and provider: equal to the hourly rollups', async () => {
    const from = '2026-11-14T05:00:00Z'
    const to = '2026-11-20T11:30:00Z' // a partial hour at the end too
    await ok(RECORD, { e: events(15) }) // some deltas pending while reading
    expect(await pendingDeltas()).toBeGreaterThan(0)
    const FIGURES = 'events inputTokens outputTokens cost amount'
    for (const customerId of [null, 'c-2']) {
      const data = await ok(
        `query ($c: String, $from: DateTime!, $to: DateTime!) {
          total: usageSummary(customerId: $c, from: $from, to: $to) { unpricedEvents ${FIGURES} }
          days: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [DAY]) { unpricedEvents ${FIGURES} groups { bucketStart ${FIGURES} } }
          byFeature: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [FEATURE]) { unpricedEvents ${FIGURES} }
          hours: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [HOUR]) { groups { bucketStart ${FIGURES} } }
          modelDays: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [MODEL, PROVIDER, DAY]) { groups { model provider bucketStart ${FIGURES} } }
          modelHours: usageSummary(customerId: $c, from: $from, to: $to, groupBy: [MODEL, PROVIDER, HOUR]) { groups { model provider bucketStart ${FIGURES} } }
        }`,
        { c: customerId, from, to },
      )
      // Totals: whole days from the day rollups vs every hour from the hourly ones (FEATURE groups).
      expect(data.total).toEqual(data.byFeature)
      // Model and provider per day (per-day rollups) = the same per hour (hourly rollups), added up.
      const modelDays = new Map<string, Record<string, any>>()
      for (const h of data.modelHours.groups) {
        const key = `${h.bucketStart.slice(0, 10)} ${h.model} ${h.provider}`
        const d = modelDays.get(key)
        modelDays.set(key, {
          model: h.model,
          provider: h.provider,
          bucketStart: h.bucketStart.slice(0, 10) + 'T00:00:00.000Z',
          events: (d?.events ?? 0) + h.events,
          inputTokens: (d?.inputTokens ?? 0) + h.inputTokens,
          outputTokens: (d?.outputTokens ?? 0) + h.outputTokens,
          cost: new Decimal(d?.cost ?? 0).plus(h.cost).toFixed(),
          amount: new Decimal(d?.amount ?? 0).plus(h.amount).toFixed(),
        })
      }
      const order = (g: Record<string, string>) => `${g.bucketStart} ${g.model} ${g.provider}`
      expect(data.modelDays.groups).toEqual([...modelDays.values()].sort((a, b) => (order(a) < order(b) ? -1 : 1)))
      expect(data.modelDays.groups.length).toBeGreaterThanOrEqual(12)
      expect({ ...data.days, groups: undefined }).toEqual({ ...data.total, groups: undefined })
      // Day groups: the hour groups added up per UTC day.
      const perDay = new Map<string, Record<string, any>>()
      for (const h of data.hours.groups) {
        const day = h.bucketStart.slice(0, 10) + 'T00:00:00.000Z'
        const d = perDay.get(day) ?? {
          bucketStart: day,
          events: 0,
          inputTokens: 0,
          outputTokens: 0,
          cost: '0',
          amount: '0',
        }
        perDay.set(day, {
          ...d,
          events: d.events + h.events,
          inputTokens: d.inputTokens + h.inputTokens,
          outputTokens: d.outputTokens + h.outputTokens,
          cost: new Decimal(d.cost).plus(h.cost).toFixed(),
          amount: new Decimal(d.amount).plus(h.amount).toFixed(),
        })
      }
      expect(data.days.groups).toEqual([...perDay.values()])
      expect(data.days.groups.length).toBeGreaterThanOrEqual(6)
    }
  })

  it('stay exact with compactors racing each other and ingest (concurrent on PostgreSQL)', async () => {
    const compact = () => t.app.services.overview.compactDayRollups()
    await Promise.all([
      ...Array.from({ length: 4 }, () => ok(RECORD, { e: events(40) })),
      compact(),
      compact(),
      ok(RECORD, { e: events(40) }).then(compact),
      compact(),
    ])
    await expectExact()
    await Promise.all([compact(), compact()])
    expect(await pendingDeltas()).toBe(0)
    await expectExact()
  })

  it('a bulk delete of rollup rows takes their figures out of the read models too', async () => {
    await sql`delete from usage_rollups where customer_id = 'c-1' and bucket < timestamptz '2026-11-17T00:00:00Z'`.execute(
      t.database.db,
    )
    await expectExact()
    await t.app.services.overview.compactDayRollups()
    await expectExact()
  })
})
