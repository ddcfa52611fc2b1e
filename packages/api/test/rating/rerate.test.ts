import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * Re-rating (rerateUsage), late pricing under a rating plan, and the audit of plan changes, through
 * GraphQL on both engines (PGlite by default, PostgreSQL with DATABASE_URL). gpt-4o input costs
 * $2.50 per 1M tokens in the bundled catalog.
 */
const NOW = '2026-11-20T12:00:00Z'
const clock = fixedClock(NOW)
let t: TestApp

const SET_PLAN = `mutation ($i: RatingPlanInput!) { setRatingPlan(input: $i) { id version effectiveFrom } }`
const BATCH = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { rejected results { status error { code message } event { id amount } } } }`
const RERATE = `mutation ($i: RerateUsageInput!) { rerateUsage(input: $i) { periodStart periodEnd examined corrected amountDelta reratings { id customerId periodStart reason events correctedEvents amountDelta } } }`
const EVENTS = `query ($c: String!) { usageEvents(customerId: $c, first: 50) { edges { node { id status amount lines { usageType amount planId planVersion parts { ruleId rule tier quantity amount } } } } } }`
const SUMMARY = `query ($c: String!) { usageSummary(customerId: $c, from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { amount events } }`
const PREVIEW = `query ($c: String!) { invoicePreview(customerId: $c) { lines { kind tier quantity amount } subtotal } }`

async function ok(query: string, variables: Record<string, unknown> = {}) {
  const r = await t.gql(query, variables)
  expect(r.errors).toBeUndefined()
  return r.data as Record<string, any>
}

async function record(events: Record<string, unknown>[]) {
  const r = (await ok(BATCH, { e: events })).recordUsageBatch
  expect(r.rejected).toBe(0)
  return r.results.map((x: any) => x.event)
}

const ev = (id: string, customerId: string, timestamp: string, inputTokens: number, extra = {}) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp,
  inputTokens,
  outputTokens: 0,
  ...extra,
})

async function events(c: string) {
  const nodes = (await ok(EVENTS, { c })).usageEvents.edges.map((e: any) => e.node)
  return new Map<string, any>(nodes.map((n: any) => [n.id, n]))
}

const TIERS = {
  id: 'input-tiers',
  type: 'TOKEN_TIERS',
  model: 'gpt-4o*',
  usageType: 'input',
  mode: 'GRADUATED',
  tiers: [
    { upTo: '1000000', unitPrice: '3' },
    { upTo: null, unitPrice: '2' },
  ],
}

beforeAll(async () => {
  t = await createTestApp({ clock })
})
afterAll(() => t.close())
// Each test sets its plans at NOW (12:00) and records usage of 12:10-12:30 at 13:00.
afterEach(() => clock.set(NOW))
const anHourLater = () => clock.set('2026-11-20T13:00:00Z')

describe('rerateUsage', () => {
  it('re-rates a period in event order: corrections, not rewrites; exact totals; a re-run changes nothing', async () => {
    await ok(SET_PLAN, { i: { customerId: 'c-order', rules: [TIERS] } })
    anHourLater()
    // Sent late-first: ingest rates 800,000 at 12:20 first ($2.40), then 400,000 at 12:10 across the boundary ($1.00).
    const [late, early] = await record([
      ev('o-2', 'c-order', '2026-11-20T12:20:00Z', 800_000),
      ev('o-1', 'c-order', '2026-11-20T12:10:00Z', 400_000),
    ])
    expect([late.amount, early.amount]).toEqual(['2.4', '1'])

    const first = (
      await ok(RERATE, {
        i: { customerId: 'c-order', from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z', reason: 'event order' },
      })
    ).rerateUsage
    // In event order: 400,000 at $3 = $1.20, then 600,000 at $3 + 200,000 at $2 = $2.20. The total stays $3.40.
    expect(first).toMatchObject({
      periodStart: '2026-11-01T00:00:00.000Z',
      periodEnd: '2026-12-01T00:00:00.000Z',
      examined: 2,
      corrected: 2,
      amountDelta: '0',
      reratings: [{ customerId: 'c-order', reason: 'event order', events: 2, correctedEvents: 2, amountDelta: '0' }],
    })
    // The events keep what ingest billed; the corrections carry the new bills.
    const stored = await events('c-order')
    expect([stored.get('o-1').amount, stored.get('o-2').amount]).toEqual(['1', '2.4'])
    const corrections = (
      await ok(
        `{ usageCorrections(from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z", customerId: "c-order") { eventId oldAmount newAmount reason newLines { parts { tier quantity amount } } } }`,
      )
    ).usageCorrections
    expect(corrections.map((c: any) => [c.eventId, c.oldAmount, c.newAmount, c.reason])).toEqual([
      ['o-1', '1', '1.2', 'event order'],
      ['o-2', '2.4', '2.2', 'event order'],
    ])
    expect(corrections[1].newLines[0].parts).toEqual([
      { tier: 1, quantity: '600000', amount: '1.8' },
      { tier: 2, quantity: '200000', amount: '0.4' },
    ])
    expect((await ok(SUMMARY, { c: 'c-order' })).usageSummary).toEqual({ amount: '3.4', events: 2 })

    const again = (
      await ok(RERATE, {
        i: { customerId: 'c-order', from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z', reason: 'event order' },
      })
    ).rerateUsage
    expect(again).toMatchObject({ examined: 2, corrected: 0, amountDelta: '0', reratings: [] })

    // The counters hold the period's total: the next event continues in tier 2.
    const [next] = await record([ev('o-3', 'c-order', '2026-11-20T12:30:00Z', 100_000)])
    expect(next.amount).toBe('0.2')
    const listed = (await ok(`{ ratingReratings(customerId: "c-order") { id events correctedEvents } }`))
      .ratingReratings
    expect(listed).toEqual([{ id: first.reratings[0].id, events: 2, correctedEvents: 2 }])
    const audit = (
      await ok(`{ auditLog(filter: { entityType: "RatingRerating" }) { edges { node { action entityId after } } } }`)
    ).auditLog.edges.map((e: any) => e.node)
    expect(audit).toContainEqual(
      expect.objectContaining({
        action: 'usage.rerate',
        entityId: first.reratings[0].id,
        after: expect.objectContaining({ customerId: 'c-order', correctedEvents: 2, amountDelta: '0' }),
      }),
    )
  })

  it('applies a plan fixed retroactively: lowers the bills, gives credits back, the preview explains the new tiers', async () => {
    const v1 = (await ok(SET_PLAN, { i: { customerId: 'c-fix', rules: [TIERS] } })).setRatingPlan
    anHourLater()
    await ok(
      `mutation { grantCredits(input: { customerId: "c-fix", amount: "10", idempotencyKey: "fix-1" }) { created } }`,
    )
    await record([
      ev('f-1', 'c-fix', '2026-11-20T12:10:00Z', 600_000),
      ev('f-2', 'c-fix', '2026-11-20T12:20:00Z', 600_000),
    ])
    // $1.80 + ($1.20 + $0.40) = $3.40, paid from the credits.
    expect((await ok(SUMMARY, { c: 'c-fix' })).usageSummary.amount).toBe('3.4')

    // Version 1 should have had a 500,000-token first tier: a version from the same start replaces it.
    const refused = await t.gql(SET_PLAN, {
      i: { customerId: 'c-fix', effectiveFrom: v1.effectiveFrom, rules: [TIERS] },
    })
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.effectiveFrom' })
    const fixed = (
      await ok(SET_PLAN, {
        i: {
          customerId: 'c-fix',
          effectiveFrom: v1.effectiveFrom,
          retroactive: true,
          rules: [
            {
              ...TIERS,
              tiers: [
                { upTo: '500000', unitPrice: '3' },
                { upTo: null, unitPrice: '1' },
              ],
            },
          ],
        },
      })
    ).setRatingPlan
    expect(fixed.version).toBe(2)
    // Nothing billed moved yet.
    expect((await ok(SUMMARY, { c: 'c-fix' })).usageSummary.amount).toBe('3.4')
    const r = (
      await ok(RERATE, {
        i: { customerId: 'c-fix', from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z', reason: 'tier fix' },
      })
    ).rerateUsage
    // 500,000 at $3 + 700,000 at $1 = $2.20: −$1.20, given back to the credits (10 − 3.40 + 1.20).
    expect(r).toMatchObject({ examined: 2, corrected: 2, amountDelta: '-1.2' })
    expect((await ok(SUMMARY, { c: 'c-fix' })).usageSummary.amount).toBe('2.2')
    const balance = (await ok(`{ creditBalance(customerId: "c-fix") { balance } }`)).creditBalance
    expect(balance.balance).toBe('7.8')
    const preview = (await ok(PREVIEW, { c: 'c-fix' })).invoicePreview
    expect(preview.lines.map((l: any) => [l.kind, l.tier, l.quantity, l.amount])).toEqual([
      ['TOKEN_TIERS', 1, '500000', '1.5'],
      ['TOKEN_TIERS', 2, '700000', '0.7'],
    ])
    expect(preview.subtotal).toBe('2.2')
    expect(
      (await ok(RERATE, { i: { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z', reason: 'tier fix' } }))
        .rerateUsage.corrected,
    ).toBe(0)
  })

  it('refuses bad input with a coded error', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z', reason: 'x' }, 'input.to'],
      [{ from: '2025-01-01T00:00:00Z', to: '2026-11-01T00:00:00Z', reason: 'x' }, 'input.to'],
      [{ from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z', reason: '  ' }, 'input.reason'],
      [{ customerId: '', from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z', reason: 'x' }, 'input.customerId'],
    ]
    for (const [input, field] of cases) {
      const r = await t.gql(RERATE, { i: input })
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field })
    }
  })
})

describe('rerateUsage while ingest runs into the same period', () => {
  it('loses and doubles nothing: the period total is the plan applied to the period total quantity', async () => {
    await ok(SET_PLAN, { i: { customerId: 'c-race', rules: [TIERS] } })
    anHourLater()
    const at = (i: number) => new Date(Date.parse('2026-11-20T12:01:00Z') + (i % 58) * 60_000).toISOString()
    // Sent newest first, so ingest and re-rating (event order) split the tiers differently.
    const batch = (from: number, size: number) =>
      Array.from({ length: size }, (_, j) => ev(`r-${from + j}`, 'c-race', at(1000 - from - j), 30_000))
    await record(batch(0, 10))
    const rerate = () =>
      ok(RERATE, {
        i: { customerId: 'c-race', from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z', reason: 'race' },
      })
    // 20 batches of 5 events race two re-ratings of the period (each started between batches).
    const ingest = (async () => {
      for (let b = 0; b < 20; b++) await record(batch(10 + b * 5, 5))
    })()
    const reratings = (async () => {
      await new Promise((r) => setTimeout(r, 5))
      await rerate()
      await new Promise((r) => setTimeout(r, 5))
      await rerate()
    })()
    await Promise.all([ingest, reratings])

    // 110 events × 30,000 = 3,300,000 input tokens: 1,000,000 at $3 + 2,300,000 at $2 per 1M = $7.60.
    const expected = '7.6'
    const page = `query { usageEvents(customerId: "c-race", first: 200) { edges { node { id amount } } } }`
    const all = new Map<string, any>((await ok(page)).usageEvents.edges.map((e: any) => [e.node.id, e.node] as const))
    expect(all.size).toBe(110)
    const summary = (await ok(SUMMARY, { c: 'c-race' })).usageSummary
    expect(summary).toEqual({ amount: expected, events: 110 })
    const sum = [...all.values()].reduce((s, e) => s + Math.round(Number(e.amount) * 1e6), 0)
    expect(sum).toBe(7_600_000)
    const preview = (await ok(PREVIEW, { c: 'c-race' })).invoicePreview
    expect(preview.subtotal).toBe(expected)
    const tierQuantity = (tier: number) =>
      preview.lines
        .filter((l: any) => l.kind === 'TOKEN_TIERS' && l.tier === tier)
        .reduce((q: number, l: any) => q + Number(l.quantity), 0)
    expect([tierQuantity(1), tierQuantity(2)]).toEqual([1_000_000, 2_300_000])
    // A re-rating after the race settles the event order; the total does not move.
    const last = (await rerate()).rerateUsage
    expect(last).toMatchObject({ examined: 110, amountDelta: '0' })
    expect((await ok(SUMMARY, { c: 'c-race' })).usageSummary).toEqual({ amount: expected, events: 110 })
    expect((await rerate()).rerateUsage).toMatchObject({ corrected: 0, amountDelta: '0' })
  })
})

describe('late pricing under a rating plan', () => {
  it('an UNPRICED event priced later is billed by the plan, after the period usage before it', async () => {
    await ok(SET_PLAN, {
      i: {
        customerId: 'c-late',
        rules: [
          { id: 'free', type: 'TOKEN_ALLOWANCE', model: '*', usageType: 'input', quantity: '100000' },
          { id: 'in', type: 'FIXED_PRICE', model: '*', usageType: 'input', price: '3' },
        ],
      },
    })
    anHourLater()
    const [pending] = await record([
      { ...ev('l-1', 'c-late', '2026-11-20T12:10:00Z', 300_000), model: 'house-model', provider: 'acme' },
    ])
    expect(pending.amount).toBeNull()
    await ok(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`, {
      i: {
        provider: 'acme',
        model: 'house-model',
        usageType: 'input',
        unitPrice: '0.000001',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    await expect.poll(async () => (await events('c-late')).get('l-1').status).toBe('PRICED')
    // 100,000 free, 200,000 at $3 per 1M (not the $0.30 the provider charges): $0.60.
    const priced = (await events('c-late')).get('l-1')
    expect(priced.amount).toBe('0.6')
    expect(priced.lines[0]).toMatchObject({
      planVersion: 1,
      parts: [
        { ruleId: 'free', rule: 'TOKEN_ALLOWANCE', quantity: '100000', amount: '0' },
        { ruleId: 'in', rule: 'FIXED_PRICE', quantity: '200000', amount: '0.6' },
      ],
    })
    // The allowance it used is gone for what follows.
    const [after] = await record([ev('l-2', 'c-late', '2026-11-20T12:20:00Z', 100_000)])
    expect(after.amount).toBe('0.3')
  })
})

describe('audit of plan changes', () => {
  it('setRatingPlan records each version with the one before', async () => {
    await ok(SET_PLAN, { i: { customerId: 'c-audit', rules: [{ type: 'MINIMUM', amount: '1' }] } })
    clock.set('2026-11-20T12:00:01Z')
    try {
      await ok(SET_PLAN, { i: { customerId: 'c-audit', rules: [{ type: 'MINIMUM', amount: '2' }] } })
    } finally {
      clock.set(NOW)
    }
    const entries = (
      await ok(
        `{ auditLog(filter: { entityType: "RatingPlan", entityId: "c-audit" }) { edges { node { action before after } } } }`,
      )
    ).auditLog.edges.map((e: any) => e.node)
    expect(entries).toHaveLength(2)
    expect(entries[0]).toMatchObject({
      action: 'ratingPlan.set',
      before: { version: 1, rules: [expect.objectContaining({ type: 'MINIMUM', amount: '1' })] },
      after: { version: 2, customerId: 'c-audit', rules: [expect.objectContaining({ type: 'MINIMUM', amount: '2' })] },
    })
    expect(entries[1]).toMatchObject({ before: null, after: { version: 1 } })
  })
})
