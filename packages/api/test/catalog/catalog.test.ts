import { applyCatalogSnapshot, resolveGenaiPricesModel, type NormalizedPrice } from '@burnrate/catalog-sync'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listPricesAt, priceHistory, pricesByIds } from '../../src/catalog/repository.ts'
import { formatTimeWindow } from '../../src/catalog/schema.ts'
import { createCatalogService } from '../../src/catalog/service.ts'
import type { CatalogPrice, CatalogService } from '../../src/catalog/types.ts'
import { fixedClock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { createTestApp, type TestApp } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'

const NOW = '2026-11-23T10:00:00Z'
const silent = createLogger('silent')

function byUsageType(prices: CatalogPrice[]): Record<string, CatalogPrice> {
  return Object.fromEntries(prices.map((p) => [p.usageType, p]))
}

/** What another process writing to the catalog looks like: a source this service never synced. */
function rocketPrice(unitPrice: string): NormalizedPrice {
  return {
    provider: 'acme',
    model: 'rocket-1',
    usageType: 'input',
    unit: 'token',
    unitPrice,
    currency: 'USD',
    tiers: null,
    timeWindow: null,
    effectiveFrom: new Date('2026-01-01T00:00:00Z'),
    effectiveTo: null,
  }
}

describe('catalog service', () => {
  let database: TestDatabase
  let catalog: CatalogService

  beforeAll(async () => {
    database = await createTestDatabase()
    catalog = createCatalogService({ db: database.db, clock: fixedClock(NOW), logger: silent })
    const summary = await catalog.syncBundled()
    expect(summary).toMatchObject({ source: 'genai-prices', sourceVersion: '0.1.8', rowsClosed: 0, unchanged: 0 })
    expect(summary.rowsOpened).toBeGreaterThan(3500)
  })
  afterAll(() => database.destroy())

  describe('resolve', () => {
    it('maps a dated model name to its canonical model', () => {
      expect(catalog.resolve('gpt-4o-2024-08-06')).toEqual({ provider: 'openai', model: 'gpt-4o' })
      expect(catalog.resolve('gpt-4o-2024-08-06', 'openai')).toEqual({ provider: 'openai', model: 'gpt-4o' })
    })

    it('infers the provider when none is given', () => {
      expect(catalog.resolve('claude-3-5-sonnet-latest')).toEqual({ provider: 'anthropic', model: 'claude-3-5-sonnet' })
      expect(catalog.resolve('claude-3-5-sonnet-latest', null)).toEqual({
        provider: 'anthropic',
        model: 'claude-3-5-sonnet',
      })
    })

    it('accepts gateway names, odd case and spaces, and providers that bill another provider’s models', () => {
      expect(catalog.resolve('openai/gpt-4o')).toEqual({ provider: 'openai', model: 'gpt-4o' })
      expect(catalog.resolve(' GPT-4o ', 'OpenAI')).toEqual({ provider: 'openai', model: 'gpt-4o' })
      expect(catalog.resolve('gpt-4o', 'azure')).toEqual({ provider: 'openai', model: 'gpt-4o' })
      expect(catalog.resolve('anthropic/claude-3.5-sonnet', 'openrouter')).toEqual({
        provider: 'openrouter',
        model: 'anthropic/claude-3.5-sonnet',
      })
    })

    it('returns null for an unknown model or provider, and for a model without catalog rows', () => {
      expect(catalog.resolve('mystery-model-x')).toBeNull()
      expect(catalog.resolve('mystery-model-x', 'acme-ai')).toBeNull()
      expect(catalog.resolve('gpt-4o', 'no-such-provider')).toBeNull()
      // genai-prices knows it but lists no price for it, so nothing in the catalog can price it.
      expect(resolveGenaiPricesModel('qwen-3-coder-480b', 'cerebras')).toEqual({
        provider: 'cerebras',
        model: 'qwen-3-coder-480b',
      })
      expect(catalog.resolve('qwen-3-coder-480b', 'cerebras')).toBeNull()
    })

    it('answers repeated names from its cache with the same result', () => {
      const first = catalog.resolve('gpt-4o-mini-2024-07-18')
      expect(first).toEqual({ provider: 'openai', model: 'gpt-4o-mini' })
      expect(catalog.resolve('gpt-4o-mini-2024-07-18')).toBe(first)
    })
  })

  describe('pricesAt', () => {
    it('returns one row per usage type with exact prices', () => {
      const prices = byUsageType(catalog.pricesAt('openai', 'gpt-4o', new Date(NOW)))
      expect(Object.keys(prices).sort()).toEqual(['cache_read', 'input', 'output', 'storage_searches', 'web_searches'])
      expect(prices.input).toMatchObject({
        unitPrice: '0.0000025',
        unit: 'token',
        currency: 'USD',
        source: 'genai-prices',
        effectiveTo: null,
      })
      expect(prices.cache_read!.unitPrice).toBe('0.00000125')
      expect(prices.output!.unitPrice).toBe('0.00001')
      expect(prices.input!.id).toMatch(/^\d+$/)
    })

    it('picks claude-sonnet-4-6 rows by date: tiered before 2026-03-13, flat from then on', () => {
      const before = byUsageType(
        catalog.pricesAt('anthropic', 'claude-sonnet-4-6', new Date('2026-03-12T23:59:59.999Z')),
      )
      const after = byUsageType(catalog.pricesAt('anthropic', 'claude-sonnet-4-6', new Date('2026-03-13T00:00:00Z')))
      expect(before.input).toMatchObject({
        unitPrice: '0.000003',
        tiers: [{ start: 200000, unitPrice: '0.000006' }],
        effectiveTo: new Date('2026-03-13T00:00:00Z'),
      })
      expect(before.output).toMatchObject({ unitPrice: '0.000015', tiers: [{ start: 200000, unitPrice: '0.0000225' }] })
      expect(after.input).toMatchObject({
        unitPrice: '0.000003',
        tiers: null,
        effectiveFrom: new Date('2026-03-13T00:00:00Z'),
      })
      expect(after.output).toMatchObject({ unitPrice: '0.000015', tiers: null })
      expect(after.input!.id).not.toBe(before.input!.id)
      // Same price on both sides of the date: one row serves both.
      expect(after.web_searches!.id).toBe(before.web_searches!.id)
    })

    it('picks deepseek-chat rows by time of day: 00:30–16:30 UTC is its own price', () => {
      const inWindow = byUsageType(catalog.pricesAt('deepseek', 'deepseek-chat', new Date('2026-11-23T01:00:00Z')))
      const outside = byUsageType(catalog.pricesAt('deepseek', 'deepseek-chat', new Date('2026-11-23T20:00:00Z')))
      expect(inWindow.input).toMatchObject({
        unitPrice: '0.00000027',
        timeWindow: { startSecond: 1800, endSecond: 59400 },
      })
      expect(inWindow.output!.unitPrice).toBe('0.0000011')
      expect(outside.input).toMatchObject({ unitPrice: '0.000000135', timeWindow: null })
      expect(outside.output!.unitPrice).toBe('0.00000055')
      // The window is [start, end).
      expect(
        byUsageType(catalog.pricesAt('deepseek', 'deepseek-chat', new Date('2026-11-23T16:30:00Z'))).input!.unitPrice,
      ).toBe('0.000000135')
      expect(
        byUsageType(catalog.pricesAt('deepseek', 'deepseek-chat', new Date('2026-11-23T00:30:00Z'))).input!.unitPrice,
      ).toBe('0.00000027')
    })

    it('combines a date change with time windows (deepseek-v4-pro)', () => {
      const input = (iso: string) =>
        byUsageType(catalog.pricesAt('deepseek', 'deepseek-v4-pro', new Date(iso))).input!.unitPrice
      expect(input('2026-08-16T12:00:00Z')).toBe('0.000000435')
      expect(input('2026-08-17T12:00:00Z')).toBe('0.00000066')
      expect(input('2026-08-17T02:00:00Z')).toBe('0.00000132')
      expect(input('2026-08-17T07:00:00Z')).toBe('0.00000132')
    })

    it('is empty for a model it does not price', () => {
      expect(catalog.pricesAt('openai', 'no-such-model', new Date(NOW))).toEqual([])
      expect(catalog.pricesAt('no-such-provider', 'gpt-4o', new Date(NOW))).toEqual([])
    })
  })

  describe('ensureFresh', () => {
    it('keeps its snapshot while the catalog version is unchanged', async () => {
      const before = catalog.pricesAt('openai', 'gpt-4o', new Date(NOW))
      await catalog.ensureFresh()
      const after = catalog.pricesAt('openai', 'gpt-4o', new Date(NOW))
      // Same row objects: nothing was reloaded.
      expect(after[0]).toBe(before[0])
    })

    it('reloads after another writer bumps the version', async () => {
      const at = new Date(NOW)
      expect(catalog.pricesAt('acme', 'rocket-1', at)).toEqual([])
      const summary = await applyCatalogSnapshot(
        database.db,
        { source: 'other-writer', sourceVersion: '1', prices: [rocketPrice('0.000001')], models: 1, skipped: [] },
        { observedAt: at },
      )
      expect(summary.rowsOpened).toBe(1)
      // Not visible until the version is checked again.
      expect(catalog.pricesAt('acme', 'rocket-1', at)).toEqual([])
      await catalog.ensureFresh()
      expect(catalog.pricesAt('acme', 'rocket-1', at)).toEqual([
        expect.objectContaining({ unitPrice: '0.000001', source: 'other-writer' }),
      ])
      // Rows of other sources resolve by their own ids.
      expect(catalog.resolve('rocket-1', 'acme')).toEqual({ provider: 'acme', model: 'rocket-1' })
    })

    it('reads through a caller’s transaction, seeing what it wrote', async () => {
      const at = new Date(NOW)
      // A caller that writes catalog rows in its own transaction refreshes through it (PGlite has one connection).
      await database.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('price_catalog')
          .set({ effective_to: at })
          .where('source', '=', 'other-writer')
          .where('effective_to', 'is', null)
          .execute()
        await trx
          .insertInto('price_catalog')
          .values({
            provider: 'acme',
            model: 'rocket-1',
            usage_type: 'input',
            unit: 'token',
            unit_price: '0.000003',
            effective_from: at,
            source: 'other-writer',
            source_version: '3',
            tenant_id: null,
          })
          .execute()
        await trx
          .updateTable('catalog_state')
          .set((eb) => ({ version: eb('version', '+', 1) }))
          .where('id', '=', 1)
          .execute()
        await catalog.ensureFresh(trx)
        expect(catalog.pricesAt('acme', 'rocket-1', at)).toEqual([expect.objectContaining({ unitPrice: '0.000003' })])
      })
    })

    it('shares one reload between concurrent callers and ends at the latest version', async () => {
      const lines: string[] = []
      const other = createCatalogService({
        db: database.db,
        clock: fixedClock(NOW),
        logger: createLogger('debug', (line) => lines.push(line)),
      })
      await Promise.all([other.ensureFresh(), other.ensureFresh(), other.ensureFresh()])
      expect(lines.filter((line) => line.includes('catalog loaded'))).toHaveLength(1)
      await other.ensureFresh()
      expect(lines.filter((line) => line.includes('catalog loaded'))).toHaveLength(1)
      expect(byUsageType(other.pricesAt('openai', 'gpt-4o', new Date(NOW))).input!.unitPrice).toBe('0.0000025')
      expect(other.pricesAt('acme', 'rocket-1', new Date(NOW))).toHaveLength(1)
    })
  })

  it('writes nothing when the bundled data is synced again', async () => {
    const summary = await catalog.syncBundled()
    expect(summary).toMatchObject({ rowsOpened: 0, rowsClosed: 0 })
    expect(summary.unchanged).toBeGreaterThan(3500)
  })
})

describe('catalog repository', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
    await createCatalogService({ db: database.db, clock: fixedClock(NOW), logger: silent }).syncBundled()
  })
  afterAll(() => database.destroy())

  it('lists the rows in force at an instant, ordered, all-day rows before windowed ones', async () => {
    const rows = await listPricesAt(database.db, { provider: 'deepseek', model: 'deepseek-chat', at: new Date(NOW) })
    expect(rows.map((r) => [r.usageType, r.unitPrice, r.timeWindow])).toEqual([
      ['cache_read', '0.000000035', null],
      ['cache_read', '0.00000007', { startSecond: 1800, endSecond: 59400 }],
      ['input', '0.000000135', null],
      ['input', '0.00000027', { startSecond: 1800, endSecond: 59400 }],
      ['output', '0.00000055', null],
      ['output', '0.0000011', { startSecond: 1800, endSecond: 59400 }],
    ])
    const sonnetBefore = await listPricesAt(database.db, {
      provider: 'anthropic',
      model: 'claude-sonnet-4-6',
      at: new Date('2026-01-01T00:00:00Z'),
    })
    expect(sonnetBefore.find((r) => r.usageType === 'input')!.tiers).toEqual([{ start: 200000, unitPrice: '0.000006' }])
    const all = await listPricesAt(database.db, { at: new Date(NOW) })
    expect(all.length).toBeGreaterThan(3000)
    const openai = await listPricesAt(database.db, { provider: 'openai', at: new Date(NOW) })
    expect(new Set(openai.map((r) => r.provider))).toEqual(new Set(['openai']))
    const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
    const sorted = [...openai].sort((a, b) => byteOrder(a.model, b.model) || byteOrder(a.usageType, b.usageType))
    expect(openai.map((r) => [r.model, r.usageType])).toEqual(sorted.map((r) => [r.model, r.usageType]))
  })

  it('returns a model’s whole history oldest first, and rows by id in the order asked', async () => {
    const history = await priceHistory(database.db, 'anthropic', 'claude-sonnet-4-6')
    expect(
      history.map((r) => [r.usageType, r.effectiveFrom.toISOString(), r.effectiveTo?.toISOString() ?? null]),
    ).toEqual([
      ['cache_read', '1970-01-01T00:00:00.000Z', '2026-03-13T00:00:00.000Z'],
      ['cache_write', '1970-01-01T00:00:00.000Z', '2026-03-13T00:00:00.000Z'],
      ['cache_write_1h_tokens', '1970-01-01T00:00:00.000Z', '2026-03-13T00:00:00.000Z'],
      ['input', '1970-01-01T00:00:00.000Z', '2026-03-13T00:00:00.000Z'],
      ['output', '1970-01-01T00:00:00.000Z', '2026-03-13T00:00:00.000Z'],
      ['web_searches', '1970-01-01T00:00:00.000Z', null],
      ['cache_read', '2026-03-13T00:00:00.000Z', null],
      ['cache_write', '2026-03-13T00:00:00.000Z', null],
      ['cache_write_1h_tokens', '2026-03-13T00:00:00.000Z', null],
      ['input', '2026-03-13T00:00:00.000Z', null],
      ['output', '2026-03-13T00:00:00.000Z', null],
    ])
    const [first, second] = [history[3]!, history[9]!]
    expect(await pricesByIds(database.db, [second.id, 'nope', first.id, '999999999', second.id])).toEqual([
      second,
      null,
      first,
      null,
      second,
    ])
    expect(await pricesByIds(database.db, [])).toEqual([])
  })

  it('formats time windows for people', () => {
    expect(formatTimeWindow({ startSecond: 1800, endSecond: 59400 })).toBe('00:30–16:30 UTC')
    expect(formatTimeWindow({ startSecond: 59400, endSecond: 1800 })).toBe('16:30–00:30 UTC')
    expect(formatTimeWindow({ startSecond: 3661, endSecond: 0 })).toBe('01:01:01–00:00 UTC')
  })
})

describe('price queries over GraphQL', () => {
  let t: TestApp
  const FIELDS =
    'id provider model usageType unit unitPrice currency tiers { aboveInputTokens unitPrice } timeWindow effectiveFrom effectiveTo source'

  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(NOW) })
  })
  afterAll(() => t?.close())

  it('lists prices in force now for a model given by an alias', async () => {
    const res = await t.gql(`query($model: String) { providerPrices(model: $model) { ${FIELDS} } }`, {
      model: 'gpt-4o-2024-08-06',
    })
    expect(res.errors).toBeUndefined()
    const input = res.data!.providerPrices.find((p: { usageType: string }) => p.usageType === 'input')
    expect(input).toEqual({
      id: expect.stringMatching(/^\d+$/),
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      unit: 'token',
      unitPrice: '0.0000025',
      currency: 'USD',
      tiers: null,
      timeWindow: null,
      effectiveFrom: '1970-01-01T00:00:00.000Z',
      effectiveTo: null,
      source: 'genai-prices',
    })
    expect(res.data!.providerPrices).toHaveLength(5)
  })

  it('lists prices at a given instant, with tiers and windows', async () => {
    const sonnet = await t.gql(
      `{ providerPrices(provider: "anthropic", model: "claude-sonnet-4-6", at: "2026-01-01T00:00:00Z") { usageType unitPrice tiers { aboveInputTokens unitPrice } } }`,
    )
    expect(sonnet.data!.providerPrices.find((p: { usageType: string }) => p.usageType === 'output')).toEqual({
      usageType: 'output',
      unitPrice: '0.000015',
      tiers: [{ aboveInputTokens: 200000, unitPrice: '0.0000225' }],
    })
    const deepseek = await t.gql(
      `{ providerPrices(provider: "deepseek", model: "deepseek-chat") { usageType unitPrice timeWindow } }`,
    )
    expect(deepseek.data!.providerPrices.filter((p: { usageType: string }) => p.usageType === 'input')).toEqual([
      { usageType: 'input', unitPrice: '0.000000135', timeWindow: null },
      { usageType: 'input', unitPrice: '0.00000027', timeWindow: '00:30–16:30 UTC' },
    ])
  })

  it('returns the history of a model oldest first', async () => {
    const res = await t.gql(
      `{ priceHistory(provider: "anthropic", model: "claude-sonnet-4-6") { usageType effectiveFrom effectiveTo } }`,
    )
    expect(res.errors).toBeUndefined()
    expect(res.data!.priceHistory).toHaveLength(11)
    expect(res.data!.priceHistory[0]).toEqual({
      usageType: 'cache_read',
      effectiveFrom: '1970-01-01T00:00:00.000Z',
      effectiveTo: '2026-03-13T00:00:00.000Z',
    })
  })

  it('answers an unknown model with an empty list and refuses callers without a key', async () => {
    const unknown = await t.gql(`{ providerPrices(model: "mystery-model-x") { id } }`)
    expect(unknown).toEqual({ data: { providerPrices: [] } })
    const anonymous = await t.gql(`{ providerPrices(model: "gpt-4o") { id } }`, undefined, null)
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    const history = await t.gql(`{ priceHistory(provider: "openai", model: "gpt-4o") { id } }`, undefined, null)
    expect(history.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    const tooLong = await t.gql(`query($m: String) { providerPrices(model: $m) { id } }`, { m: 'x'.repeat(300) })
    expect(tooLong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'model' })
  })
})

describe('providerPrices with negotiated prices', () => {
  let t: TestApp
  const OVERRIDE = `mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { id } }`
  const PRICES = `query($p: String, $m: String, $at: DateTime) { providerPrices(provider: $p, model: $m, at: $at) { provider model usageType unitPrice source negotiated effectiveFrom } }`

  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(NOW) })
    const set = (provider: string, model: string, unitPrice: string) =>
      t.gql(OVERRIDE, { i: { provider, model, usageType: 'input', unitPrice, effectiveFrom: '2026-11-01T00:00:00Z' } })
    expect((await set('openai', 'gpt-4o', '0.000002')).errors).toBeUndefined()
    expect((await set('acme', 'private-1', '0.000007')).errors).toBeUndefined()
  })
  afterAll(() => t?.close())

  it("lists the tenant's own override in place of the public price of that usage type, flagged, as pricing uses it", async () => {
    const res = await t.gql(PRICES, { m: 'gpt-4o-2024-08-06' })
    expect(res.errors).toBeUndefined()
    const prices = res.data!.providerPrices as {
      usageType: string
      unitPrice: string
      source: string
      negotiated: boolean
    }[]
    expect(prices).toHaveLength(5)
    expect(prices.filter((p) => p.usageType === 'input')).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        unitPrice: '0.000002',
        source: 'override',
        negotiated: true,
        effectiveFrom: '2026-11-01T00:00:00.000Z',
      },
    ])
    expect(
      prices.filter((p) => p.usageType !== 'input').every((p) => !p.negotiated && p.source === 'genai-prices'),
    ).toBe(true)
    // Still ordered by usage type, like the public listing.
    expect(prices.map((p) => p.usageType)).toEqual([
      'cache_read',
      'input',
      'output',
      'storage_searches',
      'web_searches',
    ])
    // The same rule the pricing path uses.
    const billed = t.app.services.catalog
      .pricesAt('openai', 'gpt-4o', new Date(NOW), t.tenant.id)
      .find((p) => p.usageType === 'input')
    expect(billed).toMatchObject({ unitPrice: '0.000002', source: 'override' })
    // Before the override starts, the public price.
    const before = await t.gql(PRICES, { p: 'openai', m: 'gpt-4o', at: '2026-10-31T23:59:59Z' })
    expect(before.data!.providerPrices.find((p: { usageType: string }) => p.usageType === 'input')).toMatchObject({
      unitPrice: '0.0000025',
      negotiated: false,
    })
    // A model only the tenant prices resolves and lists for it.
    const own = await t.gql(PRICES, { p: 'acme', m: 'private-1' })
    expect(own.data!.providerPrices).toEqual([
      {
        provider: 'acme',
        model: 'private-1',
        usageType: 'input',
        unitPrice: '0.000007',
        source: 'override',
        negotiated: true,
        effectiveFrom: '2026-11-01T00:00:00.000Z',
      },
    ])
  })

  it("never shows one tenant's overrides to another", async () => {
    const other = await t.createTenant('Other')
    const theirs = await t.gql(PRICES, { p: 'openai', m: 'gpt-4o' }, other.apiKey)
    expect(theirs.errors).toBeUndefined()
    expect(theirs.data!.providerPrices.find((p: { usageType: string }) => p.usageType === 'input')).toMatchObject({
      unitPrice: '0.0000025',
      source: 'genai-prices',
      negotiated: false,
    })
    expect(
      theirs.data!.providerPrices.some(
        (p: { negotiated: boolean; source: string }) => p.negotiated || p.source === 'override',
      ),
    ).toBe(false)
    expect((await t.gql(PRICES, { p: 'acme', m: 'private-1' }, other.apiKey)).data!.providerPrices).toEqual([])
    // Unfiltered listing: the other tenant sees no override row at all, the owner sees exactly its two.
    const all = await t.gql(`{ providerPrices { source negotiated } }`, undefined, other.apiKey)
    expect(all.data!.providerPrices.filter((p: { source: string }) => p.source === 'override')).toEqual([])
    const mine = await t.gql(`{ providerPrices { source negotiated } }`)
    expect(mine.data!.providerPrices.filter((p: { negotiated: boolean }) => p.negotiated)).toHaveLength(2)
  })
  it("priceHistory tells the tenant's whole story: public rows and its own negotiated ones, never another tenant's", async () => {
    const HISTORY = `query($p: String!, $m: String!) { priceHistory(provider: $p, model: $m) { usageType unitPrice source negotiated effectiveFrom } }`
    const mine = (await t.gql(HISTORY, { p: 'openai', m: 'gpt-4o' })).data!.priceHistory as {
      source: string
      negotiated: boolean
      unitPrice: string
    }[]
    expect(mine.filter((p) => p.negotiated)).toEqual([
      {
        usageType: 'input',
        unitPrice: '0.000002',
        source: 'override',
        negotiated: true,
        effectiveFrom: '2026-11-01T00:00:00.000Z',
      },
    ])
    expect(mine.some((p) => p.source === 'genai-prices' && !p.negotiated)).toBe(true)
    const other = await t.createTenant('Historian')
    const theirs = (await t.gql(HISTORY, { p: 'openai', m: 'gpt-4o' }, other.apiKey)).data!.priceHistory as {
      negotiated: boolean
    }[]
    expect(theirs.filter((p) => p.negotiated)).toEqual([])
    expect(theirs.length).toBe(mine.length - 1)
  })
})

describe('providerPrices with several public sources', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await createTestApp({ clock: fixedClock(NOW) })
  })
  afterAll(() => t?.close())

  it('lists only the source that prices the model, even when a lower-ranked source has a newer row', async () => {
    // LiteLLM (ranked below genai-prices) knows gpt-4o at another price, from a later start.
    const litellm = (price: string): NormalizedPrice => ({
      ...rocketPrice(price),
      provider: 'openai',
      model: 'gpt-4o',
      effectiveFrom: new Date('2026-11-20T00:00:00Z'),
    })
    await applyCatalogSnapshot(
      t.database.db,
      { source: 'litellm', sourceVersion: 'v1', prices: [litellm('0.000009')], models: 1, skipped: [] },
      { observedAt: new Date(NOW) },
    )
    const res = await t.gql(`{ providerPrices(provider: "openai", model: "gpt-4o") { usageType unitPrice source } }`)
    expect(res.errors).toBeUndefined()
    const input = res.data!.providerPrices.filter((p: { usageType: string }) => p.usageType === 'input')
    expect(input).toEqual([{ usageType: 'input', unitPrice: '0.0000025', source: 'genai-prices' }])
    // What the listing shows is what an event is priced at.
    const recorded = await t.gql(
      `mutation { recordUsage(event: { id: "src-1", customerId: "c", model: "gpt-4o", timestamp: "${NOW}", inputTokens: 1000 }) { event { lines { usageType unitPrice } } } }`,
    )
    expect(recorded.data!.recordUsage.event.lines).toEqual([{ usageType: 'input', unitPrice: '0.0000025' }])
    // No usage type of the model is listed from the lower-ranked source.
    expect(res.data!.providerPrices.every((p: { source: string }) => p.source === 'genai-prices')).toBe(true)
  })
})
