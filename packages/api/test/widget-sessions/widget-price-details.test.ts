import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import type { BudgetAlertEvent } from '../../src/pubsub.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * createWidgetSession(priceDetails: false): the end customer sees what they are billed, never the
 * tenant's provider prices, catalog rows, markup or margin, or cost (from which the margin follows).
 */
const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

const RECORD = `mutation ($event: UsageEventInput!) { recordUsage(event: $event) { status event { amount } } }`
const SESSION = `mutation ($c: String!, $d: Boolean) { createWidgetSession(customerId: $c, priceDetails: $d) { token customerId expiresAt priceDetails } }`
const SESSION_DEFAULT = `mutation ($c: String!) { createWidgetSession(customerId: $c) { token priceDetails } }`
const WHO = `{ widgetSession { customerId expiresAt priceDetails } }`
const DAY = { from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z' }

// gpt-4o: 1,000 input tokens at $2.50/M and 100 output at $10/M cost $0.0035; a 30 % markup bills $0.00455.
const COST = '0.0035'
const AMOUNT = '0.00455'
const INPUT_UNIT_PRICE = '0.0000025'

/** Every field that reveals how an amount was priced, each asked on its own. */
const PRICE_FIELDS: [string, string][] = [
  ['UsageEvent.cost', `{ usageEvents(customerId: "alice") { edges { node { id cost } } } }`],
  ['UsageEvent.pricingPlan', `{ usageEvents(customerId: "alice") { edges { node { id pricingPlan } } } }`],
  [
    'PricedLine.unitPrice',
    `{ usageEvents(customerId: "alice") { edges { node { id lines { usageType unitPrice } } } } }`,
  ],
  ['PricedLine.cost', `{ usageEvents(customerId: "alice") { edges { node { id lines { usageType cost } } } } }`],
  ['PricedLine.priceId', `{ usageEvents(customerId: "alice") { edges { node { id lines { usageType priceId } } } } }`],
  ['UsageSummary.cost', `{ usageSummary(customerId: "alice", from: "${DAY.from}", to: "${DAY.to}") { amount cost } }`],
  [
    'UsageGroup.cost',
    `{ usageSummary(customerId: "alice", from: "${DAY.from}", to: "${DAY.to}", groupBy: [MODEL]) { groups { model cost } } }`,
  ],
]

const AMOUNTS_ONLY = `query ($c: String!) {
  usageEvents(customerId: $c) { edges { node { id status amount currency inputTokens outputTokens lines { usageType quantity amount } } } }
  usageSummary(customerId: $c, from: "${DAY.from}", to: "${DAY.to}", groupBy: [USAGE_TYPE]) { events amount groups { usageType amount } }
  budgets(customerId: $c) { limit spent remaining forecast }
  budgetAlerts(customerId: $c) { threshold spent limit }
  checkBudget(customerId: $c) { allowed remaining }
}`

const EVERYTHING = `{ usageEvents(customerId: "alice") { edges { node { cost pricingPlan lines { usageType unitPrice cost priceId amount } } } }
  usageSummary(customerId: "alice", from: "${DAY.from}", to: "${DAY.to}", groupBy: [MODEL]) { cost amount groups { cost amount } } }`

async function session(customerId: string, priceDetails?: boolean | null): Promise<string> {
  const r = await t.gql(SESSION, { c: customerId, d: priceDetails })
  expect(r.errors).toBeUndefined()
  return r.data!.createWidgetSession.token
}

/** A subscription over SSE through yoga.fetch: its first payload (publishing until one comes, at most 10 s), then closed. */
async function firstPayload(
  token: string,
  query: string,
  publish?: () => void,
): Promise<{ data?: any; errors?: any[] }> {
  const abort = new AbortController()
  const response = await t.app.yoga.fetch('http://burnrate.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
    signal: abort.signal,
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const timer = publish ? setInterval(publish, 50) : undefined
  // No payload in 10 s fails the test (the read rejects) instead of hanging until the test timeout.
  const deadline = setTimeout(() => abort.abort(), 10_000)
  try {
    let buffer = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`stream ended without a payload: ${buffer}`)
      buffer += value
      const data = /^data: (.+)$/m.exec(buffer.split(/\n\n/).find((block) => /^event: next$/m.test(block)) ?? '')
      if (data) return JSON.parse(data[1]!)
    }
  } finally {
    clearInterval(timer)
    clearTimeout(deadline)
    abort.abort()
    await reader.cancel().catch(() => {})
  }
}

beforeAll(async () => {
  t = await createTestApp({ clock })
  expect(
    (await t.gql(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "30" }) { kind } }`)).errors,
  ).toBeUndefined()
  // The plan starts now (the fixed clock), and so does the event: it is billed with the markup.
  // A tiny daily budget: the event below crosses every threshold, so there are alerts to read.
  expect(
    (await t.gql(`mutation { setBudget(input: { customerId: "alice", period: DAY, limit: "0.001" }) { id } }`)).errors,
  ).toBeUndefined()
  const recorded = await t.gql(RECORD, {
    event: {
      id: 'a-1',
      customerId: 'alice',
      model: 'gpt-4o',
      timestamp: '2026-11-20T12:00:00Z',
      inputTokens: 1000,
      outputTokens: 100,
      feature: 'chat',
    },
  })
  expect(recorded.data!.recordUsage).toEqual({ status: 'RECORDED', event: { amount: AMOUNT } })
})
afterAll(() => t.close())

describe('createWidgetSession(priceDetails)', () => {
  it('defaults to true, stores the choice on the session row, and answers it', async () => {
    const byDefault = await t.gql(SESSION_DEFAULT, { c: 'alice' })
    expect(byDefault.data!.createWidgetSession.priceDetails).toBe(true)
    const explicitNull = await t.gql(SESSION, { c: 'alice', d: null })
    expect(explicitNull.data!.createWidgetSession.priceDetails).toBe(true)
    const hidden = await t.gql(SESSION, { c: 'alice', d: false })
    expect(hidden.data!.createWidgetSession).toMatchObject({
      customerId: 'alice',
      expiresAt: '2026-11-20T12:15:00.000Z',
      priceDetails: false,
    })

    const hash = (token: string) => createHash('sha256').update(token).digest('hex')
    const rows = await t.database.db.selectFrom('widget_sessions').select(['token_hash', 'price_details']).execute()
    const stored = (token: string) => rows.find((r) => r.token_hash === hash(token))?.price_details
    expect(stored(byDefault.data!.createWidgetSession.token)).toBe(true)
    expect(stored(hidden.data!.createWidgetSession.token)).toBe(false)
  })

  it('a session row written without the column (as before the migration) keeps price details', async () => {
    const token = 'br_ws_' + 'x'.repeat(43)
    await t.database.db
      .insertInto('widget_sessions')
      .values({
        id: 'ws_legacy',
        tenant_id: t.tenant.id,
        customer_id: 'alice',
        token_hash: createHash('sha256').update(token).digest('hex'),
        expires_at: new Date('2026-11-20T13:00:00Z'),
        created_at: new Date('2026-11-20T11:59:00Z'),
      })
      .execute()
    expect((await t.gql(WHO, {}, token)).data!.widgetSession.priceDetails).toBe(true)
  })
})

describe('widgetSession query', () => {
  it('tells a widget session who it is and whether it may read price details', async () => {
    expect((await t.gql(WHO, {}, await session('alice'))).data).toEqual({
      widgetSession: { customerId: 'alice', expiresAt: '2026-11-20T12:15:00.000Z', priceDetails: true },
    })
    expect((await t.gql(WHO, {}, await session('alice', false))).data).toEqual({
      widgetSession: { customerId: 'alice', expiresAt: '2026-11-20T12:15:00.000Z', priceDetails: false },
    })
  })

  it('is null for a tenant key and UNAUTHENTICATED without one', async () => {
    expect(await t.gql(WHO)).toEqual({ data: { widgetSession: null } })
    expect((await t.gql(WHO, {}, null)).errors![0]!.extensions!.code).toBe('UNAUTHENTICATED')
  })
})

describe('a widget session with priceDetails: false', () => {
  it.each(PRICE_FIELDS)('is refused %s with FORBIDDEN and a message saying why', async (_field, query) => {
    const r = await t.gql(query, {}, await session('alice', false))
    expect(r.errors?.length).toBeGreaterThan(0)
    for (const error of r.errors!) {
      expect(error.extensions!.code).toBe('FORBIDDEN')
      expect(error.message).toMatch(/billed amounts only.*priceDetails: false/)
    }
    const leaked = JSON.stringify(r.data ?? null)
    for (const secret of [COST, INPUT_UNIT_PRICE, 'MARKUP']) expect(leaked).not.toContain(secret)
  })

  it('still reads amounts, quantities, budgets and alerts', async () => {
    const r = await t.gql(AMOUNTS_ONLY, { c: 'alice' }, await session('alice', false))
    expect(r.errors).toBeUndefined()
    const node = r.data!.usageEvents.edges[0].node
    expect(node).toMatchObject({
      id: 'a-1',
      status: 'PRICED',
      amount: AMOUNT,
      currency: 'USD',
      inputTokens: 1000,
      outputTokens: 100,
    })
    expect(node.lines).toEqual([
      { usageType: 'input', quantity: '1000', amount: '0.00325' },
      { usageType: 'output', quantity: '100', amount: '0.0013' },
    ])
    expect(r.data!.usageSummary).toMatchObject({ events: 1, amount: AMOUNT })
    expect(r.data!.budgets).toEqual([expect.objectContaining({ limit: '0.001', spent: AMOUNT, remaining: '0' })])
    expect(r.data!.budgetAlerts.map((a: { threshold: number }) => a.threshold).sort()).toEqual([100, 50, 80])
    expect(r.data!.checkBudget).toMatchObject({ remaining: '0' })
    expect(JSON.stringify(r.data)).not.toContain(COST)
  })

  it("still receives its alerts live, but no price changes (the tenant's negotiated prices are its cost)", async () => {
    const token = await session('alice', false)
    const alert: BudgetAlertEvent = {
      id: 'live-1',
      tenantId: t.tenant.id,
      customerId: 'alice',
      budgetId: 'bud-1',
      threshold: 80,
      spent: '0.0008',
      limit: '0.001',
      periodStart: '2026-11-20T00:00:00.000Z',
      triggeredAt: '2026-11-20T12:00:00.000Z',
    }
    const live = await firstPayload(token, `subscription { budgetAlerts { id spent limit } }`, () =>
      t.app.services.pubsub.publish('budgetAlert', t.tenant.id, alert),
    )
    expect(live).toEqual({ data: { budgetAlerts: { id: 'live-1', spent: '0.0008', limit: '0.001' } } })

    const prices = await firstPayload(token, `subscription { priceChanges { provider newUnitPrice } }`)
    expect(prices.errors!.map((e) => e.extensions.code)).toEqual(['FORBIDDEN'])
  })

  it('cannot reach catalog prices through a line either', async () => {
    const r = await t.gql(
      `{ usageEvents(customerId: "alice") { edges { node { lines { price { unitPrice } } } } } }`,
      {},
      await session('alice', false),
    )
    expect(r.errors![0]!.extensions!.code).toBe('FORBIDDEN')
  })
})

describe('unaffected callers', () => {
  const expectEverything = (data: any) => {
    const node = data.usageEvents.edges[0].node
    expect(node.cost).toBe(COST)
    expect(node.pricingPlan).toBe('MARKUP 30')
    expect(node.lines[0]).toMatchObject({
      usageType: 'input',
      unitPrice: INPUT_UNIT_PRICE,
      cost: '0.0025',
      priceId: expect.any(String),
      amount: '0.00325',
    })
    expect(data.usageSummary).toEqual({ cost: COST, amount: AMOUNT, groups: [{ cost: COST, amount: AMOUNT }] })
  }

  it('a default widget session still reads unit prices, the plan and cost', async () => {
    const r = await t.gql(EVERYTHING, {}, await session('alice'))
    expect(r.errors).toBeUndefined()
    expectEverything(r.data)
  })

  it('a tenant key reads everything, whatever sessions it issued', async () => {
    await session('alice', false)
    const r = await t.gql(EVERYTHING)
    expect(r.errors).toBeUndefined()
    expectEverything(r.data)
  })
})
