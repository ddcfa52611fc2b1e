import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
import type { ReconciliationAlertEvent } from '../../src/pubsub.ts'
import type { UsageEventInput } from '../../src/usage/validation.ts'
import { callCost, startFakeProviders, type FakeCall, type FakePrices, type FakeProviders } from './fake-providers.ts'
import { seededRandom } from '../../src/shared/random.ts'
import { createReconTestApp, type ReconTestApp } from './support.ts'

/**
 * The done-when scenario: a month (November 2026) of calls to two providers, 3 % of which never
 * reached Burnrate, and one model whose catalog input price was wrong for two days. The
 * reconciliation must find exactly those hours and amounts, and the price mismatch.
 */

const HOUR = 3_600_000
const DAY = 86_400_000
const MONTH_START = Date.parse('2026-11-01T00:00:00Z')
const DAYS = 30

// What the providers charge. Burnrate's catalog (tenant prices) says the same, except gpt-4o
// input on Nov 10 and 11.
const PRICES: FakePrices = {
  'gpt-4o-2024-08-06': { input: '0.0000025', cache_read: '0.00000125', output: '0.00001' },
  'claude-sonnet-4-20250514': {
    input: '0.000003',
    cache_read: '0.0000003',
    cache_write: '0.00000375',
    output: '0.000015',
  },
}
const WRONG_INPUT = '0.0000031'
const WRONG_DAYS = [Date.parse('2026-11-10T00:00:00Z'), Date.parse('2026-11-11T00:00:00Z')]
// How events name the models; the reconciliation reports the catalog's canonical names (set below).
const OUR_MODEL: Record<string, { provider: 'openai' | 'anthropic'; model: string; canonical?: string }> = {
  'gpt-4o-2024-08-06': { provider: 'openai', model: 'gpt-4o' },
  'claude-sonnet-4-20250514': { provider: 'anthropic', model: 'claude-sonnet-4' },
}
const canonical = (providerModel: string) => OUR_MODEL[providerModel]!.canonical!

const ROW_FIELDS = `day provider model providerModels usageType providerQuantity ourQuantity quantityDifference quantityDifferencePercent
  providerCost ourCost costDifference costDifferencePercent ourEvents ourUnpricedEvents status estimatedCost estimatedBillableAmount
  explanation { hours { hour providerQuantity ourQuantity difference unpricedEvents } unpricedEvents priceChanges { usageType kind at unitPrice source } notes }`

describe('reconciling a month with the providers', () => {
  let fake: FakeProviders
  let t: ReconTestApp
  const clock = fixedClock('2026-12-01T00:30:00Z')
  const dropped: FakeCall[] = []
  const alertsSeen: ReconciliationAlertEvent[] = []

  beforeAll(async () => {
    fake = await startFakeProviders(PRICES, clock.now())
    t = await createReconTestApp(clock, fake.url)

    // Burnrate's catalog: tenant prices for both models, wrong for gpt-4o input on Nov 10-11.
    const override = async (provider: string, model: string, usageType: string, unitPrice: string, from: number) => {
      const r = await t.gql(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`, {
        i: { provider, model, usageType, unitPrice, effectiveFrom: new Date(from).toISOString() },
      })
      expect(r.errors).toBeUndefined()
    }
    for (const [providerModel, prices] of Object.entries(PRICES)) {
      const { provider, model } = OUR_MODEL[providerModel]!
      for (const [usageType, price] of Object.entries(prices))
        await override(provider, model, usageType, price, MONTH_START - DAY)
    }
    await override('openai', 'gpt-4o', 'input', WRONG_INPUT, WRONG_DAYS[0]!)
    await override('openai', 'gpt-4o', 'input', PRICES['gpt-4o-2024-08-06']!.input, WRONG_DAYS[1]! + DAY)
    // The default plan: unmetered usage is estimated at it. Exact matching: tolerance 0.
    expect(
      (await t.gql(`mutation { setPricingPlan(input: { kind: MARKUP, percent: "20" }) { kind } }`)).errors,
    ).toBeUndefined()
    expect((await t.gql(`mutation { setReconciliationTolerance(percent: "0") }`)).data).toEqual({
      setReconciliationTolerance: '0',
    })
    for (const m of Object.values(OUR_MODEL))
      m.canonical = t.app.services.catalog.resolve(m.model, m.provider, t.tenant.id)!.model

    // Two calls per model and hour, all month.
    const random = seededRandom(20)
    for (let h = 0; h < DAYS * 24; h++) {
      for (const model of Object.keys(PRICES)) {
        for (let k = 0; k < 2; k++) {
          const input = 200 + Math.floor(random() * 4000)
          const cachedInput = Math.floor(random() * input * 0.5)
          const cacheWrite = model.startsWith('claude') ? Math.floor(random() * (input - cachedInput) * 0.3) : 0
          fake.calls.push({
            provider: OUR_MODEL[model]!.provider,
            model,
            at: new Date(MONTH_START + h * HOUR + (k * 30 + Math.floor(random() * 29)) * 60_000),
            input,
            cachedInput,
            cacheWrite,
            output: 20 + Math.floor(random() * 900),
          })
        }
      }
    }
    // 3 % of the calls never reach Burnrate (none of gpt-4o's on the mispriced days, so those rows
    // are pure price mismatches).
    const candidates = fake.calls.filter(
      (c) => !(c.model.startsWith('gpt') && WRONG_DAYS.includes(Math.floor(c.at.getTime() / DAY) * DAY)),
    )
    const target = Math.round(fake.calls.length * 0.03)
    while (dropped.length < target) {
      const pick = candidates[Math.floor(random() * candidates.length)]!
      if (!dropped.includes(pick)) dropped.push(pick)
    }
    const events: UsageEventInput[] = fake.calls
      .filter((c) => !dropped.includes(c))
      .map((c, i) => ({
        id: `evt-${i}`,
        customerId: `cust-${i % 7}`,
        model: OUR_MODEL[c.model]!.model,
        provider: OUR_MODEL[c.model]!.provider,
        timestamp: c.at,
        inputTokens: c.input,
        cacheReadTokens: c.cachedInput,
        cacheWriteTokens: c.cacheWrite,
        outputTokens: c.output,
      }))
    await t.record(events)

    for (const provider of ['OPENAI', 'ANTHROPIC']) {
      const key = provider === 'OPENAI' ? fake.keys.openai : fake.keys.anthropic
      const r = await t.gql(
        `mutation($i: ProviderAdminKeyInput!) { setProviderAdminKey(input: $i) { provider hint } }`,
        {
          i: { provider, apiKey: key },
        },
      )
      expect(r.data!.setProviderAdminKey.hint).toBe(`…${key.slice(-4)}`)
    }
    await t.app.services.webhooks.createEndpoint(t.tenant, {
      url: 'http://127.0.0.1:9/hooks',
      eventTypes: ['reconciliation.alert'],
    })
    void (async () => {
      for await (const alert of t.app.services.pubsub.subscribe('reconciliationAlert', t.tenant.id))
        alertsSeen.push(alert)
    })()
  }, 240_000)

  afterAll(async () => {
    await t?.close()
    await fake?.close()
  })

  it('imports the month, paging through both providers and waiting out a rate limit', async () => {
    fake.rateLimitOnce.set('/v1/organization/usage/completions', '2')
    const r = await t.gql(
      `mutation { importProviderUsage(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { provider buckets inserted revised unchanged error } }`,
    )
    expect(r.errors).toBeUndefined()
    const summaries = r.data!.importProviderUsage as { provider: string; inserted: number; error: string | null }[]
    expect(summaries.map((s) => [s.provider, s.error])).toEqual([
      ['ANTHROPIC', null],
      ['OPENAI', null],
    ])
    expect(summaries.every((s) => s.inserted > 0)).toBe(true)
    expect(t.waits).toContain(2000)
    // 720 hourly buckets at 168 a page: 5 pages per provider.
    const pages = fake.requests.filter((q) => q.path === '/v1/organization/usage/completions' && q.status === 200)
    expect(pages).toHaveLength(5)
  })

  it('finds exactly the unmetered hours and amounts, and the two mispriced days', async () => {
    const r = await t.gql(
      `query { providerReconciliation(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { currency tolerancePercent rows { ${ROW_FIELDS} } } }`,
    )
    expect(r.errors).toBeUndefined()
    const rows = r.data!.providerReconciliation.rows as any[]
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.filter((row) => row.status === 'OVER_METERED')).toEqual([])

    // Expected from the dropped calls: per (provider, model, hour) the missing input tokens, per
    // (provider, model, day) the missing cost.
    const missingInput = new Map<string, number>()
    const missingCost = new Map<string, Decimal>()
    for (const c of dropped) {
      const { provider } = OUR_MODEL[c.model]!
      const model = canonical(c.model)
      const hourKey = `${provider}|${model}|${new Date(Math.floor(c.at.getTime() / HOUR) * HOUR).toISOString()}`
      missingInput.set(hourKey, (missingInput.get(hourKey) ?? 0) + c.input)
      const dayKey = `${provider}|${model}|${new Date(Math.floor(c.at.getTime() / DAY) * DAY).toISOString()}`
      const cost = Object.values(callCost(PRICES, c)).reduce((s, v) => s.plus(v), new Decimal(0))
      missingCost.set(dayKey, (missingCost.get(dayKey) ?? new Decimal(0)).plus(cost))
    }

    const inputRows = rows.filter((row) => row.usageType === 'input' && row.status === 'UNMETERED')
    const foundHours = new Map<string, number>()
    for (const row of inputRows)
      for (const h of row.explanation.hours)
        foundHours.set(`${row.provider}|${row.model}|${h.hour}`, Number(h.difference))
    expect(new Map([...foundHours].sort())).toEqual(new Map([...missingInput].sort()))

    // Per day, the money: the unmetered rows' cost differences add up to the dropped calls' cost,
    // and the estimate bills it at the default plan (20 % markup).
    const foundCost = new Map<string, Decimal>()
    const foundAmount = new Map<string, Decimal>()
    for (const row of rows.filter((x) => x.status === 'UNMETERED' && x.estimatedCost !== null)) {
      const key = `${row.provider}|${row.model}|${row.day}`
      foundCost.set(key, (foundCost.get(key) ?? new Decimal(0)).plus(row.estimatedCost))
      foundAmount.set(key, (foundAmount.get(key) ?? new Decimal(0)).plus(row.estimatedBillableAmount))
    }
    expect([...foundCost.keys()].sort()).toEqual([...missingCost.keys()].sort())
    for (const [key, cost] of missingCost) {
      expect(foundCost.get(key)!.toFixed(), key).toBe(cost.toFixed())
      expect(foundAmount.get(key)!.toFixed(), key).toBe(cost.times('1.2').toFixed())
    }
    // Every unmetered row says which customers are unknown.
    expect(inputRows[0].explanation.notes.join(' ')).toMatch(/customers made these calls is unknown/)

    // The price mismatch: exactly gpt-4o input on Nov 10 and 11, quantities equal, cost higher by
    // (wrong - right) x uncached input tokens.
    const mismatches = rows.filter((row) => row.status === 'PRICE_MISMATCH')
    const gpt = canonical('gpt-4o-2024-08-06')
    expect(mismatches.map((m) => [m.provider, m.model, m.usageType, m.day])).toEqual([
      ['openai', gpt, 'input', '2026-11-10T00:00:00.000Z'],
      ['openai', gpt, 'input', '2026-11-11T00:00:00.000Z'],
    ])
    expect(mismatches[0].providerModels).toEqual(['gpt-4o-2024-08-06'])
    for (const m of mismatches) {
      const day = Date.parse(m.day)
      const uncached = fake.calls
        .filter((c) => c.model === 'gpt-4o-2024-08-06' && c.at.getTime() >= day && c.at.getTime() < day + DAY)
        .reduce((s, c) => s + c.input - c.cachedInput, 0)
      expect(m.quantityDifference).toBe('0')
      expect(m.costDifference).toBe(
        new Decimal(PRICES['gpt-4o-2024-08-06']!.input).minus(WRONG_INPUT).times(uncached).toFixed(),
      )
      expect(m.ourUnpricedEvents).toBe(0)
    }
    expect(mismatches[0].explanation.priceChanges).toEqual([
      {
        usageType: 'input',
        kind: 'CLOSED',
        at: '2026-11-10T00:00:00.000Z',
        unitPrice: '0.0000025',
        source: 'override (your price)',
      },
      {
        usageType: 'input',
        kind: 'OPENED',
        at: '2026-11-10T00:00:00.000Z',
        unitPrice: WRONG_INPUT,
        source: 'override (your price)',
      },
    ])
    expect(mismatches[1].explanation.priceChanges).toEqual([])
    expect(mismatches[1].explanation.notes.join(' ')).toMatch(/No catalog price changed that day/)

    // Everything else matches.
    const explained = new Set([...inputRows, ...mismatches])
    const others = rows.filter((row) => !explained.has(row) && row.status !== 'MATCHED')
    for (const row of others) {
      expect(row.status).toBe('UNMETERED')
      expect(missingCost.has(`${row.provider}|${row.model}|${row.day}`)).toBe(true)
    }
  })

  it('exports the same table as CSV', async () => {
    const r = await t.gql(
      `query { providerReconciliationCsv(from: "2026-11-10T00:00:00Z", to: "2026-11-11T00:00:00Z", provider: OPENAI, onlyDifferences: true) }`,
    )
    expect(r.errors).toBeUndefined()
    const lines = (r.data!.providerReconciliationCsv as string).trimEnd().split('\r\n')
    expect(lines[0]).toBe(
      'day,provider,model,usage_type,provider_quantity,our_quantity,quantity_difference,quantity_difference_percent,provider_cost,our_cost,cost_difference,cost_difference_percent,currency,our_events,our_unpriced_events,status,estimated_billable_amount,explanation',
    )
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 4).concat(l.split(',')[15]!))).toEqual([
      ['2026-11-10', 'openai', canonical('gpt-4o-2024-08-06'), 'input', 'PRICE_MISMATCH'],
    ])
  })

  it('raises each alert once per provider, day and kind, by subscription and webhook', async () => {
    const days = (kind: string, provider: string) => {
      const set = new Set<string>()
      for (const c of dropped)
        if (OUR_MODEL[c.model]!.provider === provider)
          set.add(new Date(Math.floor(c.at.getTime() / DAY) * DAY).toISOString())
      return kind === 'UNMETERED' ? set : new Set<string>()
    }
    const list = async () =>
      (
        await t.gql(
          `query { reconciliationAlerts(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { id provider day kind models usageTypes costDifference estimatedBillableAmount } }`,
        )
      ).data!.reconciliationAlerts as any[]
    const alerts = await list()
    const unmetered = alerts.filter((a) => a.kind === 'UNMETERED')
    for (const provider of ['openai', 'anthropic'])
      expect(new Set(unmetered.filter((a) => a.provider === provider).map((a) => a.day))).toEqual(
        days('UNMETERED', provider),
      )
    expect(alerts.filter((a) => a.kind === 'PRICE_MISMATCH').map((a) => [a.provider, a.day, a.models])).toEqual([
      ['openai', '2026-11-10T00:00:00.000Z', [canonical('gpt-4o-2024-08-06')]],
      ['openai', '2026-11-11T00:00:00.000Z', [canonical('gpt-4o-2024-08-06')]],
    ])
    expect(alerts.filter((a) => a.kind === 'OVER_METERED')).toEqual([])

    // A second import of the same month: nothing new stored, no alert again.
    const again = await t.gql(
      `mutation { importProviderUsage(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { provider buckets inserted revised unchanged } }`,
    )
    for (const s of again.data!.importProviderUsage) {
      expect(s.inserted).toBe(0)
      expect(s.revised).toBe(0)
      expect(s.unchanged).toBe(s.buckets)
    }
    expect(await list()).toEqual(alerts)

    const webhookEvents = await t.database.db
      .selectFrom('webhook_events')
      .select(['type', 'payload'])
      .where('tenant_id', '=', t.tenant.id)
      .execute()
    expect(webhookEvents.filter((e) => e.type === 'reconciliation.alert')).toHaveLength(alerts.length)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(alertsSeen.map((a) => a.id).sort()).toEqual(alerts.map((a) => a.id).sort())
  })
})
