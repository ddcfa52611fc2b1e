import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import type { BudgetAlertEvent } from '../../src/pubsub.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// Budget spend must follow the ledger however an amount came about: ingest, an UNPRICED event
// priced when its price arrives, or a correction written by repriceUsage.

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp
const published: BudgetAlertEvent[] = []

const RECORD = `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { message } event { status amount } } }`
const SET = `mutation ($i: BudgetInput!) { setBudget(input: $i) { id spent } }`
const BUDGETS = `query ($c: String!) { budgets(customerId: $c) { period spent remaining periodStart periodEnd } }`
const ALERTS = `query ($c: String!) { budgetAlerts(customerId: $c) { threshold kind spent } }`
const SUMMARY = `query ($c: String!, $from: DateTime!, $to: DateTime!) { usageSummary(customerId: $c, from: $from, to: $to) { amount unpricedEvents } }`
const OVERRIDE = `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`
const REPRICE = `mutation ($from: DateTime!, $to: DateTime!, $m: String!, $p: String) { repriceUsage(from: $from, to: $to, model: $m, provider: $p, reason: "test") { corrected amountDelta } }`
const DELIVERIES = `{ webhookDeliveries { eventType status } }`

async function ok<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const reply = await t.gql(query, variables)
  expect(reply.errors).toBeUndefined()
  return reply.data as T
}

/** What each budget says it spent, next to what the ledger bills in the same period. */
async function spendAndLedger(customerId: string) {
  const { budgets } = await ok<{
    budgets: { period: string; spent: string; periodStart: string; periodEnd: string }[]
  }>(BUDGETS, { c: customerId })
  return Promise.all(
    budgets.map(async (b) => ({
      period: b.period,
      spent: b.spent,
      ledger: (
        await ok<{ usageSummary: { amount: string } }>(SUMMARY, { c: customerId, from: b.periodStart, to: b.periodEnd })
      ).usageSummary.amount,
    })),
  )
}

beforeAll(async () => {
  t = await createTestApp({ clock, config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: true } })
  void (async () => {
    for await (const alert of t.app.services.pubsub.subscribe('budgetAlert', t.tenant.id)) published.push(alert)
  })()
  // Deliveries are only enqueued here (no dispatcher runs), which is what this file checks.
  await ok(
    `mutation { createWebhookEndpoint(url: "http://127.0.0.1:9/hook", eventTypes: ["budget.alert"]) { secret } }`,
  )
})
afterAll(() => t.close())

describe('budget spend after re-pricing', () => {
  it('a correction that raises the bill raises spend, crosses thresholds once, and alerts live and by webhook', async () => {
    await ok(SET, { i: { customerId: 'c-up', period: 'DAY', limit: '10' } })
    await ok(SET, { i: { customerId: 'c-up', period: 'MONTH', limit: '100' } })
    // gpt-4o input: $2.50 per million tokens. 1.6M tokens = $4.00, at 09:00 and 10:00 today.
    for (const [i, hour] of ['09', '10'].entries()) {
      const r = await ok(RECORD, {
        e: {
          id: `up-${i}`,
          customerId: 'c-up',
          model: 'gpt-4o',
          timestamp: `2026-11-20T${hour}:00:00Z`,
          inputTokens: 800_000,
        },
      })
      expect(r.recordUsage.event.amount).toBe('2')
    }
    expect(await spendAndLedger('c-up')).toEqual([
      { period: 'DAY', spent: '4', ledger: '4' },
      { period: 'MONTH', spent: '4', ledger: '4' },
    ])
    expect((await ok(ALERTS, { c: 'c-up' })).budgetAlerts).toEqual([])

    // A negotiated price from 08:00 doubles it: $8 of a $10 day is past 50 % and 80 %.
    clock.set('2026-11-20T12:05:00Z')
    await ok(OVERRIDE, {
      i: {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        unitPrice: '0.000005',
        effectiveFrom: '2026-11-20T08:00:00Z',
      },
    })
    const reprice = await ok(REPRICE, { from: '2026-11-20T00:00:00Z', to: '2026-11-20T12:00:00Z', m: 'gpt-4o' })
    expect(reprice.repriceUsage).toEqual({ corrected: 2, amountDelta: '4' })
    expect(await spendAndLedger('c-up')).toEqual([
      { period: 'DAY', spent: '8', ledger: '8' },
      { period: 'MONTH', spent: '8', ledger: '8' },
    ])
    const alerts = (await ok(ALERTS, { c: 'c-up' })).budgetAlerts as {
      threshold: number
      kind: string
      spent: string
    }[]
    expect(
      alerts
        .filter((a) => a.kind === 'THRESHOLD')
        .map((a) => [a.threshold, a.spent])
        .sort(),
    ).toEqual([
      [50, '8'],
      [80, '8'],
    ])
    await expect
      .poll(() =>
        published
          .filter((a) => a.customerId === 'c-up' && a.kind === 'THRESHOLD')
          .map((a) => a.threshold)
          .sort(),
      )
      .toEqual([50, 80])
    const deliveries = (await ok(DELIVERIES)).webhookDeliveries as { eventType: string }[]
    expect(deliveries.filter((d) => d.eventType === 'budget.alert').length).toBe(alerts.length)

    // Re-running the re-pricing changes nothing, spend included.
    expect(
      (await ok(REPRICE, { from: '2026-11-20T00:00:00Z', to: '2026-11-20T12:00:00Z', m: 'gpt-4o' })).repriceUsage,
    ).toEqual({ corrected: 0, amountDelta: '0' })
    expect((await spendAndLedger('c-up'))[0]).toEqual({ period: 'DAY', spent: '8', ledger: '8' })
  })

  it('a correction that lowers the bill lowers spend exactly, into the period of each event', async () => {
    await ok(SET, { i: { customerId: 'c-down', period: 'DAY', limit: '10' } })
    clock.set('2026-11-20T12:10:00Z')
    // One event today and one yesterday: yesterday's correction must not touch today's spend.
    await ok(RECORD, {
      e: {
        id: 'down-today',
        customerId: 'c-down',
        model: 'claude-3-5-haiku-latest',
        timestamp: '2026-11-20T11:00:00Z',
        inputTokens: 1_000_000,
        outputTokens: 3,
      },
    })
    await ok(RECORD, {
      e: {
        id: 'down-yesterday',
        customerId: 'c-down',
        model: 'claude-3-5-haiku-latest',
        timestamp: '2026-11-19T11:00:00Z',
        inputTokens: 1_000_000,
      },
    })
    const before = await spendAndLedger('c-down')
    expect(before[0]!.spent).toBe(before[0]!.ledger)

    await ok(OVERRIDE, {
      i: {
        provider: 'anthropic',
        model: 'claude-3-5-haiku-latest',
        usageType: 'input',
        unitPrice: '0.0000001234567',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    const reprice = await ok(REPRICE, {
      from: '2026-11-19T00:00:00Z',
      to: '2026-11-21T00:00:00Z',
      m: 'claude-3-5-haiku-latest',
      p: 'anthropic',
    })
    expect(reprice.repriceUsage.corrected).toBe(2)
    const after = await spendAndLedger('c-down')
    expect(after[0]!.spent).toBe(after[0]!.ledger)
    expect(after[0]!.spent).not.toBe(before[0]!.spent)
    // Only input moved, to 1.234567 × 10⁻⁷ a token (0.1234567); 3 output tokens keep $4 per million.
    expect(after[0]!.spent).toBe('0.1234687')
  })

  it('an UNPRICED event priced when its price arrives counts toward spend', async () => {
    await ok(SET, { i: { customerId: 'c-late', period: 'DAY', limit: '1' } })
    clock.set('2026-11-20T12:20:00Z')
    const r = await ok(RECORD, {
      e: {
        id: 'late-1',
        customerId: 'c-late',
        model: 'rocket-7',
        provider: 'acme',
        timestamp: '2026-11-20T11:30:00Z',
        inputTokens: 900_000,
      },
    })
    expect(r.recordUsage.event.status).toBe('UNPRICED')
    expect(await spendAndLedger('c-late')).toEqual([{ period: 'DAY', spent: '0', ledger: '0' }])

    // The price arrives (an override applies through the catalog service, whose listener prices waiting events).
    await ok(OVERRIDE, {
      i: {
        provider: 'acme',
        model: 'rocket-7',
        usageType: 'input',
        unitPrice: '0.000001',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    })
    await expect
      .poll(
        async () =>
          (await ok(SUMMARY, { c: 'c-late', from: '2026-11-20T00:00:00Z', to: '2026-11-21T00:00:00Z' })).usageSummary
            .unpricedEvents,
      )
      .toBe(0)
    expect(await spendAndLedger('c-late')).toEqual([{ period: 'DAY', spent: '0.9', ledger: '0.9' }])
    const alerts = (await ok(ALERTS, { c: 'c-late' })).budgetAlerts as { threshold: number; kind: string }[]
    expect(
      alerts
        .filter((a) => a.kind === 'THRESHOLD')
        .map((a) => a.threshold)
        .sort(),
    ).toEqual([50, 80])
  })
})
