import { applyCatalogSnapshot, type NormalizedPrice } from '@burnrate/catalog-sync'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const RECORD = `mutation($e: UsageEventInput!) { recordUsage(event: $e) { status error { message } event { status cost amount lines { usageType unitPrice cost priceId } } } }`
const SUMMARY = `query($c: String!, $from: DateTime!, $to: DateTime!) { usageSummary(customerId: $c, from: $from, to: $to) { events unpricedEvents cost amount } }`

function rocket(unitPrice: string, usageType = 'input'): NormalizedPrice {
  return {
    provider: 'acme',
    model: 'rocket-1',
    usageType,
    unit: 'token',
    unitPrice,
    currency: 'USD',
    tiers: null,
    timeWindow: null,
    effectiveFrom: new Date('1970-01-01T00:00:00Z'),
    effectiveTo: null,
  }
}
const snapshot = (version: string, prices: NormalizedPrice[]) => ({
  source: 'acme-feed',
  sourceVersion: version,
  prices,
  models: 1,
  skipped: [],
})

describe('re-pricing', () => {
  let t: TestApp
  const clock = fixedClock('2026-11-23T11:00:00Z')

  beforeAll(async () => {
    t = await createTestApp({ clock })
  })
  afterAll(() => t.close())

  it('prices an 11:58 event at the old price even when it arrives after a noon price change', async () => {
    await applyCatalogSnapshot(t.database.db, snapshot('v1', [rocket('0.000001')]), {
      observedAt: new Date('2026-11-23T11:00:00Z'),
    })
    await applyCatalogSnapshot(t.database.db, snapshot('v2', [rocket('0.000002')]), {
      observedAt: new Date('2026-11-23T12:00:00Z'),
    })
    clock.set('2026-11-23T12:05:00Z')
    const late = await t.gql(RECORD, {
      e: {
        id: 'late',
        customerId: 'noon',
        model: 'rocket-1',
        provider: 'acme',
        timestamp: '2026-11-23T11:58:00Z',
        inputTokens: 1000,
      },
    })
    const after = await t.gql(RECORD, {
      e: {
        id: 'after',
        customerId: 'noon',
        model: 'rocket-1',
        provider: 'acme',
        timestamp: '2026-11-23T12:01:00Z',
        inputTokens: 1000,
      },
    })
    expect(late.data!.recordUsage.event.cost).toBe('0.001')
    expect(after.data!.recordUsage.event.cost).toBe('0.002')
  })

  it('prices UNPRICED events automatically when a price for that model and time arrives', async () => {
    clock.set('2026-11-23T12:30:00Z')
    const stored = await t.gql(RECORD, {
      e: {
        id: 'u-1',
        customerId: 'wait',
        model: 'rocket-9',
        provider: 'acme',
        timestamp: '2026-11-23T10:15:00Z',
        inputTokens: 3000,
        outputTokens: 7,
      },
    })
    await t.gql(RECORD, {
      e: {
        id: 'u-2',
        customerId: 'wait',
        model: 'rocket-9',
        provider: 'acme',
        timestamp: '2026-11-23T10:45:00Z',
        inputTokens: 1000,
      },
    })
    expect(stored.data!.recordUsage.event.status).toBe('UNPRICED')
    const range = { c: 'wait', from: '2026-11-23T10:00:00Z', to: '2026-11-23T11:00:00Z' }
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toEqual({
      events: 2,
      unpricedEvents: 2,
      cost: '0',
      amount: '0',
    })

    const prices = ['input', 'output'].map((usageType) => ({
      ...rocket(usageType === 'input' ? '0.0000011' : '0.000003', usageType),
      model: 'rocket-9',
    }))
    const summary = await t.app.services.catalog.syncSource('genai-prices').then(() =>
      // A public source that now knows the model, applied through the service so listeners run.
      t.app.services.catalog.applyOverridesFile(
        `overrides:\n${prices.map((p) => `  - { tenant: ${t.tenant.id}, provider: acme, model: rocket-9, usageType: ${p.usageType}, unitPrice: "${p.unitPrice}", effectiveFrom: "2026-11-01T00:00:00Z" }`).join('\n')}`,
      ),
    )
    expect(summary[0]).toMatchObject({ rowsOpened: 2 })
    const events = await t.gql(
      `{ usageEvents(customerId: "wait", from: "2026-11-23T00:00:00Z", to: "2026-11-24T00:00:00Z") { edges { node { id status cost } } } }`,
    )
    expect(events.data!.usageEvents.edges.map((e: { node: unknown }) => e.node)).toEqual([
      { id: 'u-2', status: 'PRICED', cost: '0.0011' },
      { id: 'u-1', status: 'PRICED', cost: '0.003321' },
    ])
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toEqual({
      events: 2,
      unpricedEvents: 0,
      cost: '0.004421',
      amount: '0.004421',
    })
    // Idempotent: nothing left to price.
    expect(await t.app.services.repricing.priceUnpriced()).toBe(0)
  })

  it('writes corrections for a past price corrected by an override; summaries include them exactly; a re-run is a no-op', async () => {
    clock.set('2026-11-23T12:40:00Z')
    await t.gql(`mutation { setPricingPlan(input: { customerId: "fix", kind: MARGIN, percent: "30" }) { kind } }`)
    clock.set('2026-11-23T12:45:00Z')
    const ids = ['f-1', 'f-2', 'f-3']
    const before: string[] = []
    for (const [i, id] of ids.entries()) {
      const result = await t.gql(RECORD, {
        e: {
          id,
          customerId: 'fix',
          model: 'gpt-4o-2024-08-06',
          timestamp: `2026-11-23T09:${String(10 + i * 20).padStart(2, '0')}:00Z`,
          inputTokens: 1234 + i,
          cacheReadTokens: 200,
          outputTokens: 321,
        },
      })
      before.push(result.data!.recordUsage.event.amount)
    }
    const range = { c: 'fix', from: '2026-11-23T09:00:00Z', to: '2026-11-23T10:00:00Z' }
    const original = (await t.gql(SUMMARY, range)).data!.usageSummary

    const override = await t.gql(
      `mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { provider model usageType unitPrice effectiveFrom source } }`,
      {
        i: {
          provider: 'openai',
          model: 'gpt-4o',
          usageType: 'input',
          unitPrice: '0.0000021',
          effectiveFrom: '2026-11-23T09:00:00Z',
        },
      },
    )
    expect(override.data!.setPriceOverride).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        unitPrice: '0.0000021',
        effectiveFrom: '2026-11-23T09:00:00.000Z',
        source: 'override',
      },
    ])

    const REPRICE = `mutation { repriceUsage(from: "2026-11-23T09:00:00Z", to: "2026-11-23T10:00:00Z", model: "gpt-4o", reason: "negotiated rate from 09:00") { examined corrected costDelta amountDelta } }`
    const first = (await t.gql(REPRICE)).data!.repriceUsage
    // input tokens exclusive of cache reads: (1034 + 1035 + 1036) × (0.0000021 − 0.0000025)
    expect(first).toMatchObject({ examined: 3, corrected: 3, costDelta: '-0.001242' })
    const corrected = (await t.gql(SUMMARY, range)).data!.usageSummary
    expect(corrected.cost).toBe(new Decimal(original.cost).plus(first.costDelta).toFixed())
    expect(corrected.amount).toBe(new Decimal(original.amount).plus(first.amountDelta).toFixed())
    expect(corrected.events).toBe(3)
    // The same window cut mid-hour reads raw events for its edges: they must be billed as corrected too.
    const edges = (await t.gql(SUMMARY, { c: 'fix', from: '2026-11-23T09:05:00Z', to: '2026-11-23T09:55:00Z' })).data!
      .usageSummary
    expect(edges).toEqual(corrected)

    const audit = await t.gql(
      `{ usageCorrections(from: "2026-11-23T09:00:00Z", to: "2026-11-23T10:00:00Z") { eventId oldPriceIds newPriceIds oldCost newCost costDelta amountDelta reason oldLines { usageType unitPrice } newLines { usageType unitPrice } } }`,
    )
    const rows = audit.data!.usageCorrections
    expect(rows.map((r: { eventId: string }) => r.eventId)).toEqual(ids)
    expect(rows[0].reason).toBe('negotiated rate from 09:00')
    expect(rows[0].oldLines[0]).toEqual({ usageType: 'input', unitPrice: '0.0000025' })
    expect(rows[0].newLines[0]).toEqual({ usageType: 'input', unitPrice: '0.0000021' })
    expect(rows[0].oldPriceIds[0]).not.toBe(rows[0].newPriceIds[0])
    expect(rows[0].oldPriceIds.slice(1)).toEqual(rows[0].newPriceIds.slice(1))
    const sum = rows.reduce((acc: Decimal, r: { amountDelta: string }) => acc.plus(r.amountDelta), new Decimal(0))
    expect(sum.toFixed()).toBe(first.amountDelta)

    // Re-running changes nothing; the events themselves were never edited.
    expect((await t.gql(REPRICE)).data!.repriceUsage).toMatchObject({ examined: 3, corrected: 0, costDelta: '0' })
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toEqual(corrected)
    const events = await t.gql(
      `{ usageEvents(customerId: "fix", from: "2026-11-23T00:00:00Z", to: "2026-11-24T00:00:00Z") { edges { node { amount } } } }`,
    )
    expect(events.data!.usageEvents.edges.map((e: { node: { amount: string } }) => e.node.amount).reverse()).toEqual(
      before,
    )

    // New events of this tenant use the negotiated price at once.
    const fresh = await t.gql(RECORD, {
      e: { id: 'f-4', customerId: 'fix', model: 'gpt-4o', timestamp: '2026-11-23T12:44:00Z', inputTokens: 1000 },
    })
    expect(fresh.data!.recordUsage.event.lines[0].unitPrice).toBe('0.0000021')
  })

  it('re-prices after a public source corrects a past price (a sync with an earlier start date)', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const { tmpdir } = await import('node:os')
    const file = join(await mkdtemp(join(tmpdir(), 'burnrate-litellm-')), 'prices.json')
    const feed = (input: number) =>
      JSON.stringify({
        'acme/rocket-x': {
          litellm_provider: 'acme',
          mode: 'chat',
          input_cost_per_token: input,
          output_cost_per_token: 4e-6,
        },
      })
    clock.set('2026-11-23T12:50:00Z')
    await writeFile(file, feed(1e-6))
    // LiteLLM states no dates: a first sync prices from when it observes, here 09:00 (before the event).
    await t.app.services.catalog.syncSource('litellm', {
      location: file,
      correctFrom: new Date('2026-11-23T09:00:00Z'),
    })
    const recorded = await t.gql(RECORD, {
      e: {
        id: 'x-1',
        customerId: 'corr',
        model: 'rocket-x',
        provider: 'acme',
        timestamp: '2026-11-23T10:30:00Z',
        inputTokens: 1000,
      },
    })
    expect(recorded.data!.recordUsage.event.cost).toBe('0.001')
    const range = { c: 'corr', from: '2026-11-23T10:00:00Z', to: '2026-11-23T11:00:00Z' }

    // The feed says the price has been 0.0000008 since 10:00: applied from then, never rewriting the row.
    await writeFile(file, feed(8e-7))
    const summary = await t.app.services.catalog.syncSource('litellm', {
      location: file,
      correctFrom: new Date('2026-11-23T10:00:00Z'),
    })
    expect(summary).toMatchObject({ rowsOpened: 1, rowsClosed: 1, held: 0 })
    const history = await t.gql(
      `{ priceHistory(provider: "acme", model: "rocket-x") { usageType unitPrice effectiveFrom effectiveTo } }`,
    )
    expect(history.data!.priceHistory.filter((p: { usageType: string }) => p.usageType === 'input')).toEqual([
      {
        usageType: 'input',
        unitPrice: '0.000001',
        effectiveFrom: '2026-11-23T09:00:00.000Z',
        effectiveTo: '2026-11-23T10:00:00.000Z',
      },
      { usageType: 'input', unitPrice: '0.0000008', effectiveFrom: '2026-11-23T10:00:00.000Z', effectiveTo: null },
    ])
    const REPRICE = `mutation { repriceUsage(from: "2026-11-23T10:00:00Z", to: "2026-11-23T11:00:00Z", model: "rocket-x", provider: "acme", reason: "litellm correction") { corrected costDelta } }`
    expect((await t.gql(REPRICE)).data!.repriceUsage).toEqual({ corrected: 1, costDelta: '-0.0002' })
    expect((await t.gql(SUMMARY, range)).data!.usageSummary).toMatchObject({ events: 1, cost: '0.0008' })
    expect((await t.gql(REPRICE)).data!.repriceUsage).toEqual({ corrected: 0, costDelta: '0' })
  })

  it("keeps one tenant's negotiated prices invisible to and unused by other tenants", async () => {
    const other = await t.createTenant('Other')
    const priced = await t.gql(
      RECORD,
      { e: { id: 'o-1', customerId: 'x', model: 'gpt-4o', timestamp: '2026-11-23T12:44:00Z', inputTokens: 1000 } },
      other.apiKey,
    )
    expect(priced.data!.recordUsage.event.lines[0].unitPrice).toBe('0.0000025')
    expect((await t.gql(`{ priceOverrides { model } }`, undefined, other.apiKey)).data!.priceOverrides).toEqual([])
    const log = await t.gql(
      `{ priceChangeLog(provider: "openai", model: "gpt-4o") { source negotiated } }`,
      undefined,
      other.apiKey,
    )
    expect(log.data!.priceChangeLog.some((e: { source: string }) => e.source === 'override')).toBe(false)
    expect(
      (
        await t.gql(
          `{ usageCorrections(from: "2026-11-23T00:00:00Z", to: "2026-11-24T00:00:00Z") { eventId } }`,
          undefined,
          other.apiKey,
        )
      ).data!.usageCorrections,
    ).toEqual([])
    const mine = await t.gql(
      `{ priceOverrides(provider: "openai", model: "gpt-4o-2024-08-06") { usageType unitPrice } }`,
    )
    expect(mine.data!.priceOverrides).toEqual([{ usageType: 'input', unitPrice: '0.0000021' }])
  })

  it('refuses bad overrides naming the field', async () => {
    const bad = await t.gql(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
      i: {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'tokens',
        unitPrice: '1',
        effectiveFrom: '2026-11-23T09:00:00Z',
      },
    })
    expect(bad.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', field: 'input.usageType' } })
    const negative = await t.gql(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`, {
      i: {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        unitPrice: '-1',
        effectiveFrom: '2026-11-23T09:00:00Z',
      },
    })
    expect(negative.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    const foreign = await t.gql(`mutation($d: String!) { importPriceOverrides(document: $d) { rowsOpened } }`, {
      d: 'overrides:\n  - { tenant: someone-else, provider: openai, model: gpt-4o, usageType: input, unitPrice: "1", effectiveFrom: "2026-11-01T00:00:00Z" }',
    })
    expect(foreign.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  })
})
