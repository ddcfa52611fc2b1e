import { sql } from 'kysely'
import { Migrator } from 'kysely/migration'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApp } from '../../src/app.ts'
import { fixedClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import { createDatabase, migrateToLatest } from '../../src/db/database.ts'
import { migrations } from '../../src/db/migrations/index.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { budgetsOfCustomers } from '../../src/budgets/repository.ts'
import { view } from '../../src/budgets/views.ts'
import type { Tenant } from '../../src/db/types.ts'
import type { BudgetAlertEvent } from '../../src/pubsub.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

// Friday 2026-11-20, noon UTC: half of the UTC day has elapsed.
const NOW = '2026-11-20T12:00:00Z'
const clock = fixedClock(NOW)
let t: TestApp
const published: BudgetAlertEvent[] = []

const RECORD = `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { code message field } event { amount } } }`
const BATCH = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded rejected results { status error { code field message } } } }`
const SET = `mutation ($i: BudgetInput!) { setBudget(input: $i) { id customerId period limit thresholds hardLimit forecastAlerts periodStart periodEnd spent remaining reserved forecast timeZone } }`
const BUDGETS = `query ($c: String!) { budgets(customerId: $c) { id period limit spent remaining reserved forecast periodStart periodEnd } }`
const ALERTS = `query ($c: String!) { budgetAlerts(customerId: $c) { customerId budgetId threshold kind spent limit forecast periodStart triggeredAt } }`
const CHECK = `query ($c: String!, $e: Decimal) { checkBudget(customerId: $c, estimatedAmount: $e) { allowed remaining budget { id limit spent reserved } } }`
const RESERVE = `mutation ($c: String!, $a: Decimal!, $ttl: Int) { reserveBudget(customerId: $c, amount: $a, ttlSeconds: $ttl) { granted remaining reservation { id amount expiresAt } budget { reserved } } }`

/** gpt-4o: $2.50 per million input tokens, $10 per million output tokens. 1000 in + 100 out = 0.0035. */
let seq = 0
const event = (customerId: string, inputTokens: number, extra: Record<string, unknown> = {}) => ({
  id: `ev-${++seq}`,
  customerId,
  model: 'gpt-4o',
  timestamp: '2026-11-20T11:00:00Z',
  inputTokens,
  outputTokens: 0,
  ...extra,
})
/** An event billed exactly `dollars` (inputTokens = dollars / 0.0000025). */
const costing = (customerId: string, dollars: number, extra: Record<string, unknown> = {}) =>
  event(customerId, Math.round(dollars / 0.0000025), extra)

async function record(e: Record<string, unknown>) {
  const r = await t.gql(RECORD, { e })
  expect(r.errors).toBeUndefined()
  return r.data!.recordUsage
}

async function setBudget(input: Record<string, unknown>) {
  const r = await t.gql(SET, { i: input })
  expect(r.errors).toBeUndefined()
  return r.data!.setBudget
}

beforeAll(async () => {
  t = await createTestApp({ clock })
  void (async () => {
    for await (const alert of t.app.services.pubsub.subscribe('budgetAlert', t.tenant.id)) published.push(alert)
  })()
})
afterAll(() => t.close())

describe('setBudget', () => {
  it('creates a budget with defaults, for the current UTC period', async () => {
    const b = await setBudget({ customerId: 'c-defaults', period: 'MONTH', limit: '100' })
    expect(b).toMatchObject({
      customerId: 'c-defaults',
      period: 'MONTH',
      limit: '100',
      thresholds: [50, 80, 100],
      hardLimit: false,
      forecastAlerts: false,
      timeZone: 'UTC',
      periodStart: '2026-11-01T00:00:00.000Z',
      periodEnd: '2026-12-01T00:00:00.000Z',
      spent: '0',
      remaining: '100',
      reserved: '0',
      forecast: '0',
    })
    expect(b.id).toMatch(/^bud_/)
    // Setting it again updates the same budget.
    const again = await setBudget({
      customerId: 'c-defaults',
      period: 'MONTH',
      limit: '250.5',
      thresholds: [90, 25],
      hardLimit: true,
    })
    expect(again).toMatchObject({ id: b.id, limit: '250.5', thresholds: [25, 90], hardLimit: true })
    const kept = await setBudget({ customerId: 'c-defaults', period: 'MONTH', limit: '300' })
    expect(kept).toMatchObject({ id: b.id, limit: '300', thresholds: [25, 90], hardLimit: true })
  })

  it('refuses bad input with the field at fault, and stores nothing', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ customerId: 'c-bad', period: 'DAY', limit: '0' }, 'input.limit'],
      [{ customerId: 'c-bad', period: 'DAY', limit: '-1' }, 'input.limit'],
      [{ customerId: 'c-bad', period: 'DAY', limit: '0.0000000000000000001' }, 'input.limit'],
      [{ customerId: 'c-bad', period: 'DAY', limit: '10', thresholds: [0] }, 'input.thresholds[0]'],
      [{ customerId: 'c-bad', period: 'DAY', limit: '10', thresholds: [50, 50] }, 'input.thresholds[1]'],
      [{ customerId: 'c-bad', period: 'DAY', limit: '10', timeZone: 'Mars/Olympus' }, 'input.timeZone'],
      [{ customerId: '', period: 'DAY', limit: '10' }, 'input.customerId'],
    ]
    for (const [input, field] of bad) {
      const r = await t.gql(SET, { i: input })
      expect(r.errors?.[0]?.extensions, JSON.stringify(input)).toMatchObject({ code: 'BAD_USER_INPUT', field })
    }
    expect((await t.gql(BUDGETS, { c: 'c-bad' })).data!.budgets).toEqual([])
  })

  it('counts what the customer already spent this period (from the ledger), and nothing from earlier periods', async () => {
    await record(costing('c-seed', 0.004, { timestamp: '2026-11-20T00:10:00Z' }))
    await record(costing('c-seed', 0.001, { timestamp: '2026-11-20T09:59:59.5Z' }))
    await record(costing('c-seed', 0.5, { timestamp: '2026-11-19T23:59:59Z' }))
    const b = await setBudget({ customerId: 'c-seed', period: 'DAY', limit: '0.01' })
    expect(b).toMatchObject({ spent: '0.005', remaining: '0.005', forecast: '0.01' })
    const alerts = (await t.gql(ALERTS, { c: 'c-seed' })).data!.budgetAlerts
    expect(alerts.map((a: any) => [a.kind, a.threshold, a.spent])).toEqual([['THRESHOLD', 50, '0.005']])
  })
})

describe('spend, thresholds and alerts', () => {
  it('keeps spent exact on ingest; each event counts in the period of its own timestamp', async () => {
    await setBudget({ customerId: 'c-spend', period: 'DAY', limit: '1' })
    await record(event('c-spend', 1000, { outputTokens: 100 }))
    await record(event('c-spend', 1000, { outputTokens: 100 }))
    // Late event of yesterday: not today's spend.
    await record(event('c-spend', 1000, { timestamp: '2026-11-19T22:00:00Z' }))
    // Unpriced usage has no amount.
    await record(event('c-spend', 1000, { model: 'no-such-model-xyz' }))
    const [b] = (await t.gql(BUDGETS, { c: 'c-spend' })).data!.budgets
    expect(b).toMatchObject({
      spent: '0.007',
      remaining: '0.993',
      forecast: '0.014',
      periodStart: '2026-11-20T00:00:00.000Z',
    })
    const weekly = await setBudget({ customerId: 'c-spend', period: 'WEEK', limit: '1' })
    expect(weekly.spent).toBe('0.0095')
  })

  it('raises each threshold once, also when one event crosses several, and publishes after commit', async () => {
    const budget = await setBudget({ customerId: 'c-alerts', period: 'MONTH', limit: '0.01' })
    const before = published.length
    await record(costing('c-alerts', 0.004))
    expect((await t.gql(ALERTS, { c: 'c-alerts' })).data!.budgetAlerts).toEqual([])
    // 0.004 → 0.0085 crosses 50 % and 80 % at once.
    const crossing = costing('c-alerts', 0.0045)
    await record(crossing)
    // Replays change nothing.
    const replay = await t.gql(RECORD, { e: crossing })
    expect(replay.data!.recordUsage.status).toBe('DUPLICATE')
    await record(costing('c-alerts', 0.0015))
    await record(costing('c-alerts', 0.002))
    const alerts = (await t.gql(ALERTS, { c: 'c-alerts' })).data!.budgetAlerts
    expect(alerts.filter((a: any) => a.kind === 'THRESHOLD').map((a: any) => [a.threshold, a.spent, a.limit])).toEqual(
      [
        [100, '0.01', '0.01'],
        [80, '0.0085', '0.01'],
        [50, '0.0085', '0.01'],
      ].sort((a, b) => (b[0] as number) - (a[0] as number)),
    )
    expect(
      alerts.every(
        (a: any) =>
          a.budgetId === budget.id && a.periodStart === '2026-11-01T00:00:00.000Z' && a.customerId === 'c-alerts',
      ),
    ).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const mine = published.slice(before).filter((a) => a.customerId === 'c-alerts')
    expect(mine.map((a) => `${a.kind}:${a.threshold}`).sort()).toEqual(
      alerts.map((a: any) => `${a.kind}:${a.threshold}`).sort(),
    )
    expect(mine.every((a) => a.tenantId === t.tenant.id)).toBe(true)
    const [b] = (await t.gql(BUDGETS, { c: 'c-alerts' })).data!.budgets.filter((x: any) => x.id === budget.id)
    expect(b).toMatchObject({ spent: '0.012', remaining: '0' })
  })

  it('thresholds [50, 80, 100] crossed at 60 %: exactly one alert, THRESHOLD 50, although the projection passes the limit', async () => {
    const before = published.length
    // Noon: half the day is gone, so 60 % spent projects 120 % of the limit. Forecast alerts are opt-in.
    const budget = await setBudget({ customerId: 'c-sixty', period: 'DAY', limit: '0.01', thresholds: [50, 80, 100] })
    expect(budget.forecastAlerts).toBe(false)
    await record(costing('c-sixty', 0.006))
    const [b] = (await t.gql(BUDGETS, { c: 'c-sixty' })).data!.budgets
    expect(b).toMatchObject({ spent: '0.006', forecast: '0.012' })
    expect(
      (await t.gql(ALERTS, { c: 'c-sixty' })).data!.budgetAlerts.map((a: any) => [a.kind, a.threshold, a.forecast]),
    ).toEqual([['THRESHOLD', 50, null]])
    // Alerts are delivered in order: once the 80 % one arrives, anything the first event raised has too.
    await record(costing('c-sixty', 0.0025))
    await vi.waitFor(() =>
      expect(published.slice(before).some((a) => a.customerId === 'c-sixty' && a.threshold === 80)).toBe(true),
    )
    expect(
      published
        .slice(before)
        .filter((a) => a.customerId === 'c-sixty')
        .map((a) => [a.kind, a.threshold]),
    ).toEqual([
      ['THRESHOLD', 50],
      ['THRESHOLD', 80],
    ])
  })

  it('BudgetAlert.kind is an enum', async () => {
    const r = await t.gql(
      `{ __type(name: "BudgetAlert") { fields { name type { kind ofType { kind name enumValues { name } } } } } }`,
    )
    const kind = r.data!.__type.fields.find((f: any) => f.name === 'kind')
    expect(kind.type).toMatchObject({ kind: 'NON_NULL', ofType: { kind: 'ENUM', name: 'BudgetAlertKind' } })
    expect(kind.type.ofType.enumValues.map((v: any) => v.name).sort()).toEqual(['FORECAST', 'THRESHOLD'])
  })

  it('a forecast alert fires once per period, when the projection first exceeds the limit (budgets that opt in)', async () => {
    const b = await setBudget({
      customerId: 'c-forecast',
      period: 'DAY',
      limit: '0.01',
      thresholds: [100],
      forecastAlerts: true,
    })
    expect(b.forecastAlerts).toBe(true)
    // Left out on an update, the choice stays.
    expect((await setBudget({ customerId: 'c-forecast', period: 'DAY', limit: '0.01' })).forecastAlerts).toBe(true)
    await record(costing('c-forecast', 0.004)) // forecast 0.008
    expect((await t.gql(ALERTS, { c: 'c-forecast' })).data!.budgetAlerts).toEqual([])
    await record(costing('c-forecast', 0.0015)) // spent 0.0055, forecast 0.011 > 0.01
    await record(costing('c-forecast', 0.001)) // still above: no second one
    const alerts = (await t.gql(ALERTS, { c: 'c-forecast' })).data!.budgetAlerts
    expect(alerts.map((a: any) => [a.kind, a.threshold, a.spent, a.forecast])).toEqual([
      ['FORECAST', 100, '0.0055', '0.011'],
    ])
  })

  it('many concurrent events crossing the same thresholds alert exactly once each', async () => {
    await setBudget({ customerId: 'c-race', period: 'DAY', limit: '0.01', thresholds: [10, 50, 80, 100] })
    const results = await Promise.all(Array.from({ length: 30 }, () => t.gql(RECORD, { e: costing('c-race', 0.001) })))
    expect(results.every((r) => r.data?.recordUsage.status === 'RECORDED')).toBe(true)
    const alerts = (await t.gql(ALERTS, { c: 'c-race' })).data!.budgetAlerts.filter((a: any) => a.kind === 'THRESHOLD')
    expect(alerts.map((a: any) => a.threshold).sort((a: number, b: number) => a - b)).toEqual([10, 50, 80, 100])
    const [b] = (await t.gql(BUDGETS, { c: 'c-race' })).data!.budgets
    expect(b.spent).toBe('0.03')
  })

  it.skipIf(!process.env.DATABASE_URL)(
    'two API processes on one database racing over the same thresholds still alert once each',
    async () => {
      // A second app with its own connection pool: what another API process is to the database.
      const db = createDatabase({ databaseUrl: t.database.url!, poolSize: 10 })
      const config = defaultConfig({ LOG_LEVEL: 'silent' })
      const second = createApp({ db, clock, config, logger: createLogger('silent') })
      try {
        await setBudget({ customerId: 'c-procs', period: 'DAY', limit: '0.02', thresholds: [25, 50, 75, 100] })
        const via = (app: typeof second, e: Record<string, unknown>) =>
          app.yoga.fetch('http://burnrate.test/graphql', {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${t.tenant.apiKey}` },
            body: JSON.stringify({ query: RECORD, variables: { e } }),
          })
        const responses = await Promise.all(
          Array.from({ length: 40 }, (_, i) => via(i % 2 ? second : t.app, costing('c-procs', 0.001))),
        )
        expect(responses.every((r) => r.status === 200)).toBe(true)
        const alerts = (await t.gql(ALERTS, { c: 'c-procs' })).data!.budgetAlerts.filter(
          (a: any) => a.kind === 'THRESHOLD',
        )
        expect(alerts.map((a: any) => a.threshold).sort((a: number, b: number) => a - b)).toEqual([25, 50, 75, 100])
        expect((await t.gql(BUDGETS, { c: 'c-procs' })).data!.budgets[0].spent).toBe('0.04')
      } finally {
        await db.destroy()
      }
    },
  )

  it('uses the tenant time zone for periods', async () => {
    const r = await t.gql(
      `mutation { updateTenantSettings(input: { budgetTimeZone: "Asia/Tokyo" }) { budgetTimeZone } }`,
    )
    expect(r.data!.updateTenantSettings.budgetTimeZone).toBe('Asia/Tokyo')
    // 2026-11-20T12:00Z is 21:00 in Tokyo; the Tokyo day began at 2026-11-19T15:00Z.
    await record(costing('c-tokyo', 0.002, { timestamp: '2026-11-19T16:00:00Z' }))
    await record(costing('c-tokyo', 0.001, { timestamp: '2026-11-19T14:59:59Z' }))
    const b = await setBudget({ customerId: 'c-tokyo', period: 'DAY', limit: '1' })
    expect(b).toMatchObject({
      timeZone: 'Asia/Tokyo',
      periodStart: '2026-11-19T15:00:00.000Z',
      periodEnd: '2026-11-20T15:00:00.000Z',
      spent: '0.002',
    })
    await t.gql(`mutation { updateTenantSettings(input: { budgetTimeZone: "UTC" }) { budgetTimeZone } }`)
    const bad = await t.gql(
      `mutation { updateTenantSettings(input: { budgetTimeZone: "Nowhere/City" }) { budgetTimeZone } }`,
    )
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.budgetTimeZone' })
  })

  it('a late event counts toward the period of its timestamp, and alerts there', async () => {
    const week = await setBudget({ customerId: 'c-late', period: 'WEEK', limit: '0.01' })
    const day = await setBudget({ customerId: 'c-late', period: 'DAY', limit: '0.01' })
    clock.set('2026-11-21T09:00:00Z')
    try {
      // Arrives on the 21st, happened on the 20th (same ISO week, previous day).
      await record(costing('c-late', 0.006, { timestamp: '2026-11-20T23:00:00Z' }))
      await record(costing('c-late', 0.001, { timestamp: '2026-11-21T08:00:00Z' }))
      const budgets = (await t.gql(BUDGETS, { c: 'c-late' })).data!.budgets
      expect(budgets.find((b: any) => b.id === week.id)).toMatchObject({
        spent: '0.007',
        periodStart: '2026-11-16T00:00:00.000Z',
      })
      expect(budgets.find((b: any) => b.id === day.id)).toMatchObject({
        spent: '0.001',
        periodStart: '2026-11-21T00:00:00.000Z',
      })
      const alerts = (await t.gql(ALERTS, { c: 'c-late' })).data!.budgetAlerts
      // Both in the event's periods (the 20th, and the week of the 16th), not in today's.
      expect(
        alerts
          .map((a: any) => [a.budgetId === day.id ? 'DAY' : 'WEEK', a.kind, a.threshold, a.periodStart, a.spent])
          .sort(),
      ).toEqual([
        ['DAY', 'THRESHOLD', 50, '2026-11-20T00:00:00.000Z', '0.006'],
        ['WEEK', 'THRESHOLD', 50, '2026-11-16T00:00:00.000Z', '0.006'],
      ])
    } finally {
      clock.set(NOW)
    }
  })

  it('a new period starts from zero', async () => {
    await setBudget({ customerId: 'c-period', period: 'DAY', limit: '1' })
    await record(costing('c-period', 0.25))
    clock.set('2026-11-21T06:00:00Z')
    try {
      const [b] = (await t.gql(BUDGETS, { c: 'c-period' })).data!.budgets
      expect(b).toMatchObject({ spent: '0', remaining: '1', periodStart: '2026-11-21T00:00:00.000Z' })
    } finally {
      clock.set(NOW)
    }
  })
})

describe('hard limits and reservations', () => {
  it('checkBudget denies what would pass a hard limit', async () => {
    expect((await t.gql(CHECK, { c: 'c-nobudget', e: '1000' })).data!.checkBudget).toEqual({
      allowed: true,
      remaining: null,
      budget: null,
    })
    await setBudget({ customerId: 'c-hard', period: 'DAY', limit: '0.01', hardLimit: true })
    await record(costing('c-hard', 0.006))
    expect((await t.gql(CHECK, { c: 'c-hard', e: '0.004' })).data!.checkBudget).toMatchObject({
      allowed: true,
      remaining: '0.004',
    })
    expect((await t.gql(CHECK, { c: 'c-hard', e: '0.0040001' })).data!.checkBudget).toMatchObject({
      allowed: false,
      remaining: '0.004',
    })
    await record(costing('c-hard', 0.004))
    expect((await t.gql(CHECK, { c: 'c-hard' })).data!.checkBudget).toMatchObject({ allowed: false, remaining: '0' })
    // A soft budget informs but never denies.
    await setBudget({ customerId: 'c-soft', period: 'DAY', limit: '0.001' })
    await record(costing('c-soft', 0.002))
    expect((await t.gql(CHECK, { c: 'c-soft', e: '5' })).data!.checkBudget).toMatchObject({
      allowed: true,
      remaining: '0',
    })
    const bad = await t.gql(CHECK, { c: 'c-hard', e: '-1' })
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'estimatedAmount' })
  })

  it('50 concurrent reservations against a budget that fits exactly 10 grant exactly 10', async () => {
    await setBudget({ customerId: 'c-reserve', period: 'DAY', limit: '1', hardLimit: true })
    const results = await Promise.all(Array.from({ length: 50 }, () => t.gql(RESERVE, { c: 'c-reserve', a: '0.1' })))
    expect(results.every((r) => r.errors === undefined)).toBe(true)
    const granted = results.filter((r) => r.data!.reserveBudget.granted)
    expect(granted).toHaveLength(10)
    expect(
      results.filter((r) => !r.data!.reserveBudget.granted).every((r) => r.data!.reserveBudget.reservation === null),
    ).toBe(true)
    const [b] = (await t.gql(BUDGETS, { c: 'c-reserve' })).data!.budgets
    expect(b).toMatchObject({ spent: '0', reserved: '1', remaining: '1' })
    expect((await t.gql(CHECK, { c: 'c-reserve', e: '0.000001' })).data!.checkBudget.allowed).toBe(false)
  })

  it('reservations arriving together are decided in arrival order, each seeing those granted before it', async () => {
    await setBudget({ customerId: 'c-order', period: 'DAY', limit: '1', hardLimit: true })
    const tenant = { id: t.tenant.id } as Tenant
    const budgets = t.app.services.budgets
    // One event-loop turn: one batch, one transaction (shared/serial-batches.ts).
    const results = await Promise.all(
      ['0.6', '0.5', '0.3', '0.2', '0.1'].map((amount) =>
        budgets.reserve(tenant, { customerId: 'c-order', amount, ttlSeconds: 60 }),
      ),
    )
    expect(results.map((r) => [r.granted, r.check.remaining, r.check.budget?.reserved])).toEqual([
      [true, '0.4', '0.6'],
      [false, '0.4', '0.6'],
      [true, '0.1', '0.9'],
      [false, '0.1', '0.9'],
      [true, '0', '1'],
    ])
    expect(results.map((r) => r.reservation?.amount ?? null)).toEqual(['0.6', null, '0.3', null, '0.1'])
    expect(new Set(results.flatMap((r) => (r.reservation ? [r.reservation.id] : []))).size).toBe(3)
    const [b] = (await t.gql(BUDGETS, { c: 'c-order' })).data!.budgets
    expect(b).toMatchObject({ spent: '0', reserved: '1' })
    // A bad request is refused on its own; the others of its turn are decided as usual.
    const mixed = await Promise.allSettled([
      budgets.reserve(tenant, { customerId: 'c-order-2', amount: '0.1' }),
      budgets.reserve(tenant, { customerId: 'c-order-2', amount: '-1' }),
    ])
    expect(mixed[0]).toMatchObject({ status: 'fulfilled', value: { granted: true } })
    expect(mixed[1]).toMatchObject({ status: 'rejected', reason: { code: 'BAD_USER_INPUT', field: 'amount' } })
  })

  it('an event settling a reservation between the two reads of a budget view is counted, never lost', async () => {
    await setBudget({ customerId: 'c-between', period: 'DAY', limit: '1', hardLimit: true })
    const held = (await t.gql(RESERVE, { c: 'c-between', a: '0.6' })).data!.reserveBudget
    expect(held.granted).toBe(true)
    const budgets = await budgetsOfCustomers(t.database.db, t.tenant.id, ['c-between'])
    // After the view's first statement, the event that settles the reservation commits (0.25 moves
    // from reserved to spent); the second statement sees it.
    let reads = 0
    const between = t.database.db.withPlugin({
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (++reads === 1) {
          const r = await record(costing('c-between', 0.25, { reservationId: held.reservation.id }))
          expect(r.status).toBe('RECORDED')
        }
        return args.result
      },
    })
    const [v] = await view(between, budgets, new Date(NOW))
    expect(reads).toBe(2)
    // Read the other way round (spent, then reserved) the 0.25 would be in neither: 0.
    expect(new Decimal(v!.spent).plus(v!.reserved).greaterThanOrEqualTo('0.25')).toBe(true)
    const [after] = (await t.gql(BUDGETS, { c: 'c-between' })).data!.budgets
    expect(after).toMatchObject({ spent: '0.25', reserved: '0' })
  })

  it('recording the event settles its reservation (the actual amount replaces the estimate); unused ones expire', async () => {
    await setBudget({ customerId: 'c-settle', period: 'DAY', limit: '1', hardLimit: true })
    const first = (await t.gql(RESERVE, { c: 'c-settle', a: '0.6', ttl: 60 })).data!.reserveBudget
    expect(first).toMatchObject({
      granted: true,
      remaining: '0.4',
      reservation: { amount: '0.6', expiresAt: '2026-11-20T12:01:00.000Z' },
    })
    expect((await t.gql(RESERVE, { c: 'c-settle', a: '0.5' })).data!.reserveBudget).toMatchObject({
      granted: false,
      remaining: '0.4',
      reservation: null,
    })

    const settled = await record(costing('c-settle', 0.25, { reservationId: first.reservation.id }))
    expect(settled.status).toBe('RECORDED')
    let [b] = (await t.gql(BUDGETS, { c: 'c-settle' })).data!.budgets
    expect(b).toMatchObject({ spent: '0.25', reserved: '0' })

    // A reservation settles once; another event cannot reuse it, the same event may be replayed.
    const reuse = await t.gql(RECORD, { e: costing('c-settle', 0.01, { reservationId: first.reservation.id }) })
    expect(reuse.data!.recordUsage).toMatchObject({
      status: 'REJECTED',
      error: { code: 'INVALID_INPUT', field: 'reservationId' },
    })

    const second = (await t.gql(RESERVE, { c: 'c-settle', a: '0.7', ttl: 30 })).data!.reserveBudget
    expect(second).toMatchObject({ granted: true, remaining: '0.05' })
    clock.advance(30_000)
    try {
      ;[b] = (await t.gql(BUDGETS, { c: 'c-settle' })).data!.budgets
      expect(b).toMatchObject({ spent: '0.25', reserved: '0' })
      expect((await t.gql(CHECK, { c: 'c-settle', e: '0.75' })).data!.checkBudget.allowed).toBe(true)
      // Usage is never lost: an event naming an expired reservation is still recorded.
      expect((await record(costing('c-settle', 0.1, { reservationId: second.reservation.id }))).status).toBe('RECORDED')
    } finally {
      clock.set(NOW)
    }
  })

  it('one batch settles several reservations at once', async () => {
    await setBudget({ customerId: 'c-batch', period: 'DAY', limit: '1', hardLimit: true })
    const ids: string[] = []
    for (let i = 0; i < 3; i++)
      ids.push((await t.gql(RESERVE, { c: 'c-batch', a: '0.3' })).data!.reserveBudget.reservation.id)
    expect((await t.gql(RESERVE, { c: 'c-batch', a: '0.2' })).data!.reserveBudget.granted).toBe(false)
    const batch = await t.gql(BATCH, { e: ids.map((id) => costing('c-batch', 0.05, { reservationId: id })) })
    expect(batch.data!.recordUsageBatch.recorded).toBe(3)
    const [b] = (await t.gql(BUDGETS, { c: 'c-batch' })).data!.budgets
    expect(b).toMatchObject({ spent: '0.15', reserved: '0', remaining: '0.85' })
    const rows = await t.database.db
      .selectFrom('budget_reservations')
      .select(['id', 'settled_amount', 'settled_event_id'])
      .where('id', 'in', ids)
      .execute()
    expect(rows.map((r) => r.settled_amount)).toEqual(['0.05', '0.05', '0.05'])
    expect(rows.every((r) => r.settled_event_id?.startsWith('ev-'))).toBe(true)
  })

  it('reservation ids are validated, and a released reservation frees its amount', async () => {
    await setBudget({ customerId: 'c-release', period: 'DAY', limit: '1', hardLimit: true })
    const r = (await t.gql(RESERVE, { c: 'c-release', a: '0.9' })).data!.reserveBudget
    const released = await t.gql(
      `mutation ($id: String!) { releaseBudgetReservation(id: $id) { id settledAt settledEventId } }`,
      { id: r.reservation.id },
    )
    expect(released.data!.releaseBudgetReservation).toEqual({
      id: r.reservation.id,
      settledAt: '2026-11-20T12:00:00.000Z',
      settledEventId: null,
    })
    expect((await t.gql(CHECK, { c: 'c-release', e: '1' })).data!.checkBudget.allowed).toBe(true)

    const batch = await t.gql(BATCH, {
      e: [
        costing('c-release', 0.01, { reservationId: 'not-an-id' }),
        costing('c-release', 0.01, { reservationId: 'rsv_unknown' }),
        costing('c-other', 0.01, { reservationId: r.reservation.id }),
        costing('c-release', 0.01, { reservationId: r.reservation.id }),
        costing('c-release', 0.01),
      ],
    })
    expect(batch.data!.recordUsageBatch.recorded).toBe(1)
    expect(batch.data!.recordUsageBatch.results.map((x: any) => [x.status, x.error?.field ?? null])).toEqual([
      ['REJECTED', 'reservationId'],
      ['REJECTED', 'reservationId'],
      ['REJECTED', 'reservationId'],
      ['REJECTED', 'reservationId'],
      ['RECORDED', null],
    ])
    for (const bad of [
      { c: 'c-release', a: '0' },
      { c: 'c-release', a: '0.1', ttl: 0 },
      { c: 'c-release', a: '0.1', ttl: 3601 },
    ]) {
      const res = await t.gql(RESERVE, bad)
      expect(res.errors![0]!.extensions!.code, JSON.stringify(bad)).toBe('BAD_USER_INPUT')
    }
  })
})

describe('budgets and widget sessions', () => {
  it('a widget reads its own budgets, alerts and checks, and nothing else', async () => {
    const session = await t.gql(`mutation { createWidgetSession(customerId: "c-alerts") { token } }`)
    const token = session.data!.createWidgetSession.token
    const own = await t.gql(
      `{ budgets(customerId: "c-alerts") { spent } budgetAlerts(customerId: "c-alerts") { threshold } checkBudget(customerId: "c-alerts") { allowed } }`,
      {},
      token,
    )
    expect(own.errors).toBeUndefined()
    expect(own.data!.budgets[0].spent).toBe('0.012')
    expect(own.data!.budgetAlerts.length).toBeGreaterThan(0)
    for (const query of [
      `{ budgets(customerId: "c-hard") { spent } }`,
      `{ budgetAlerts(customerId: "c-hard") { threshold } }`,
      `{ checkBudget(customerId: "c-hard") { allowed } }`,
      `mutation { setBudget(input: { customerId: "c-alerts", period: DAY, limit: "1000" }) { id } }`,
      `mutation { reserveBudget(customerId: "c-alerts", amount: "0.1") { granted } }`,
      `mutation { releaseBudgetReservation(id: "rsv_x") { id } }`,
    ]) {
      const r = await t.gql(query, {}, token)
      expect(r.errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN')
    }
  })

  it("another tenant sees none of this tenant's budgets", async () => {
    const other = await t.createTenant('Other')
    expect((await t.gql(BUDGETS, { c: 'c-alerts' }, other.apiKey)).data!.budgets).toEqual([])
    expect((await t.gql(ALERTS, { c: 'c-alerts' }, other.apiKey)).data!.budgetAlerts).toEqual([])
    const r = await t.gql(RESERVE, { c: 'c-reserve', a: '5' }, other.apiKey)
    expect(r.data!.reserveBudget.granted).toBe(true)
  })
})

describe('forecast alerts migration', () => {
  it('existing budgets get forecast alerts off', async () => {
    const db = createDatabase({})
    try {
      const names = Object.keys(migrations).sort()
      const mine = names.indexOf('20261206T0500_budget_forecast_alerts')
      const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
      const { error } = await migrator.migrateTo(names[mine - 1]!)
      expect(error).toBeUndefined()
      await sql`insert into tenants (id, name, api_key_hash, api_key_prefix, signing_secret) values ('t-old', 'Old', 'h', 'p', 's')`.execute(
        db,
      )
      await sql`insert into budgets (id, tenant_id, customer_id, period, time_zone, limit_amount, thresholds, hard_limit, currency, counted_from, created_at, updated_at)
        values ('bud_old', 't-old', 'c', 'DAY', 'UTC', 10, '[50, 80, 100]', false, 'USD', now(), now(), now())`.execute(
        db,
      )
      await migrateToLatest(db)
      const row = await db
        .selectFrom('budgets')
        .select('forecast_alerts')
        .where('id', '=', 'bud_old')
        .executeTakeFirstOrThrow()
      expect(row.forecast_alerts).toBe(false)
    } finally {
      await db.destroy()
    }
  })
})
