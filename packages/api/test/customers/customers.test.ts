import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// 2026-11-20 noon UTC: "this month" is November 2026.
const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

const LIST = `query ($s: String, $first: Int, $after: String) {
  customers(search: $s, first: $first, after: $after) {
    edges { cursor node { id name thisMonth { periodStart periodEnd events unpricedEvents cost amount margin
      budgetUse { budgetId period spent limit percent } } } }
    pageInfo { hasNextPage endCursor }
  } }`
const SUMMARY = `query ($c: String!) { usageSummary(customerId: $c, from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { events unpricedEvents cost amount } }`

let seq = 0
const event = (customerId: string, inputTokens: number, timestamp: string, model = 'gpt-4o') => ({
  id: `ev-${++seq}`,
  customerId,
  model,
  timestamp,
  inputTokens,
  outputTokens: 10,
})

async function ok(query: string, variables?: Record<string, unknown>, key?: string) {
  const r = await t.gql(query, variables, key)
  expect(r.errors).toBeUndefined()
  return r.data!
}

beforeAll(async () => {
  t = await createTestApp({ clock })
  await ok(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "30" }) { kind } }`)
  for (const [id, name] of [
    ['acme-1', 'Acme Corp'],
    ['acme-2', 'ACME Labs'],
    ['beta', 'Beta 100%_Club'],
    ['gamma', null],
  ] as const)
    await ok(`mutation ($i: CustomerInput!) { upsertCustomer(input: $i) { id } }`, { i: { id, name } })
  await ok(`mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }`, {
    e: [
      event('acme-1', 1000, '2026-11-02T10:00:00Z'),
      event('acme-1', 3000, '2026-11-20T11:30:00Z'),
      // Last month: not in this month's figures.
      event('acme-1', 999999, '2026-10-31T23:59:00Z'),
      event('beta', 2000, '2026-11-10T08:00:00Z'),
      event('beta', 500, '2026-11-10T08:05:00Z', 'no-such-model-xyz'),
    ],
  })
  await ok(`mutation { setBudget(input: { customerId: "beta", period: MONTH, limit: "0.01" }) { id } }`)
  await ok(`mutation { setBudget(input: { customerId: "beta", period: DAY, limit: "100" }) { id } }`)
})
afterAll(() => t.close())

describe('customers', () => {
  it('lists every customer in id order, in pages', async () => {
    const first = (await ok(LIST, { first: 3 })).customers
    expect(first.edges.map((e: any) => e.node.id)).toEqual(['acme-1', 'acme-2', 'beta'])
    expect(first.pageInfo.hasNextPage).toBe(true)
    const rest = (await ok(LIST, { first: 3, after: first.pageInfo.endCursor })).customers
    expect(rest.edges.map((e: any) => e.node.id)).toEqual(['gamma'])
    expect(rest.pageInfo.hasNextPage).toBe(false)
  })

  it('searches id and name, case-insensitively, with % and _ taken literally', async () => {
    const ids = async (s: string) => (await ok(LIST, { s })).customers.edges.map((e: any) => e.node.id)
    expect(await ids('acme')).toEqual(['acme-1', 'acme-2'])
    expect(await ids('labs')).toEqual(['acme-2'])
    expect(await ids('AM')).toEqual(['gamma'])
    expect(await ids('corp')).toEqual(['acme-1'])
    expect(await ids('100%_')).toEqual(['beta'])
    expect(await ids('%')).toEqual(['beta'])
    expect(await ids('_')).toEqual(['beta'])
    expect(await ids('nobody')).toEqual([])
  })

  it("gives each customer this month's figures from the rollups, equal to usageSummary", async () => {
    const nodes = (await ok(LIST, {})).customers.edges.map((e: any) => e.node)
    for (const node of nodes) {
      const s = (await ok(SUMMARY, { c: node.id })).usageSummary
      expect(node.thisMonth).toMatchObject({
        periodStart: '2026-11-01T00:00:00.000Z',
        periodEnd: '2026-12-01T00:00:00.000Z',
        events: s.events,
        unpricedEvents: s.unpricedEvents,
      })
      expect(Number(node.thisMonth.cost)).toBe(Number(s.cost))
      expect(Number(node.thisMonth.amount)).toBe(Number(s.amount))
    }
    const acme = nodes.find((n: any) => n.id === 'acme-1').thisMonth
    expect(acme.events).toBe(2)
    expect(Number(acme.margin)).toBeCloseTo(Number(acme.amount) - Number(acme.cost), 12)
    expect(nodes.find((n: any) => n.id === 'beta').thisMonth.unpricedEvents).toBe(1)
    expect(nodes.find((n: any) => n.id === 'gamma').thisMonth).toMatchObject({ events: 0, amount: '0', cost: '0' })
  })

  it('reports the budget nearest its limit', async () => {
    const nodes = (await ok(LIST, {})).customers.edges.map((e: any) => e.node)
    const beta = nodes.find((n: any) => n.id === 'beta').thisMonth
    expect(beta.budgetUse).toMatchObject({ period: 'MONTH', limit: '0.01' })
    // The MONTH budget (0.01) is nearer its limit than the DAY one (100).
    expect(beta.budgetUse.percent).toBe(((Number(beta.budgetUse.spent) * 100) / 0.01).toFixed(2))
    expect(Number(beta.budgetUse.percent)).toBeGreaterThan(1)
    expect(nodes.find((n: any) => n.id === 'acme-1').thisMonth.budgetUse).toBeNull()
  })

  it('ranks top customers by billed amount over a range', async () => {
    const r = await ok(
      `{ topCustomers(from: "2026-11-01T00:00:00Z", to: "2026-11-21T00:00:00Z", first: 2) { customerId amount cost margin events } }`,
    )
    const top = r.topCustomers
    expect(top).toHaveLength(2)
    expect(Number(top[0].amount)).toBeGreaterThanOrEqual(Number(top[1].amount))
    expect(top.map((c: any) => c.customerId).sort()).toEqual(['acme-1', 'beta'])
  })

  it("never shows another tenant's customers, and refuses widget sessions", async () => {
    const other = await t.createTenant('Other')
    const r = await t.gql(LIST, {}, other.apiKey)
    expect(r.errors).toBeUndefined()
    expect(r.data!.customers.edges).toEqual([])
    const top = await t.gql(
      `{ topCustomers(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { customerId } }`,
      {},
      other.apiKey,
    )
    expect(top.data!.topCustomers).toEqual([])
    const session = await ok(`mutation { createWidgetSession(customerId: "acme-1") { token } }`)
    const widget = await t.gql(LIST, {}, session.createWidgetSession.token)
    expect(widget.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    const own = await t.gql(
      `{ customer(id: "acme-1") { id thisMonth { cost } } }`,
      {},
      session.createWidgetSession.token,
    )
    expect(own.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })

  it('refuses a bad cursor and an over-long search as BAD_USER_INPUT', async () => {
    const bad = await t.gql(LIST, { after: 'nope' })
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    const long = await t.gql(LIST, { s: 'x'.repeat(300) })
    expect(long.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'search' })
  })

  it('refuses a topCustomers range over the limit, and answers one ending at the last representable hour', async () => {
    const wide = await t.gql(
      `{ topCustomers(from: "2026-11-18T00:00:00Z", to: "9999-12-31T23:59:59Z") { customerId } }`,
    )
    expect(wide.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' })
    const edge = await t.gql(
      `{ topCustomers(from: "9999-12-31T00:00:00Z", to: "9999-12-31T23:59:59Z") { customerId periodEnd } }`,
    )
    expect(edge.errors).toBeUndefined()
    expect(edge.data!.topCustomers).toEqual([])
  })
})
