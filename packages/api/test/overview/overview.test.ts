import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// 2026-11-20 12:00 UTC: "today" began at 2026-11-20 00:00 UTC.
const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

const FROM = '2026-11-19T00:00:00Z'
const TO = '2026-11-20T12:30:00Z' // raised to 13:00

const OVERVIEW = `query ($from: DateTime!, $to: DateTime!) { overview(from: $from, to: $to) {
  from to currency events unpricedEvents cost amount margin
  byDay { day events unpricedEvents cost amount margin }
  byModel { provider model events unpricedEvents cost amount margin amountAtRisk }
  amountAtRisk { events amount estimatedEvents unestimatedEvents }
  alertsToday
  topCustomers(first: 5) { customerId events cost amount margin }
  catalogFreshness { source lastSuccessAt consecutiveFailures }
} }`
const GROUPS = `query ($from: DateTime!, $to: DateTime!) { unpricedGroups(from: $from, to: $to) {
  provider model reason { code usageTypes } events customers firstAt lastAt amountAtRisk
  fix { action usageTypes effectiveFrom description } } }`

async function ok(query: string, variables?: Record<string, unknown>) {
  const r = await t.gql(query, variables)
  expect(r.errors).toBeUndefined()
  return r.data!
}

let seq = 0
const event = (customerId: string, timestamp: string, extra: Record<string, unknown> = {}) => ({
  id: `ov-${++seq}`,
  customerId,
  model: 'gpt-4o',
  timestamp,
  inputTokens: 1000,
  outputTokens: 100,
  ...extra,
})

beforeAll(async () => {
  t = await createTestApp({ clock })
  await ok(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "30" }) { kind } }`)
  await ok(`mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }`, {
    e: [
      event('alpha', '2026-11-19T10:00:00Z'),
      event('beta', '2026-11-20T09:00:00Z', { inputTokens: 3000 }),
      event('beta', '2026-11-20T09:10:00Z', { inputTokens: 2000 }),
      // MISSING_USAGE_PRICE: gpt-4o has no price for document pages.
      event('alpha', '2026-11-20T10:00:00Z', { units: [{ unit: 'input_document_pages', quantity: '2' }] }),
      // UNKNOWN_MODEL, twice, two customers.
      event('alpha', '2026-11-19T11:00:00Z', { model: 'mystery-1', provider: 'acme-ai' }),
      event('gamma', '2026-11-20T11:00:00Z', { model: 'mystery-1', provider: 'acme-ai' }),
      // Outside the range.
      event('alpha', '2026-11-18T23:00:00Z'),
      event('alpha', '2026-11-20T13:00:00Z'),
    ],
  })
  // Raises a budget alert today (the limit is already spent).
  await ok(`mutation { setBudget(input: { customerId: "beta", period: MONTH, limit: "0.000001" }) { id } }`)
})
afterAll(() => t.close())

describe('overview', () => {
  it('gives the figures over whole UTC hours, equal to usageSummary over the same hours', async () => {
    const o = (await ok(OVERVIEW, { from: FROM, to: TO })).overview
    expect(o.from).toBe('2026-11-19T00:00:00.000Z')
    expect(o.to).toBe('2026-11-20T13:00:00.000Z')
    const s = await ok(
      `query { total: usageSummary(from: "${FROM}", to: "2026-11-20T13:00:00Z") { events unpricedEvents cost amount }
         byDay: usageSummary(from: "${FROM}", to: "2026-11-20T13:00:00Z", groupBy: [DAY]) { groups { bucketStart events cost amount } }
         byModel: usageSummary(from: "${FROM}", to: "2026-11-20T13:00:00Z", groupBy: [PROVIDER, MODEL]) { groups { provider model events cost amount } } }`,
    )
    expect({ events: o.events, unpricedEvents: o.unpricedEvents, cost: o.cost, amount: o.amount }).toEqual(s.total)
    expect(o.events).toBe(6)
    expect(o.unpricedEvents).toBe(3)
    expect(o.margin).toBe(new Decimal(o.amount).minus(o.cost).toFixed())
    expect(o.byDay.map((d: any) => ({ bucketStart: d.day, events: d.events, cost: d.cost, amount: d.amount }))).toEqual(
      s.byDay.groups,
    )
    const models = o.byModel.map((m: any) => ({
      provider: m.provider || null,
      model: m.model,
      events: m.events,
      cost: m.cost,
      amount: m.amount,
    }))
    expect(new Set(models.map((m: any) => JSON.stringify(m)))).toEqual(
      new Set(s.byModel.groups.map((g: any) => JSON.stringify(g))),
    )
  })

  it('estimates the amount at risk per model from its priced events, and says unknown (null) where there are none', async () => {
    const o = (await ok(OVERVIEW, { from: FROM, to: TO })).overview
    // The UNPRICED event reported no provider: it is rolled up under ('', gpt-4o), and estimated
    // from the priced gpt-4o events (under openai).
    const gpt = o.byModel.find((m: any) => m.model === 'gpt-4o' && m.provider === 'openai')
    const unpricedGpt = o.byModel.find((m: any) => m.model === 'gpt-4o' && m.provider === '')
    const mystery = o.byModel.find((m: any) => m.model === 'mystery-1')
    // 3 priced gpt-4o events bill gpt.amount; 1 UNPRICED one would bill about a third of it.
    expect(gpt.unpricedEvents).toBe(0)
    expect(gpt.amountAtRisk).toBe('0')
    expect(unpricedGpt.unpricedEvents).toBe(1)
    expect(unpricedGpt.amountAtRisk).toBe(new Decimal(gpt.amount).div(3).toDecimalPlaces(6).toFixed())
    expect(new Decimal(unpricedGpt.amountAtRisk).greaterThan(0)).toBe(true)
    expect(mystery.unpricedEvents).toBe(2)
    expect(mystery.amountAtRisk).toBeNull()
    expect(o.amountAtRisk).toEqual({
      events: 3,
      amount: unpricedGpt.amountAtRisk,
      estimatedEvents: 1,
      unestimatedEvents: 2,
    })
  })

  it('counts the alerts raised today and lists top customers and catalog freshness as their own queries do', async () => {
    const o = (await ok(OVERVIEW, { from: FROM, to: TO })).overview
    const other = await ok(
      `query { budgetAlerts(customerId: "beta") { triggeredAt }
        topCustomers(from: "${FROM}", to: "${TO}", first: 5) { customerId events cost amount margin }
        catalogSources { source lastSuccessAt consecutiveFailures } }`,
    )
    const today = other.budgetAlerts.filter((a: any) => a.triggeredAt >= '2026-11-20T00:00:00')
    expect(today.length).toBeGreaterThan(0)
    expect(o.alertsToday).toBe(today.length)
    expect(o.topCustomers).toEqual(other.topCustomers)
    expect(o.topCustomers[0].customerId).toBe('beta')
    expect(o.catalogFreshness).toEqual(other.catalogSources)
  })

  it('refuses an empty or too long range with BAD_USER_INPUT', async () => {
    for (const [from, to, field] of [
      [TO, FROM, 'from'],
      ['2025-01-01T00:00:00Z', '2026-11-20T00:00:00Z', 'to'],
    ]) {
      for (const q of [OVERVIEW, GROUPS]) {
        const r = await t.gql(q, { from, to })
        expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
        expect(r.errors?.[0]?.extensions?.field).toBe(field)
      }
    }
  })
})

describe('unpricedGroups', () => {
  it('groups UNPRICED events by model and reason with the amount at risk and the fix', async () => {
    const groups = (await ok(GROUPS, { from: FROM, to: TO })).unpricedGroups
    const o = (await ok(OVERVIEW, { from: FROM, to: TO })).overview
    expect(groups).toEqual([
      {
        provider: 'acme-ai',
        model: 'mystery-1',
        reason: { code: 'UNKNOWN_MODEL', usageTypes: [] },
        events: 2,
        customers: 2,
        firstAt: '2026-11-19T11:00:00.000Z',
        lastAt: '2026-11-20T11:00:00.000Z',
        amountAtRisk: null,
        fix: expect.objectContaining({
          action: 'ADD_OVERRIDE_THEN_REPRICE',
          usageTypes: ['input', 'output'],
          effectiveFrom: '2026-11-19T00:00:00.000Z',
        }),
      },
      {
        provider: '',
        model: 'gpt-4o',
        reason: { code: 'MISSING_USAGE_PRICE', usageTypes: ['input_document_pages'] },
        events: 1,
        customers: 1,
        firstAt: '2026-11-20T10:00:00.000Z',
        lastAt: '2026-11-20T10:00:00.000Z',
        amountAtRisk: o.amountAtRisk.amount,
        fix: expect.objectContaining({ action: 'ADD_OVERRIDE_THEN_REPRICE', usageTypes: ['input_document_pages'] }),
      },
    ])
    expect(groups.reduce((n: number, g: any) => n + g.events, 0)).toBe(o.unpricedEvents)
  })

  it('the fix prices the group: negotiated prices, then re-pricing; the group is gone and the overview bills them', async () => {
    for (const usageType of ['input', 'output'])
      await ok(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
        i: {
          provider: 'acme-ai',
          model: 'mystery-1',
          usageType,
          unitPrice: '0.000001',
          effectiveFrom: '2026-11-19T00:00:00Z',
        },
      })
    await ok(
      `mutation { repriceUsage(model: "mystery-1", provider: "acme-ai", from: "${FROM}", to: "${TO}", reason: "test") { examined } }`,
    )
    const groups = (await ok(GROUPS, { from: FROM, to: TO })).unpricedGroups
    expect(groups.map((g: any) => g.model)).toEqual(['gpt-4o'])
    const o = (await ok(OVERVIEW, { from: FROM, to: TO })).overview
    expect(o.unpricedEvents).toBe(1)
    expect(o.amountAtRisk.unestimatedEvents).toBe(0)
    expect(new Decimal(o.byModel.find((m: any) => m.model === 'mystery-1').amount).greaterThan(0)).toBe(true)
  })
})
