import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { startFakeProviders, type FakeProviders } from './fake-providers.ts'
import { createReconTestApp, type ReconTestApp } from './support.ts'

/**
 * Import and storage: admin keys sealed and never returned, provider reports read through their
 * pagination and rate limits, stored append-only and idempotent per bucket, partial days revised.
 */

const HOUR = 3_600_000
const PRICES = {
  'gpt-4o-mini-2024-07-18': { input: '0.00000015', cache_read: '0.000000075', output: '0.0000006' },
  'claude-3-5-haiku-20241022': {
    input: '0.0000008',
    cache_read: '0.00000008',
    cache_write: '0.000001',
    output: '0.000004',
  },
  'openai/gpt-4o': { input: '0.0000025', output: '0.00001' },
}
const IMPORT = `mutation($p: ReportingProvider, $from: DateTime, $to: DateTime) {
  importProviderUsage(provider: $p, from: $from, to: $to) { provider buckets inserted revised unchanged error } }`

describe('provider usage import', () => {
  let fake: FakeProviders
  let t: ReconTestApp
  const clock = fixedClock('2026-11-03T12:30:00Z')

  beforeAll(async () => {
    fake = await startFakeProviders(PRICES, clock.now())
    t = await createReconTestApp(clock, fake.url)
    // Calls every hour of Nov 1 - Nov 3 12:00 (the provider has seen up to "now": a partial day).
    for (let h = 0; h < 24 * 3; h++) {
      const at = new Date(Date.parse('2026-11-01T00:05:00Z') + h * HOUR)
      fake.calls.push({
        provider: 'openai',
        model: 'gpt-4o-mini-2024-07-18',
        at,
        input: 1000 + h,
        cachedInput: 100,
        cacheWrite: 0,
        output: 50,
      })
      fake.calls.push({
        provider: 'anthropic',
        model: 'claude-3-5-haiku-20241022',
        at,
        input: 2000,
        cachedInput: 500,
        cacheWrite: 300,
        output: 70 + h,
      })
    }
  }, 120_000)

  afterAll(async () => {
    await t?.close()
    await fake?.close()
  })

  it('stores admin keys sealed and shows only a hint', async () => {
    const set = await t.gql(
      `mutation($i: ProviderAdminKeyInput!) { setProviderAdminKey(input: $i) { provider hint lastImportAt } }`,
      { i: { provider: 'OPENAI', apiKey: fake.keys.openai } },
    )
    expect(set.data!.setProviderAdminKey).toEqual({ provider: 'OPENAI', hint: '…1234', lastImportAt: null })
    await t.gql(`mutation($i: ProviderAdminKeyInput!) { setProviderAdminKey(input: $i) { hint } }`, {
      i: { provider: 'ANTHROPIC', apiKey: fake.keys.anthropic },
    })
    const stored = await t.database.db.selectFrom('provider_admin_keys').selectAll().execute()
    expect(stored).toHaveLength(2)
    for (const row of stored) {
      expect(row.key_enc).toMatch(/^v1\./)
      expect(row.key_enc).not.toContain(fake.keys.openai)
      expect(row.key_enc).not.toContain(fake.keys.anthropic)
    }
    const listed = await t.gql(`query { providerAdminKeys { provider hint } }`)
    expect(JSON.stringify(listed)).not.toContain(fake.keys.openai)
    expect(listed.data!.providerAdminKeys).toEqual([
      { provider: 'ANTHROPIC', hint: '…5678' },
      { provider: 'OPENAI', hint: '…1234' },
    ])

    const bad = await t.gql(`mutation { setProviderAdminKey(input: { provider: OPENAI, apiKey: "short" }) { hint } }`)
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.apiKey' })
  })

  it('imports once, writes nothing on an identical re-import, and keeps a changed bucket as a revision', async () => {
    fake.rateLimitOnce.set('/v1/organizations/usage_report/messages', '3')
    const range = { from: '2026-11-01T00:00:00Z', to: '2026-11-03T12:30:00Z' }
    const first = await t.gql(IMPORT, range)
    expect(first.errors).toBeUndefined()
    for (const s of first.data!.importProviderUsage) {
      expect(s.error).toBeNull()
      expect(s.inserted).toBe(s.buckets)
      expect(s.buckets).toBeGreaterThan(0)
    }
    expect(t.waits).toContain(3000)
    // 61 hourly buckets at 168 a page: one page; the daily cost report: 3 days, one page.
    const count = async () =>
      Number(
        (
          await t.database.db
            .selectFrom('provider_usage_revisions')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      )
    const stored = await count()

    const again = await t.gql(IMPORT, range)
    for (const s of again.data!.importProviderUsage)
      expect([s.inserted, s.revised, s.unchanged]).toEqual([0, 0, s.buckets])
    expect(await count()).toBe(stored)

    // Later the provider has seen the rest of Nov 3: today's cost buckets grow (new revisions), the
    // new hours are new buckets, and nothing already final changes.
    clock.set('2026-11-03T20:30:00Z')
    fake.now = clock.now()
    const later = await t.gql(IMPORT, { from: range.from, to: '2026-11-03T20:30:00Z' })
    const bySource = later.data!.importProviderUsage as { provider: string; inserted: number; revised: number }[]
    for (const s of bySource) {
      expect(s.inserted).toBeGreaterThan(0)
      expect(s.revised).toBeGreaterThan(0)
    }
    const revised = await t.database.db
      .selectFrom('provider_usage_revisions')
      .select(['provider', 'bucket_start', 'usage_type', 'line', 'revision', 'cost'])
      .where('source', '=', 'cost')
      .where('bucket_start', '=', new Date('2026-11-03T00:00:00Z'))
      .where('provider', '=', 'openai')
      .where('line', '=', 'gpt-4o-mini-2024-07-18, output')
      .orderBy('revision')
      .execute()
    expect(revised.map((r) => r.revision)).toEqual([1, 2])
    // Both revisions kept; the later one is larger (8 more hours of calls).
    expect(Number(revised[1]!.cost)).toBeGreaterThan(Number(revised[0]!.cost))
    // Nov 1's buckets: one revision each.
    const nov1 = await t.database.db
      .selectFrom('provider_usage_revisions')
      .select('revision')
      .where('bucket_start', '<', new Date('2026-11-02T00:00:00Z'))
      .execute()
    expect(nov1.every((r) => r.revision === 1)).toBe(true)

    const keys = await t.gql(`query { providerAdminKeys { provider lastImportAt lastImportError } }`)
    expect(keys.data!.providerAdminKeys[0].lastImportAt).toBe('2026-11-03T20:30:00.000Z')
  })

  it('reconciles the latest revision: metered calls match, unrecorded ones are unmetered', async () => {
    // Record the OpenAI calls of Nov 1 only, with tenant prices equal to the provider's.
    for (const [usageType, unitPrice] of Object.entries(PRICES['gpt-4o-mini-2024-07-18']))
      await t.gql(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`, {
        i: { provider: 'openai', model: 'gpt-4o-mini', usageType, unitPrice, effectiveFrom: '2026-10-01T00:00:00Z' },
      })
    await t.record(
      fake.calls
        .filter((c) => c.provider === 'openai' && c.at < new Date('2026-11-02T00:00:00Z'))
        .map((c, i) => ({
          id: `oa-${i}`,
          customerId: 'c1',
          model: 'gpt-4o-mini',
          provider: 'openai',
          timestamp: c.at,
          inputTokens: c.input,
          cacheReadTokens: c.cachedInput,
          outputTokens: c.output,
        })),
    )
    const r = await t.gql(
      `query { providerReconciliation(from: "2026-11-01T00:00:00Z", to: "2026-11-03T00:00:00Z", provider: OPENAI) { rows { day usageType status providerQuantity ourQuantity providerCost ourCost } } }`,
    )
    expect(r.errors).toBeUndefined()
    const rows = r.data!.providerReconciliation.rows as any[]
    const nov1 = rows.filter((x) => x.day === '2026-11-01T00:00:00.000Z')
    expect(nov1.map((x) => [x.usageType, x.status])).toEqual([
      ['cache_read', 'MATCHED'],
      ['input', 'MATCHED'],
      ['output', 'MATCHED'],
      ['requests', 'MATCHED'],
    ])
    expect(nov1.find((x) => x.usageType === 'requests').ourQuantity).toBe('24')
    const nov2 = rows.filter((x) => x.day === '2026-11-02T00:00:00.000Z')
    expect(nov2.every((x) => x.status === 'UNMETERED')).toBe(true)
  })

  it('counts UNPRICED events as such: quantities agree, the cost is missing', async () => {
    // Anthropic calls of Nov 1 recorded without any price for the model: UNPRICED.
    await t.record(
      fake.calls
        .filter((c) => c.provider === 'anthropic' && c.at < new Date('2026-11-02T00:00:00Z'))
        .map((c, i) => ({
          id: `an-${i}`,
          customerId: 'c1',
          model: 'claude-3-5-haiku-20241022',
          provider: 'anthropic',
          timestamp: c.at,
          inputTokens: c.input,
          cacheReadTokens: c.cachedInput,
          cacheWriteTokens: c.cacheWrite,
          outputTokens: c.output,
        })),
    )
    const r = await t.gql(
      `query { providerReconciliation(from: "2026-11-01T00:00:00Z", to: "2026-11-02T00:00:00Z", provider: ANTHROPIC) { rows { usageType status ourUnpricedEvents quantityDifference ourCost explanation { hours { hour } notes } } } }`,
    )
    expect(r.errors).toBeUndefined()
    const rows = r.data!.providerReconciliation.rows as any[]
    const input = rows.find((x) => x.usageType === 'input')
    expect(input.quantityDifference).toBe('0')
    expect(input.ourUnpricedEvents).toBe(24)
    // No catalog row prices the model here (no public catalog loaded, no tenant price): our cost is
    // nothing, the provider's is not, the quantities agree.
    expect(input.status).toBe('PRICE_MISMATCH')
    expect(input.ourCost).toBe('0')
    expect(input.explanation.notes.join(' ')).toMatch(/24 of Burnrate's events .* are UNPRICED/)
  })

  it('reads OpenRouter generation statistics and the key credit usage', async () => {
    fake.calls.push(
      {
        provider: 'openrouter',
        model: 'openai/gpt-4o',
        at: new Date('2026-11-03T15:10:00Z'),
        input: 1200,
        cachedInput: 0,
        cacheWrite: 0,
        output: 300,
        generationId: 'gen-one',
      },
      {
        provider: 'openrouter',
        model: 'openai/gpt-4o',
        at: new Date('2026-11-03T16:10:00Z'),
        input: 800,
        cachedInput: 0,
        cacheWrite: 0,
        output: 100,
        generationId: 'gen-two',
        isByok: true,
      },
    )
    await t.record([
      {
        id: 'gen-one',
        customerId: 'c1',
        model: 'openai/gpt-4o',
        provider: 'openrouter',
        timestamp: new Date('2026-11-03T15:10:00Z'),
        inputTokens: 1200,
        outputTokens: 300,
      },
      {
        id: 'or-2',
        customerId: 'c1',
        model: 'openai/gpt-4o',
        provider: 'openrouter',
        timestamp: new Date('2026-11-03T16:10:00Z'),
        inputTokens: 800,
        outputTokens: 100,
        metadata: { generationId: 'gen-two' },
      },
    ])
    await t.gql(`mutation($i: ProviderAdminKeyInput!) { setProviderAdminKey(input: $i) { hint } }`, {
      i: { provider: 'OPENROUTER', apiKey: fake.keys.openrouter },
    })
    const r = await t.gql(IMPORT, { p: 'OPENROUTER', from: '2026-11-03T00:00:00Z', to: '2026-11-03T20:30:00Z' })
    expect(r.errors).toBeUndefined()
    expect(r.data!.importProviderUsage[0]).toMatchObject({ provider: 'OPENROUTER', error: null })
    const generations = await t.database.db
      .selectFrom('provider_usage_revisions')
      .select(['line', 'usage_type', 'quantity', 'cost'])
      .where('provider', '=', 'openrouter')
      .orderBy('line')
      .orderBy('usage_type')
      .execute()
    expect(generations).toEqual([
      { line: 'gen-one', usage_type: 'input', quantity: '1200', cost: null },
      { line: 'gen-one', usage_type: 'output', quantity: '300', cost: null },
      { line: 'gen-one', usage_type: 'requests', quantity: '1', cost: null },
      { line: 'gen-one', usage_type: 'total', quantity: null, cost: '0.006' },
      { line: 'gen-two', usage_type: 'input', quantity: '800', cost: null },
      { line: 'gen-two', usage_type: 'output', quantity: '100', cost: null },
      { line: 'gen-two', usage_type: 'requests', quantity: '1', cost: null },
      // BYOK: the upstream inference cost, not OpenRouter's fee.
      { line: 'gen-two', usage_type: 'total', quantity: null, cost: '0.003' },
      { line: 'usage_daily', usage_type: 'credits', quantity: null, cost: '0.009' },
    ])
    // Finished generations are not fetched again.
    const before = fake.requests.filter((q) => q.path === '/api/v1/generation').length
    await t.gql(IMPORT, { p: 'OPENROUTER', from: '2026-11-03T00:00:00Z', to: '2026-11-03T20:30:00Z' })
    expect(fake.requests.filter((q) => q.path === '/api/v1/generation').length).toBe(before)
  })

  it('answers bad input and provider failures with coded errors, never a 500', async () => {
    const backwards = await t.gql(IMPORT, { from: '2026-11-03T00:00:00Z', to: '2026-11-01T00:00:00Z' })
    expect(backwards.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'from' })
    const tooLong = await t.gql(
      `query { providerReconciliation(from: "2026-01-01T00:00:00Z", to: "2026-11-01T00:00:00Z") { rows { day } } }`,
    )
    expect(tooLong.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' })
    const tolerance = await t.gql(`mutation { setReconciliationTolerance(percent: "101") }`)
    expect(tolerance.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tolerancePercent' })

    await t.gql(`mutation { deleteProviderAdminKey(provider: OPENROUTER) }`)
    const missing = await t.gql(IMPORT, { p: 'OPENROUTER' })
    expect(missing.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'provider' })

    // A key the provider refuses: the import reports it, stores nothing, and records the error.
    await t.gql(`mutation { setProviderAdminKey(input: { provider: OPENAI, apiKey: "sk-admin-wrong-0000" }) { hint } }`)
    const refused = await t.gql(IMPORT, { p: 'OPENAI' })
    expect(refused.errors).toBeUndefined()
    expect(refused.data!.importProviderUsage[0].error).toMatch(/HTTP 401: invalid admin key/)
    const keys = await t.gql(`query { providerAdminKeys { provider lastImportError } }`)
    expect(keys.data!.providerAdminKeys.find((k: any) => k.provider === 'OPENAI').lastImportError).toMatch(/401/)

    // No encryption key configured: keys cannot be stored.
    const bare = await createReconTestApp(clock, fake.url, { RECONCILE_ENCRYPTION_KEY: undefined })
    try {
      const off = await bare.gql(
        `mutation { setProviderAdminKey(input: { provider: OPENAI, apiKey: "sk-admin-x-1234" }) { hint } }`,
      )
      expect(off.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT' })
      expect(off.errors![0]!.message).toMatch(/RECONCILE_ENCRYPTION_KEY/)
    } finally {
      await bare.close()
    }
  })

  it('the schedule imports every due key once per interval', async () => {
    await t.gql(`mutation { setProviderAdminKey(input: { provider: OPENAI, apiKey: "${fake.keys.openai}" }) { hint } }`)
    clock.set('2026-11-04T01:00:00Z')
    fake.now = clock.now()
    const before = fake.requests.length
    await t.app.services.reconciliation.runScheduled()
    const made = fake.requests.slice(before).map((q) => q.path)
    expect(made).toContain('/v1/organization/usage/completions')
    expect(made).toContain('/v1/organizations/cost_report')
    // Right away again: nothing is due.
    const after = fake.requests.length
    await t.app.services.reconciliation.runScheduled()
    expect(fake.requests.length).toBe(after)
  })
})
