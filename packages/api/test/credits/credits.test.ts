import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import type { CreditAlertEvent } from '../../src/pubsub.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// Prepaid credits through GraphQL: grants, consumption at ingest in event order, the ledger and
// balance, expiry, scope, alerts, the prepaid-only hard stop, billed changes, and concurrency.

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp
const prepaidOnly = new Set<string>()
const published: CreditAlertEvent[] = []

const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created grant { id customerId amount remaining category priority status expiresAt scope { models features } source } } }`
const BALANCE = `query ($c: String!) { creditBalance(customerId: $c) { balance reserved available upcoming prepaidOnly topUpUrl lowBalanceThreshold grants { id amount remaining status } } }`
const LEDGER = `query ($c: String!, $g: String, $first: Int, $after: String) { creditLedger(customerId: $c, grantId: $g, first: $first, after: $after) { edges { cursor node { grantId kind amount balanceAfter eventId changeKey } } pageInfo { hasNextPage endCursor } } }`
const BATCH = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded rejected results { status error { code message } } } }`
const ALERTS = `query ($c: String!) { creditAlerts(customerId: $c) { customerId grantId kind threshold balance } }`
const CHECK = `query ($c: String!, $e: Decimal) { checkBudget(customerId: $c, estimatedAmount: $e) { allowed remaining credits { balance available allowed } } }`
const RESERVE = `mutation ($c: String!, $a: Decimal!) { reserveBudget(customerId: $c, amount: $a) { granted reservation { id } credits { balance available allowed } } }`

async function ok<T = Record<string, any>>(
  query: string,
  variables?: Record<string, unknown>,
  key?: string,
): Promise<T> {
  const reply = await t.gql(query, variables, key)
  expect(reply.errors).toBeUndefined()
  return reply.data as T
}

let seq = 0
/** gpt-4o input is $2.50 per million tokens: an event billed exactly `dollars`. */
const costing = (customerId: string, dollars: string, extra: Record<string, unknown> = {}) => ({
  id: `ev-${++seq}`,
  customerId,
  model: 'gpt-4o',
  timestamp: '2026-11-20T11:00:00Z',
  inputTokens: Math.round(Number(dollars) / 0.0000025),
  outputTokens: 0,
  ...extra,
})

async function record(events: Record<string, unknown>[], key?: string) {
  const r = await ok(BATCH, { e: events }, key)
  expect(r.recordUsageBatch.rejected).toBe(0)
  return r.recordUsageBatch
}

const grant = (input: Record<string, unknown>, key?: string) =>
  ok(GRANT, { i: { idempotencyKey: `k-${++seq}`, ...input } }, key).then((d) => d.grantCredits)
const balance = (c: string) => ok(BALANCE, { c }).then((d) => d.creditBalance)
async function ledger(c: string, g?: string) {
  const entries: Record<string, unknown>[] = []
  let after: string | null = null
  for (;;) {
    const page: any = (await ok(LEDGER, { c, g, first: 500, after })).creditLedger
    entries.push(...page.edges.map((e: any) => e.node))
    if (!page.pageInfo.hasNextPage) return entries.reverse()
    after = page.pageInfo.endCursor
  }
}

beforeAll(async () => {
  t = await createTestApp({
    clock,
    config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: true },
    prepaidPolicy: { prepaidOnly: async (_tenant, customerId) => prepaidOnly.has(customerId) },
  })
  void (async () => {
    for await (const alert of t.app.services.pubsub.subscribe('creditAlert', t.tenant.id)) published.push(alert)
  })()
  await ok(
    `mutation { createWebhookEndpoint(url: "http://127.0.0.1:9/hook", eventTypes: ["credit.alert"]) { secret } }`,
  )
})
afterAll(() => t.close())

describe('grantCredits', () => {
  it('refuses bad input with a coded error and stores nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ customerId: 'c-bad', amount: '0' }, 'input.amount'],
      [{ customerId: 'c-bad', amount: '-1' }, 'input.amount'],
      [{ customerId: 'c-bad', amount: '1', currency: 'EUR' }, 'input.currency'],
      [{ customerId: 'c-bad', amount: '1', priority: 101 }, 'input.priority'],
      [{ customerId: 'c-bad', amount: '1', expiresAt: '2026-11-20T11:00:00Z' }, 'input.expiresAt'],
      [{ customerId: 'c-bad', amount: '1', scope: { models: [] } }, 'input.scope'],
      [{ customerId: '', amount: '1' }, 'input.customerId'],
      [{ customerId: 'c-bad', amount: '1', idempotencyKey: '' }, 'input.idempotencyKey'],
    ]
    for (const [input, field] of cases) {
      const r = await t.gql(GRANT, { i: { idempotencyKey: `bad-${++seq}`, ...input } })
      expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field })
    }
    expect((await balance('c-bad')).grants).toEqual([])
  })

  it('is idempotent by the client key: the same key returns the same grant, once', async () => {
    const input = { customerId: 'c-idem', amount: '5', idempotencyKey: 'topup-1' }
    const first = await grant(input)
    const again = await grant(input)
    expect(first.created).toBe(true)
    expect(again).toEqual({ ...first, created: false })
    const other = await t.gql(GRANT, { i: { ...input, amount: '6' } })
    expect(other.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.idempotencyKey' })
    expect((await balance('c-idem')).balance).toBe('5')
    expect(await ledger('c-idem')).toEqual([
      expect.objectContaining({ kind: 'GRANT', amount: '5', balanceAfter: '5', grantId: first.grant.id }),
    ])
  })

  it('another tenant sees none of it', async () => {
    const other = await t.createTenant('Other')
    const r = await t.gql(BALANCE, { c: 'c-idem' }, other.apiKey)
    expect(r.data?.creditBalance).toMatchObject({ balance: '0', grants: [] })
  })
})

describe('consumption at ingest', () => {
  it('the worked example: promotional first by priority, then paid; the rest owed; expiry leaves an entry', async () => {
    const paid = await grant({
      customerId: 'c-example',
      amount: '10.00',
      category: 'PAID',
      expiresAt: '2026-12-01T00:00:00Z',
    })
    const promo = await grant({ customerId: 'c-example', amount: '2.00', category: 'PROMOTIONAL', priority: 10 })
    expect(paid.grant).toMatchObject({
      amount: '10',
      remaining: '10',
      priority: 50,
      status: 'ACTIVE',
      source: 'MUTATION',
    })

    // $1.50 at 11:00 and $1.00 at 11:30 (sent in reverse order: drawn in event order).
    await record([
      costing('c-example', '1.00', { id: 'ex-2', timestamp: '2026-11-20T11:30:00Z' }),
      costing('c-example', '1.50', { id: 'ex-1', timestamp: '2026-11-20T11:00:00Z' }),
    ])
    expect(await balance('c-example')).toMatchObject({
      balance: '9.5',
      available: '9.5',
      grants: [
        { id: promo.grant.id, remaining: '0', status: 'DEPLETED' },
        { id: paid.grant.id, remaining: '9.5', status: 'ACTIVE' },
      ],
    })
    expect((await ledger('c-example')).filter((e) => e.kind === 'CONSUMPTION')).toEqual([
      {
        grantId: promo.grant.id,
        kind: 'CONSUMPTION',
        amount: '-1.5',
        balanceAfter: '0.5',
        eventId: 'ex-1',
        changeKey: null,
      },
      {
        grantId: promo.grant.id,
        kind: 'CONSUMPTION',
        amount: '-0.5',
        balanceAfter: '0',
        eventId: 'ex-2',
        changeKey: null,
      },
      {
        grantId: paid.grant.id,
        kind: 'CONSUMPTION',
        amount: '-0.5',
        balanceAfter: '9.5',
        eventId: 'ex-2',
        changeKey: null,
      },
    ])

    // A replay draws nothing.
    await record([costing('c-example', '1.50', { id: 'ex-1', timestamp: '2026-11-20T11:00:00Z' })])
    expect((await balance('c-example')).balance).toBe('9.5')

    // December: the paid grant expired with $9.50 left.
    clock.set('2026-12-01T00:00:00Z')
    try {
      expect(await balance('c-example')).toMatchObject({
        balance: '0',
        grants: [
          { id: promo.grant.id, remaining: '0', status: 'DEPLETED' },
          { id: paid.grant.id, remaining: '0', status: 'EXPIRED' },
        ],
      })
      const entries = await ledger('c-example', paid.grant.id)
      expect(entries.at(-1)).toMatchObject({ kind: 'EXPIRY', amount: '-9.5', balanceAfter: '0' })
      // Reading again (or the sweep) writes no second entry.
      expect(await t.app.services.credits.sweepExpired()).toBe(0)
      expect(await ledger('c-example', paid.grant.id)).toHaveLength(entries.length)
      // Usage now is owed in full: no credit pays for it.
      await record([costing('c-example', '0.25', { timestamp: '2026-11-30T23:59:00Z' })])
      expect((await ledger('c-example')).filter((e) => e.kind === 'CONSUMPTION')).toHaveLength(3)
    } finally {
      clock.set('2026-11-20T12:00:00Z')
    }
  })

  it('a scoped grant pays only for its models or features', async () => {
    const claude = await grant({ customerId: 'c-scope', amount: '1', scope: { models: ['claude-*'] } })
    const search = await grant({ customerId: 'c-scope', amount: '1', scope: { features: ['search'] } })
    await record([costing('c-scope', '0.25'), costing('c-scope', '0.5', { feature: 'search' })])
    const b = await balance('c-scope')
    const left = new Map(b.grants.map((g: any) => [g.id, g.remaining]))
    expect(left.get(claude.grant.id)).toBe('1')
    expect(left.get(search.grant.id)).toBe('0.5')
    expect(claude.grant.scope).toEqual({ models: ['claude-*'], features: [] })
  })

  it('a grant pays for usage recorded from its effective time', async () => {
    const g = await grant({ customerId: 'c-future', amount: '3', effectiveAt: '2026-11-20T13:00:00Z' })
    expect(g.grant.status).toBe('PENDING')
    await record([costing('c-future', '1')])
    expect(await balance('c-future')).toMatchObject({ balance: '0', upcoming: '3' })
    clock.set('2026-11-20T13:00:00Z')
    try {
      // Usage from before the grant that is recorded once it is in force is paid by it.
      await record([costing('c-future', '1', { timestamp: '2026-11-20T12:59:59Z' })])
      expect(await balance('c-future')).toMatchObject({ balance: '2', upcoming: '0' })
    } finally {
      clock.set('2026-11-20T12:00:00Z')
    }
  })
})

describe('alerts', () => {
  it('LOW_BALANCE and ZERO_BALANCE once per crossing, live and by webhook', async () => {
    const creditDeliveries = async () =>
      ((await ok(`{ webhookDeliveries { eventType } }`)).webhookDeliveries as { eventType: string }[]).filter(
        (d) => d.eventType === 'credit.alert',
      ).length
    const deliveredBefore = await creditDeliveries()
    await ok(
      `mutation { setCreditSettings(input: { customerId: "c-alerts", lowBalanceThreshold: "1" }) { lowBalanceThreshold } }`,
    )
    const g = await grant({ customerId: 'c-alerts', amount: '3', lowBalanceThreshold: '2' })
    await record([costing('c-alerts', '0.5')]) // 2.5 left: nothing crossed
    expect((await ok(ALERTS, { c: 'c-alerts' })).creditAlerts).toEqual([])
    await record([costing('c-alerts', '0.5'), costing('c-alerts', '0.5')]) // 1.5: the grant's 2 crossed
    await record([costing('c-alerts', '1')]) // 0.5: the customer's 1 crossed
    await record([costing('c-alerts', '1')]) // 0: zero, 0.5 owed
    await record([costing('c-alerts', '1')]) // still 0: nothing new
    const alerts = (await ok(ALERTS, { c: 'c-alerts' })).creditAlerts
    expect(alerts.reverse()).toEqual([
      { customerId: 'c-alerts', grantId: g.grant.id, kind: 'LOW_BALANCE', threshold: '2', balance: '1.5' },
      { customerId: 'c-alerts', grantId: null, kind: 'LOW_BALANCE', threshold: '1', balance: '0.5' },
      { customerId: 'c-alerts', grantId: null, kind: 'ZERO_BALANCE', threshold: '0', balance: '0' },
    ])
    await expect
      .poll(() => published.filter((a) => a.customerId === 'c-alerts').map((a) => a.kind))
      .toEqual(['LOW_BALANCE', 'LOW_BALANCE', 'ZERO_BALANCE'])
    expect((await creditDeliveries()) - deliveredBefore).toBe(3)

    // A top-up re-arms: the next crossing alerts again.
    await grant({ customerId: 'c-alerts', amount: '2' })
    await record([costing('c-alerts', '1.5')])
    expect((await ok(ALERTS, { c: 'c-alerts' })).creditAlerts[0]).toMatchObject({
      kind: 'LOW_BALANCE',
      grantId: null,
      balance: '0.5',
    })
  })
})

describe('expiry alerts', () => {
  it('an expiry that lowers the balance under the thresholds alerts once, and one that empties it alerts zero', async () => {
    await ok(
      `mutation { setCreditSettings(input: { customerId: "c-exp-low", lowBalanceThreshold: "5" }) { lowBalanceThreshold } }`,
    )
    await grant({ customerId: 'c-exp-low', amount: '3' })
    await grant({ customerId: 'c-exp-low', amount: '4', expiresAt: '2026-11-21T00:00:00Z' })
    await ok(
      `mutation { setCreditSettings(input: { customerId: "c-exp-zero", lowBalanceThreshold: "1" }) { lowBalanceThreshold } }`,
    )
    await grant({ customerId: 'c-exp-zero', amount: '2', expiresAt: '2026-11-21T00:00:00Z' })
    clock.set('2026-11-21T00:00:00Z')
    try {
      // The sweep expires both; the balance read expires nothing more.
      expect(await t.app.services.credits.sweepExpired()).toBe(2)
      expect((await balance('c-exp-low')).balance).toBe('3')
      expect(await t.app.services.credits.sweepExpired()).toBe(0)
      expect((await ok(ALERTS, { c: 'c-exp-low' })).creditAlerts).toEqual([
        { customerId: 'c-exp-low', grantId: null, kind: 'LOW_BALANCE', threshold: '5', balance: '3' },
      ])
      expect((await ok(ALERTS, { c: 'c-exp-zero' })).creditAlerts.reverse()).toEqual([
        { customerId: 'c-exp-zero', grantId: null, kind: 'LOW_BALANCE', threshold: '1', balance: '0' },
        { customerId: 'c-exp-zero', grantId: null, kind: 'ZERO_BALANCE', threshold: '0', balance: '0' },
      ])
      await expect
        .poll(() => published.filter((a) => a.customerId.startsWith('c-exp-')).map((a) => a.kind))
        .toEqual(['LOW_BALANCE', 'LOW_BALANCE', 'ZERO_BALANCE'])
    } finally {
      clock.set('2026-11-20T12:00:00Z')
    }
  })

  it('an expiry found by a balance read alerts too', async () => {
    await grant({ customerId: 'c-exp-read', amount: '1', expiresAt: '2026-11-20T12:30:00Z' })
    clock.set('2026-11-20T12:30:00Z')
    try {
      expect((await balance('c-exp-read')).balance).toBe('0')
      expect((await balance('c-exp-read')).balance).toBe('0')
      expect((await ok(ALERTS, { c: 'c-exp-read' })).creditAlerts).toEqual([
        { customerId: 'c-exp-read', grantId: null, kind: 'ZERO_BALANCE', threshold: '0', balance: '0' },
      ])
    } finally {
      clock.set('2026-11-20T12:00:00Z')
    }
  })
})

describe('audit log', () => {
  it('grants, credit settings and the top-up URL are recorded with before and after', async () => {
    const g = await grant({ customerId: 'c-audit', amount: '7' })
    await ok(
      `mutation { setCreditSettings(input: { customerId: "c-audit", lowBalanceThreshold: "2" }) { lowBalanceThreshold } }`,
    )
    await ok(
      `mutation { setCreditSettings(input: { customerId: "c-audit", lowBalanceThreshold: "3" }) { lowBalanceThreshold } }`,
    )
    await ok(`mutation { setCreditTopUpUrl(url: "https://app.example.com/credits") }`)
    const log = async (entityType: string) =>
      (
        await ok(
          `query ($t: String!) { auditLog(filter: { entityType: $t }, first: 50) { edges { node { action entityId before after actorRole } } } }`,
          {
            t: entityType,
          },
        )
      ).auditLog.edges.map((e: any) => e.node)
    expect((await log('CreditGrant')).find((n: any) => n.entityId === g.grant.id)).toMatchObject({
      action: 'creditGrant.create',
      before: null,
      after: expect.objectContaining({ customer_id: 'c-audit', amount: '7' }),
    })
    // Both at the same instant (a fixed clock): in either order.
    const settings = (await log('CreditSettings')).filter((n: any) => n.entityId === 'c-audit')
    expect(settings).toHaveLength(2)
    expect(settings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'creditSettings.set',
          before: { lowBalanceThreshold: '2' },
          after: { lowBalanceThreshold: '3' },
        }),
        expect.objectContaining({ action: 'creditSettings.set', before: null, after: { lowBalanceThreshold: '2' } }),
      ]),
    )
    expect((await log('Tenant')).find((n: any) => n.action === 'creditTopUpUrl.set')).toMatchObject({
      after: { creditTopUpUrl: 'https://app.example.com/credits' },
    })
  })
})

describe('prepaid-only hard stop', () => {
  it('checkBudget and reserveBudget refuse what the credits, less reservations, cannot pay', async () => {
    prepaidOnly.add('c-prepaid')
    let check = (await ok(CHECK, { c: 'c-prepaid', e: '0.01' })).checkBudget
    expect(check).toMatchObject({ allowed: false, credits: { balance: '0', available: '0', allowed: false } })

    await grant({ customerId: 'c-prepaid', amount: '1' })
    check = (await ok(CHECK, { c: 'c-prepaid', e: '0.5' })).checkBudget
    expect(check).toMatchObject({ allowed: true, remaining: null, credits: { balance: '1', available: '1' } })

    const held = (await ok(RESERVE, { c: 'c-prepaid', a: '0.8' })).reserveBudget
    expect(held).toMatchObject({ granted: true, credits: { balance: '1', available: '0.2' } })
    expect((await ok(RESERVE, { c: 'c-prepaid', a: '0.5' })).reserveBudget).toMatchObject({ granted: false })
    expect((await ok(CHECK, { c: 'c-prepaid', e: '0.5' })).checkBudget.allowed).toBe(false)
    expect(await balance('c-prepaid')).toMatchObject({
      balance: '1',
      reserved: '0.8',
      available: '0.2',
      prepaidOnly: true,
    })

    // The call settles its reservation at $0.75: the credits pay, the hold is gone.
    await record([costing('c-prepaid', '0.75', { reservationId: held.reservation.id })])
    expect(await balance('c-prepaid')).toMatchObject({ balance: '0.25', reserved: '0', available: '0.25' })
    expect((await ok(CHECK, { c: 'c-prepaid', e: '0.25' })).checkBudget.allowed).toBe(true)
    expect((await ok(CHECK, { c: 'c-prepaid', e: '0.26' })).checkBudget.allowed).toBe(false)

    // A customer that is not prepaid-only is never stopped by credits.
    expect((await ok(CHECK, { c: 'c-example', e: '100' })).checkBudget).toMatchObject({ allowed: true, credits: null })
  })

  it('50 parallel reservations never hold more than the credits', async () => {
    prepaidOnly.add('c-prepaid-race')
    await grant({ customerId: 'c-prepaid-race', amount: '1' })
    const results = await Promise.all(Array.from({ length: 50 }, () => ok(RESERVE, { c: 'c-prepaid-race', a: '0.1' })))
    expect(results.filter((r) => r.reserveBudget.granted)).toHaveLength(10)
  })
})

describe('billed changes', () => {
  it('late pricing draws, a lowering correction gives back, a raising one draws more', async () => {
    const other = await t.createTenant('Reprice')
    const key = other.apiKey
    const g = (await ok(GRANT, { i: { customerId: 'c-re', amount: '10', idempotencyKey: 're' } }, key)).grantCredits
    // An unknown model: UNPRICED, nothing drawn.
    await record(
      [
        {
          id: 're-1',
          customerId: 'c-re',
          model: 'acme-1',
          provider: 'acme',
          timestamp: '2026-11-20T11:00:00Z',
          inputTokens: 1_000_000,
          outputTokens: 0,
        },
      ],
      key,
    )
    const BAL = (c: string) => ok(BALANCE, { c }, key).then((d) => d.creditBalance)
    expect((await BAL('c-re')).balance).toBe('10')
    // Its price arrives: $2 per million input tokens, so $2 is drawn by the late pricing.
    await ok(
      `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`,
      {
        i: {
          provider: 'acme',
          model: 'acme-1',
          usageType: 'input',
          unitPrice: '0.000002',
          effectiveFrom: '2026-11-01T00:00:00Z',
        },
      },
      key,
    )
    await expect.poll(async () => (await BAL('c-re')).balance).toBe('8')
    // Halved: $1 given back. Then tripled: $2 more drawn.
    const REPRICE = `mutation ($m: String!) { repriceUsage(from: "2026-11-20T00:00:00Z", to: "2026-11-20T12:00:00Z", model: $m, provider: "acme", reason: "test") { corrected amountDelta } }`
    const override = (price: string, from: string) =>
      ok(
        `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`,
        { i: { provider: 'acme', model: 'acme-1', usageType: 'input', unitPrice: price, effectiveFrom: from } },
        key,
      )
    clock.set('2026-11-20T12:01:00Z')
    await override('0.000001', '2026-11-02T00:00:00Z')
    expect((await ok(REPRICE, { m: 'acme-1' }, key)).repriceUsage).toEqual({ corrected: 1, amountDelta: '-1' })
    expect((await BAL('c-re')).balance).toBe('9')
    clock.set('2026-11-20T12:02:00Z')
    await override('0.000003', '2026-11-03T00:00:00Z')
    expect((await ok(REPRICE, { m: 'acme-1' }, key)).repriceUsage).toEqual({ corrected: 1, amountDelta: '2' })
    expect((await BAL('c-re')).balance).toBe('7')
    const entries = (await ok(LEDGER, { c: 'c-re', first: 50 }, key)).creditLedger.edges
      .map((e: any) => e.node)
      .reverse()
    expect(entries.map((e: any) => [e.kind, e.amount, e.balanceAfter, e.eventId])).toEqual([
      ['GRANT', '10', '10', null],
      ['CONSUMPTION', '-2', '8', 're-1'],
      ['REVERSAL', '1', '9', 're-1'],
      ['CONSUMPTION', '-2', '7', 're-1'],
    ])
    expect(entries.every((e: any) => e.grantId === g.grant.id)).toBe(true)
    clock.set('2026-11-20T12:00:00Z')
  })
})

describe('concurrency', () => {
  it('50 parallel batches never spend a credit twice or go below zero', async () => {
    const a = await grant({ customerId: 'c-race-a', amount: '5' })
    const a2 = await grant({ customerId: 'c-race-a', amount: '0.7', priority: 0 })
    const b = await grant({ customerId: 'c-race-b', amount: '2' })
    // Each batch: two events of each customer at $0.03, in an order that differs batch to batch.
    const batches = Array.from({ length: 50 }, (_, i) => {
      const events = [
        costing('c-race-a', '0.03'),
        costing('c-race-b', '0.03'),
        costing('c-race-a', '0.03'),
        costing('c-race-b', '0.03'),
      ]
      return i % 2 ? events.reverse() : events
    })
    const results = await Promise.all(batches.map((events) => t.gql(BATCH, { e: events })))
    for (const r of results) expect(r.data?.recordUsageBatch).toMatchObject({ recorded: 4, rejected: 0 })

    // Usage: A $3.00 (against $5.70), B $3.00 (against $2): consumption == min(grant, usage).
    const consumed = async (c: string) =>
      (await ledger(c)).filter((e) => e.kind === 'CONSUMPTION').reduce((s, e) => s + -Number(e.amount) * 100, 0)
    expect(Math.round(await consumed('c-race-a'))).toBe(300)
    expect(Math.round(await consumed('c-race-b'))).toBe(200)
    const ba = await balance('c-race-a')
    expect(ba.balance).toBe('2.7')
    expect(ba.grants.find((g: any) => g.id === a2.grant.id).remaining).toBe('0')
    expect(ba.grants.find((g: any) => g.id === a.grant.id).remaining).toBe('2.7')
    expect((await balance('c-race-b')).grants[0]).toMatchObject({ id: b.grant.id, remaining: '0' })

    // No event drew more than it was billed; every grant's remaining is its ledger's sum.
    for (const c of ['c-race-a', 'c-race-b']) {
      const entries = await ledger(c)
      const perEvent = new Map<string, number>()
      for (const e of entries.filter((x) => x.kind === 'CONSUMPTION'))
        perEvent.set(e.eventId as string, (perEvent.get(e.eventId as string) ?? 0) - Number(e.amount) * 100)
      for (const cents of perEvent.values()) expect(Math.round(cents)).toBeLessThanOrEqual(3)
      const sums = await t.app.services.db
        .selectFrom('credit_ledger')
        .innerJoin('credit_grants', (j) =>
          j
            .onRef('credit_grants.tenant_id', '=', 'credit_ledger.tenant_id')
            .onRef('credit_grants.id', '=', 'credit_ledger.grant_id'),
        )
        .select(['credit_grants.id', 'credit_grants.remaining'])
        .select((eb) => eb.fn.sum<string>('credit_ledger.amount').as('total'))
        .where('credit_ledger.customer_id', '=', c)
        .groupBy(['credit_grants.id', 'credit_grants.remaining'])
        .execute()
      for (const s of sums) expect(Number(s.total)).toBe(Number(s.remaining))
      for (const e of entries) expect(Number(e.balanceAfter)).toBeGreaterThanOrEqual(0)
    }
  })
})
