import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp
let a: { apiKey: string; id: string }
let b: { apiKey: string; id: string }

const event = (id: string, customerId: string) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: '2026-11-20T11:00:00Z',
  inputTokens: 100,
  outputTokens: 10,
})
const RECORD = `mutation ($event: UsageEventInput!) { recordUsage(event: $event) { status error { code } event { id cost } } }`

beforeAll(async () => {
  t = await createTestApp({ clock })
  a = t.tenant
  b = await t.createTenant('Tenant B')
  await t.gql(RECORD, { event: event('shared-id', 'alice') }, a.apiKey)
  await t.gql(
    `mutation { upsertCustomer(input: { id: "alice", name: "Alice of A", stripeCustomerId: "cus_A" }) { id } }`,
    {},
    a.apiKey,
  )
  await t.gql(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "50" }) { kind } }`, {}, a.apiKey)
})
afterAll(() => t.close())

describe("tenant B's key and tenant A's data", () => {
  it('cannot read A customers', async () => {
    const r = await t.gql(`{ customer(id: "alice") { id name stripeCustomerId } }`, {}, b.apiKey)
    expect(r.data!.customer).toBeNull()
  })

  it('cannot read A events or summaries', async () => {
    const events = await t.gql(`{ usageEvents(customerId: "alice") { edges { node { id } } } }`, {}, b.apiKey)
    expect(events.data!.usageEvents.edges).toEqual([])
    const summary = await t.gql(
      `{ usageSummary(customerId: "alice", from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { events cost amount } }`,
      {},
      b.apiKey,
    )
    expect(summary.data!.usageSummary).toEqual({ events: 0, cost: '0', amount: '0' })
    const all = await t.gql(
      `{ usageSummary(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { events } }`,
      {},
      b.apiKey,
    )
    expect(all.data!.usageSummary.events).toBe(0)
  })

  it("cannot read A's pricing plan, and B's plans do not touch A", async () => {
    const plan = await t.gql(`{ pricingPlan { kind percent } }`, {}, b.apiKey)
    expect(plan.data!.pricingPlan).toEqual({ kind: 'MARKUP', percent: '0' })
    await t.gql(
      `mutation { setPricingPlan(input: { customerId: "alice", kind: MARGIN, percent: "90" }) { kind } }`,
      {},
      b.apiKey,
    )
    const aPlan = await t.gql(`{ pricingPlan(customerId: "alice") { kind percent } }`, {}, a.apiKey)
    expect(aPlan.data!.pricingPlan).toEqual({ kind: 'MARKUP', percent: '50' })
  })

  it('writes to its own namespace: same event id and customer id are separate records', async () => {
    const r = await t.gql(RECORD, { event: { ...event('shared-id', 'alice'), inputTokens: 999 } }, b.apiKey)
    expect(r.data!.recordUsage.status).toBe('RECORDED')
    await t.gql(`mutation { upsertCustomer(input: { id: "alice", name: "Alice of B" }) { id } }`, {}, b.apiKey)
    const aCustomer = await t.gql(`{ customer(id: "alice") { name stripeCustomerId } }`, {}, a.apiKey)
    expect(aCustomer.data!.customer).toEqual({ name: 'Alice of A', stripeCustomerId: 'cus_A' })
    const aEvents = await t.gql(
      `{ usageEvents(customerId: "alice") { edges { node { id cost amount } } } }`,
      {},
      a.apiKey,
    )
    expect(aEvents.data!.usageEvents.edges).toHaveLength(1)
    expect(aEvents.data!.usageEvents.edges[0].node.cost).toBe('0.00035')
  })

  it('sees the same public catalog prices (no tenant-specific price leaks)', async () => {
    const q = `{ providerPrices(provider: "openai", model: "gpt-4o") { usageType unitPrice source } }`
    const fromA = await t.gql(q, {}, a.apiKey)
    const fromB = await t.gql(q, {}, b.apiKey)
    expect(fromA.data).toEqual(fromB.data)
    expect(fromA.data!.providerPrices.length).toBeGreaterThan(0)
    expect((await t.gql(q, {}, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })
})
