import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * Plans through GraphQL on the real ingest path (both engines: PGlite by default, PostgreSQL with
 * DATABASE_URL). gpt-4o is $2.50 per 1M input tokens and $10 per 1M output tokens in the bundled
 * catalog; the README's worked examples are these numbers.
 */
const NOW = '2026-11-20T12:00:00Z'
const clock = fixedClock(NOW)
let t: TestApp

const SET_PLAN = `mutation ($i: RatingPlanInput!) { setRatingPlan(input: $i) { id customerId version effectiveFrom prepaidOnly source rules { id type model usageType price mode tiers { upTo unitPrice } quantity amount unit kind percent } } }`
const RECORD = `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { code message field } event { id amount cost lines { usageType quantity amount planId planVersion parts { ruleId rule tier quantity unitPrice amount } } } } }`
const BATCH = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded rejected results { status error { code field message } event { amount } } } }`
const PREVIEW = `query ($c: String!, $p: DateTime) { invoicePreview(customerId: $c, periodStart: $p) { customerId currency periodStart periodEnd lines { kind description planVersion ruleId tier usageType quantity unitPrice amount } subtotal creditsApplied creditsRemaining total projectedUsage projectedSubtotal } }`

let n = 0
const ev = (customerId: string, inputTokens: number, outputTokens = 0, extra: Record<string, unknown> = {}) => ({
  id: `rate-${++n}`,
  customerId,
  model: 'gpt-4o',
  timestamp: NOW,
  inputTokens,
  outputTokens,
  ...extra,
})

async function gqlOk(query: string, variables: Record<string, unknown>, key?: string | null) {
  const r = await t.gql(query, variables, key)
  expect(r.errors).toBeUndefined()
  return r.data!
}

/** The README's worked example plan. */
const EXAMPLE_RULES = [
  { id: 'free-input', type: 'TOKEN_ALLOWANCE', model: 'gpt-4o*', usageType: 'input', quantity: '100000' },
  {
    id: 'input-tiers',
    type: 'TOKEN_TIERS',
    model: 'gpt-4o*',
    usageType: 'input',
    mode: 'GRADUATED',
    tiers: [
      { upTo: '1000000', unitPrice: '3' },
      { upTo: null, unitPrice: '2' },
    ],
  },
  { id: 'output', type: 'FIXED_PRICE', model: '*', usageType: 'output', price: '12' },
  { id: 'tasks', type: 'UNIT_FEE', unit: 'custom.agent_task', price: '0.05' },
  { id: 'minimum', type: 'MINIMUM', amount: '20' },
  { id: 'markup', type: 'COST_BASED', kind: 'MARKUP', percent: '20' },
]

beforeAll(async () => {
  t = await createTestApp({ clock })
})
afterAll(() => t.close())

describe('setRatingPlan', () => {
  it('appends versions per owner and keeps the rules as sent', async () => {
    const v1 = (await gqlOk(SET_PLAN, { i: { customerId: 'c-example', rules: EXAMPLE_RULES } })).setRatingPlan
    expect(v1).toMatchObject({ customerId: 'c-example', version: 1, prepaidOnly: false, source: 'RATING_PLAN' })
    expect(v1.rules.map((r: { id: string; type: string }) => [r.id, r.type])).toEqual([
      ['free-input', 'TOKEN_ALLOWANCE'],
      ['input-tiers', 'TOKEN_TIERS'],
      ['output', 'FIXED_PRICE'],
      ['tasks', 'UNIT_FEE'],
      ['minimum', 'MINIMUM'],
      ['markup', 'COST_BASED'],
    ])
    expect(v1.rules[1].tiers).toEqual([
      { upTo: '1000000', unitPrice: '3' },
      { upTo: null, unitPrice: '2' },
    ])
    const history = await gqlOk(`query { ratingPlanHistory(customerId: "c-example") { version } }`, {})
    expect(history.ratingPlanHistory).toEqual([{ version: 1 }])
  })

  it('refuses bad rules with a coded error naming the field, and stores nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ customerId: 'c-bad', rules: [{ type: 'TOKEN_TIERS', usageType: 'input' }] }, 'input.rules.0.tiers'],
      [
        {
          customerId: 'c-bad',
          rules: [
            {
              type: 'TOKEN_TIERS',
              usageType: 'input',
              tiers: [
                { upTo: '10', unitPrice: '1' },
                { upTo: '5', unitPrice: '1' },
              ],
            },
          ],
        },
        'input.rules.0.tiers.1.upTo',
      ],
      [
        { customerId: 'c-bad', rules: [{ type: 'COST_BASED', kind: 'MARGIN', percent: '100' }] },
        'input.rules.0.percent',
      ],
      [
        { customerId: 'c-bad', rules: [{ type: 'FIXED_PRICE', usageType: 'input', price: '-1' }] },
        'input.rules.0.price',
      ],
      [
        {
          customerId: 'c-bad',
          rules: [
            { type: 'MINIMUM', amount: '1' },
            { type: 'MINIMUM', amount: '2' },
          ],
        },
        'input.rules.1.type',
      ],
      [{ customerId: 'c-bad', rules: [] }, 'input.rules'],
      [
        { customerId: 'c-bad', effectiveFrom: '2026-11-01T00:00:00Z', rules: [{ type: 'MINIMUM', amount: '1' }] },
        'input.effectiveFrom',
      ],
    ]
    for (const [input, field] of cases) {
      const r = await t.gql(SET_PLAN, { i: input })
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field })
    }
    const history = await gqlOk(`query { ratingPlanHistory(customerId: "c-bad") { version } }`, {})
    expect(history.ratingPlanHistory).toEqual([])
  })
})

describe('rating at ingest (worked example)', () => {
  it('bills allowance, tiers split at the boundary, a fixed price and a unit fee, and explains each line', async () => {
    // 1. 60,000 input tokens, all free; 1,000 output tokens at $12 per 1M = $0.012.
    const e1 = (await gqlOk(RECORD, { e: ev('c-example', 60_000, 1_000) })).recordUsage
    expect(e1.status).toBe('RECORDED')
    expect(e1.event.amount).toBe('0.012')
    expect(e1.event.cost).toBe('0.16') // the provider cost is still kept: 60,000 × 2.5/1M + 1,000 × 10/1M
    expect(e1.event.lines.map((l: { parts: unknown }) => l.parts)).toEqual([
      [{ ruleId: 'free-input', rule: 'TOKEN_ALLOWANCE', tier: null, quantity: '60000', unitPrice: null, amount: '0' }],
      [{ ruleId: 'output', rule: 'FIXED_PRICE', tier: null, quantity: '1000', unitPrice: '0.000012', amount: '0.012' }],
    ])
    expect(e1.event.lines[0]).toMatchObject({ planVersion: 1 })
    // 2. 500,000 input: 40,000 still free, 460,000 at $3 per 1M = $1.38; 3 agent tasks at $0.05 = $0.15.
    const e2 = (
      await gqlOk(RECORD, { e: ev('c-example', 500_000, 0, { units: [{ unit: 'custom.agent_task', quantity: '3' }] }) })
    ).recordUsage
    expect(e2.event.amount).toBe('1.53')
    expect(e2.event.lines.find((l: { usageType: string }) => l.usageType === 'fee:custom.agent_task')).toMatchObject({
      quantity: '3',
      amount: '0.15',
    })
    // 3. 700,000 input crosses 1M billable: 540,000 at $3 = $1.62 and 160,000 at $2 = $0.32.
    const e3 = (await gqlOk(RECORD, { e: ev('c-example', 700_000) })).recordUsage
    expect(e3.event.amount).toBe('1.94')
    expect(e3.event.lines[0].parts).toEqual([
      {
        ruleId: 'input-tiers',
        rule: 'TOKEN_TIERS',
        tier: 1,
        quantity: '540000',
        unitPrice: '0.000003',
        amount: '1.62',
      },
      {
        ruleId: 'input-tiers',
        rule: 'TOKEN_TIERS',
        tier: 2,
        quantity: '160000',
        unitPrice: '0.000002',
        amount: '0.32',
      },
    ])
    // A replay is DUPLICATE and counts nothing.
    const again = (await gqlOk(RECORD, { e: { ...ev('c-example', 700_000), id: e3.event.id } })).recordUsage
    expect(again.status).toBe('DUPLICATE')
  })

  it('previews the invoice: a line per rule and tier, the minimum true-up, no credits to apply', async () => {
    const p = (await gqlOk(PREVIEW, { c: 'c-example' })).invoicePreview
    expect(p).toMatchObject({
      periodStart: '2026-11-01T00:00:00.000Z',
      periodEnd: '2026-12-01T00:00:00.000Z',
      currency: 'USD',
      subtotal: '20',
      creditsApplied: '0',
      creditsRemaining: '0',
      total: '20',
    })
    expect(
      p.lines.map((l: Record<string, unknown>) => [l.kind, l.ruleId, l.tier, l.usageType, l.quantity, l.amount]),
    ).toEqual([
      ['TOKEN_ALLOWANCE', 'free-input', null, 'input', '100000', '0'],
      ['TOKEN_TIERS', 'input-tiers', 1, 'input', '1000000', '3'],
      ['TOKEN_TIERS', 'input-tiers', 2, 'input', '160000', '0.32'],
      ['FIXED_PRICE', 'output', null, 'output', '1000', '0.012'],
      ['UNIT_FEE', 'tasks', null, 'fee:custom.agent_task', '3', '0.15'],
      ['MINIMUM_TRUE_UP', 'minimum', null, null, null, '16.518'],
    ])
    // 3.482 of usage in 19.5 of 30 days, projected: 3.482 × 30 / 19.5.
    expect(p.projectedUsage).toBe('5.356923076923076923')
    expect(p.projectedSubtotal).toBe('20')
  })

  it('lands on the same total whatever the order and the batching (1,260,000 input tokens → $3.32)', async () => {
    await gqlOk(SET_PLAN, { i: { customerId: 'c-order', rules: EXAMPLE_RULES.filter((r) => r.id !== 'minimum') } })
    const events = [
      ev('c-order', 700_000),
      ev('c-order', 500_000, 0, { units: [{ unit: 'custom.agent_task', quantity: '3' }] }),
      ev('c-order', 60_000, 1_000),
    ]
    const r = (await gqlOk(BATCH, { e: events })).recordUsageBatch
    expect(r.recorded).toBe(3)
    const p = (await gqlOk(PREVIEW, { c: 'c-order' })).invoicePreview
    expect(p.subtotal).toBe('3.482')
    expect(
      p.lines.filter((l: { kind: string }) => l.kind === 'TOKEN_TIERS').map((l: { amount: string }) => l.amount),
    ).toEqual(['3', '0.32'])
  })

  it('rates parallel batches of one customer exactly once each: the period total is the plan applied to the total', async () => {
    await gqlOk(SET_PLAN, {
      i: {
        customerId: 'c-parallel',
        rules: [
          { id: 'free', type: 'TOKEN_ALLOWANCE', usageType: 'input', quantity: '1000' },
          {
            id: 'tiers',
            type: 'TOKEN_TIERS',
            usageType: 'input',
            mode: 'GRADUATED',
            tiers: [
              { upTo: '10000', unitPrice: '5' },
              { upTo: null, unitPrice: '1' },
            ],
          },
        ],
      },
    })
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 5 }, (_, i) => ev('c-parallel', 100 * (b + 1) + i * 7)),
    )
    const results = await Promise.all(batches.map((e) => t.gql(BATCH, { e })))
    for (const r of results) expect(r.data?.recordUsageBatch.recorded).toBe(5)
    const total = batches.flat().reduce((s, e) => s + e.inputTokens, 0) // 19,400
    const billable = total - 1000
    const expected = (Math.min(billable, 10_000) * 5 + Math.max(0, billable - 10_000) * 1) / 1_000_000
    const p = (await gqlOk(PREVIEW, { c: 'c-parallel' })).invoicePreview
    expect(p.subtotal).toBe(String(expected))
  })

  it('applies an amount allowance and amount tiers over cost-based lines', async () => {
    await gqlOk(SET_PLAN, {
      i: {
        customerId: 'c-dollars',
        rules: [
          { id: 'free-dollar', type: 'AMOUNT_ALLOWANCE', amount: '1' },
          {
            id: 'volume-discount',
            type: 'AMOUNT_TIERS',
            mode: 'GRADUATED',
            tiers: [
              { upTo: '10', unitPrice: '1' },
              { upTo: null, unitPrice: '0.8' },
            ],
          },
        ],
      },
    })
    // $2.50 at cost: the first $1 is free, $1.50 in tier 1.
    const a = (await gqlOk(RECORD, { e: ev('c-dollars', 1_000_000) })).recordUsage
    expect(a.event.amount).toBe('1.5')
    expect(a.event.lines[0].parts.map((x: { rule: string; amount: string }) => [x.rule, x.amount])).toEqual([
      ['AT_COST', '2.5'],
      ['AMOUNT_ALLOWANCE', '-1'],
    ])
    // $10 more: $8.50 fills tier 1 to $10, $1.50 at 0.8 = $1.20.
    const b = (await gqlOk(RECORD, { e: ev('c-dollars', 4_000_000) })).recordUsage
    expect(b.event.amount).toBe('9.7')
    const p = (await gqlOk(PREVIEW, { c: 'c-dollars' })).invoicePreview
    expect(p.subtotal).toBe('11.2')
  })

  it('a new version applies from its start; what was billed keeps its version', async () => {
    await gqlOk(SET_PLAN, {
      i: { customerId: 'c-versions', rules: [{ id: 'in', type: 'FIXED_PRICE', usageType: 'input', price: '1' }] },
    })
    const before = (await gqlOk(RECORD, { e: ev('c-versions', 1_000_000) })).recordUsage
    clock.set('2026-11-20T12:30:00Z')
    try {
      await gqlOk(SET_PLAN, {
        i: { customerId: 'c-versions', rules: [{ id: 'in', type: 'FIXED_PRICE', usageType: 'input', price: '2' }] },
      })
      const after = (await gqlOk(RECORD, { e: { ...ev('c-versions', 1_000_000), timestamp: '2026-11-20T12:29:59Z' } }))
        .recordUsage
      const later = (await gqlOk(RECORD, { e: { ...ev('c-versions', 1_000_000), timestamp: '2026-11-20T12:30:00Z' } }))
        .recordUsage
      expect([before.event.amount, after.event.amount, later.event.amount]).toEqual(['1', '1', '2'])
      expect(later.event.lines[0].planVersion).toBe(2)
      const events = await gqlOk(
        `query { usageEvents(customerId: "c-versions", first: 10) { edges { node { id amount lines { planVersion } } } } }`,
        {},
      )
      const byId = new Map(events.usageEvents.edges.map((e: { node: { id: string } }) => [e.node.id, e.node]))
      expect(byId.get(before.event.id)).toMatchObject({ amount: '1', lines: [{ planVersion: 1 }] })
    } finally {
      clock.set(NOW)
    }
  })
})

describe('plans and setPricingPlan', () => {
  it('a markup set by setPricingPlan is the cost-based plan in force; pricingPlan answers as before', async () => {
    const other = await t.createTenant('markup tenant')
    await gqlOk(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "30" }) { kind } }`, {}, other.apiKey)
    const r = (await gqlOk(RECORD, { e: ev('c-markup', 1_000_000) }, other.apiKey)).recordUsage
    expect(r.event.amount).toBe('3.25')
    expect(r.event.lines[0].planId).toBeNull()
    const plan = await gqlOk(
      `query { ratingPlan(customerId: "c-markup") { source version rules { type kind percent } } pricingPlan(customerId: "c-markup") { kind percent } }`,
      {},
      other.apiKey,
    )
    expect(plan.ratingPlan).toEqual({
      source: 'PRICING_PLAN',
      version: 0,
      rules: [{ type: 'COST_BASED', kind: 'MARKUP', percent: '30' }],
    })
    expect(plan.pricingPlan).toEqual({ kind: 'MARKUP', percent: '30' })
    // A customer's own rating plan wins over the tenant default markup.
    await gqlOk(
      SET_PLAN,
      { i: { customerId: 'c-own', rules: [{ type: 'COST_BASED', kind: 'MARGIN', percent: '50' }] } },
      other.apiKey,
    )
    const own = (await gqlOk(RECORD, { e: ev('c-own', 1_000_000) }, other.apiKey)).recordUsage
    expect(own.event.amount).toBe('5')
  })
})

describe('invoicePreview access', () => {
  it("is open to the customer's widget session and to no other customer's", async () => {
    const session = await gqlOk(`mutation { createWidgetSession(customerId: "c-example") { token } }`, {})
    const token = session.createWidgetSession.token
    const mine = await t.gql(PREVIEW, { c: 'c-example' }, token)
    expect(mine.errors).toBeUndefined()
    expect(mine.data!.invoicePreview.total).toBe('20')
    const other = await t.gql(PREVIEW, { c: 'c-order' }, token)
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    const write = await t.gql(SET_PLAN, { i: { rules: [{ type: 'MINIMUM', amount: '1' }] } }, token)
    expect(write.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
  })

  it('refuses a periodStart that is not a period start, or in the future', async () => {
    const bad = await t.gql(PREVIEW, { c: 'c-example', p: '2026-11-02T00:00:00Z' })
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'periodStart' })
    const future = await t.gql(PREVIEW, { c: 'c-example', p: '2027-01-01T00:00:00Z' })
    expect(future.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'periodStart' })
    const past = (await gqlOk(PREVIEW, { c: 'c-example', p: '2026-10-01T00:00:00Z' })).invoicePreview
    // October: no usage, and the plan (and its minimum) only starts on November 20.
    expect(past).toMatchObject({ subtotal: '0', total: '0', lines: [] })
  })
})

describe('repriceUsage and rating plans', () => {
  it('leaves an event billed under a rating plan at its bill, and says so (re-rating is its own operation)', async () => {
    await gqlOk(SET_PLAN, {
      i: {
        customerId: 'c-reprice',
        rules: [{ id: 'in', type: 'FIXED_PRICE', model: 'gpt-4o*', usageType: 'input', price: '3' }],
      },
    })
    const recorded = (await gqlOk(RECORD, { e: ev('c-reprice', 1_000_000) })).recordUsage
    expect(recorded.event.amount).toBe('3')
    const hourBefore = new Date(Date.parse(NOW) - 3_600_000).toISOString()
    await gqlOk(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`, {
      i: { provider: 'openai', model: 'gpt-4o', usageType: 'input', unitPrice: '0.000001', effectiveFrom: hourBefore },
    })
    const reprice = (
      await gqlOk(
        `mutation($from: DateTime!, $to: DateTime!) { repriceUsage(from: $from, to: $to, model: "gpt-4o", reason: "override") { examined ratedKept amountDelta } }`,
        { from: hourBefore, to: new Date(Date.parse(NOW) + 1000).toISOString() },
      )
    ).repriceUsage
    expect(reprice.ratedKept).toBeGreaterThanOrEqual(1)
    const after = await gqlOk(`query { usageEvents(customerId: "c-reprice") { edges { node { id amount } } } }`, {})
    expect(after.usageEvents.edges.map((e: { node: { amount: string } }) => e.node.amount)).toEqual(['3'])
  })
})

describe('invoicePreview and prepaid credits', () => {
  it('takes off what credits paid for the period and shows the balance left', async () => {
    await gqlOk(SET_PLAN, {
      i: {
        customerId: 'c-credited',
        rules: [
          { id: 'in', type: 'FIXED_PRICE', model: 'gpt-4o*', usageType: 'input', price: '3' },
          { id: 'minimum', type: 'MINIMUM', amount: '10' },
        ],
      },
    })
    const granted = await gqlOk(
      `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { grant { remaining } } }`,
      { i: { idempotencyKey: 'preview-grant', customerId: 'c-credited', amount: '5' } },
    )
    expect(granted.grantCredits.grant.remaining).toBe('5')
    // 1,000,000 input tokens at $3 per 1M: $3, paid from the $5 grant.
    expect((await gqlOk(RECORD, { e: ev('c-credited', 1_000_000) })).recordUsage.event.amount).toBe('3')
    const p = (await gqlOk(PREVIEW, { c: 'c-credited' })).invoicePreview
    expect(p).toMatchObject({ subtotal: '10', creditsApplied: '3', creditsRemaining: '2', total: '7' })
    expect(p.lines.map((l: { kind: string; amount: string }) => [l.kind, l.amount])).toEqual([
      ['FIXED_PRICE', '3'],
      ['MINIMUM_TRUE_UP', '7'],
    ])
  })
})
