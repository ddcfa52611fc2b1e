import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCatalogService } from '../../src/catalog/service.ts'
import { createLogger } from '../../src/logger.ts'
import type { PriceChangeEvent } from '../../src/pubsub.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'

const fixture = (name: string) =>
  readFileSync(new URL(`../../../catalog-sync/test/fixtures/${name}`, import.meta.url), 'utf8')
const NOW = '2026-11-23T12:30:00Z'

const RECORD = `mutation($e: UsageEventInput!) { recordUsage(event: $e) { status error { message } event { status cost lines { usageType unitPrice cost priceId } } } }`

describe('catalog sources in the API', () => {
  let t: TestApp
  let server: Server
  let base: string
  const clock = fixedClock(NOW)
  // What each path serves; tests swap bodies to simulate a feed changing.
  const bodies = new Map<string, { status: number; body: string }>()
  const requests = new Map<string, number>()

  beforeAll(async () => {
    t = await createTestApp({ clock })
    server = createServer((req, res) => {
      requests.set(req.url ?? '', (requests.get(req.url ?? '') ?? 0) + 1)
      const answer = bodies.get(req.url ?? '') ?? { status: 404, body: '' }
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    bodies.set('/api/v1/models', { status: 200, body: fixture('openrouter-models.json') })
    const litellm = JSON.parse(fixture('litellm-prices.json')) as Record<string, Record<string, unknown>>
    // LiteLLM disagrees with genai-prices about gpt-4o input: a conflict to report, never to merge.
    litellm['gpt-4o']!.input_cost_per_token = 2.6e-6
    bodies.set('/litellm.json', { status: 200, body: JSON.stringify(litellm) })
  })
  afterAll(async () => {
    server.closeAllConnections()
    server.close()
    await t.close()
  })

  it('syncs OpenRouter: rows for provider openrouter price calls routed through it', async () => {
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/api/v1/models` })
    expect(summary).toMatchObject({ source: 'openrouter', models: 4, held: 0, rowsClosed: 0 })
    expect(summary.rejected).toHaveLength(2)
    const result = await t.gql(RECORD, {
      e: {
        id: 'or-1',
        customerId: 'c1',
        model: 'openai/gpt-4o',
        provider: 'openrouter',
        timestamp: NOW,
        inputTokens: 1000,
        outputTokens: 100,
      },
    })
    const event = result.data!.recordUsage.event
    expect(event.lines.map((l: { unitPrice: string }) => l.unitPrice)).toEqual(['0.0000025', '0.00001'])
    const row = await t.database.db
      .selectFrom('price_catalog')
      .select(['source', 'provider'])
      .where('id', '=', Number(event.lines[0].priceId))
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ source: 'openrouter', provider: 'openrouter' })
  })

  it('a second sync of the same feed is a no-op', async () => {
    const version = await t.database.db.selectFrom('catalog_state').select('version').executeTakeFirstOrThrow()
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/api/v1/models` })
    expect(summary).toMatchObject({ rowsOpened: 0, rowsClosed: 0 })
    expect(await t.database.db.selectFrom('catalog_state').select('version').executeTakeFirstOrThrow()).toEqual(version)
  })

  it('reports sources that disagree and keeps pricing with one source', async () => {
    await t.app.services.catalog.syncSource('litellm', { location: `${base}/litellm.json` })
    const { data } = await t.gql(
      `{ catalogConflicts { provider model usageType usedSource prices { source unitPrice } } }`,
    )
    const gpt4o = data!.catalogConflicts.find(
      (c: { model: string; usageType: string }) => c.model === 'gpt-4o' && c.usageType === 'input',
    )
    expect(gpt4o).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      usedSource: 'genai-prices',
      prices: [
        { source: 'genai-prices', unitPrice: '0.0000025' },
        { source: 'litellm', unitPrice: '0.0000026' },
      ],
    })
    const result = await t.gql(RECORD, {
      e: {
        id: 'oa-1',
        customerId: 'c1',
        model: 'gpt-4o-2024-08-06',
        timestamp: '2026-11-23T12:00:00Z',
        inputTokens: 1000,
      },
    })
    expect(result.data!.recordUsage.event.lines[0].unitPrice).toBe('0.0000025')
  })

  it('leaves the catalog as it was when a source fails, and records the failure with backoff', async () => {
    const before = await t.database.db.selectFrom('catalog_state').select('version').executeTakeFirstOrThrow()
    bodies.set('/broken', { status: 200, body: '{"data": [' })
    await expect(
      t.app.services.catalog.syncSource('openrouter', { location: `${base}/broken`, attempts: 2, retryBaseMs: 1 }),
    ).rejects.toMatchObject({ kind: 'malformed' })
    await expect(
      t.app.services.catalog.syncSource('openrouter', { location: `${base}/missing`, attempts: 1 }),
    ).rejects.toMatchObject({ kind: 'http' })
    expect(await t.database.db.selectFrom('catalog_state').select('version').executeTakeFirstOrThrow()).toEqual(before)

    // The poller: a failing configured source is reported and retried later.
    const config = t.app.services.config
    const saved = { sources: config.CATALOG_SOURCES, url: config.OPENROUTER_MODELS_URL }
    Object.assign(config, { CATALOG_SOURCES: ['openrouter'], OPENROUTER_MODELS_URL: `${base}/missing` })
    try {
      await t.app.services.catalog.poll()
      const { data } = await t.gql(
        `{ catalogSources { source consecutiveFailures lastError nextAttemptAt lastSuccessAt } }`,
      )
      expect(data!.catalogSources).toEqual([
        {
          source: 'openrouter',
          consecutiveFailures: 1,
          lastError: expect.stringContaining('HTTP 404'),
          nextAttemptAt: '2026-11-23T12:30:30.000Z',
          lastSuccessAt: null,
        },
      ])
      // Not due yet: a second poll does not fetch again.
      await t.app.services.catalog.poll()
      const again = await t.gql(`{ catalogSources { consecutiveFailures } }`)
      expect(again.data!.catalogSources[0].consecutiveFailures).toBe(1)
    } finally {
      Object.assign(config, { CATALOG_SOURCES: saved.sources, OPENROUTER_MODELS_URL: saved.url })
    }
  })

  it('holds a price that moves more than 10x as pending until an admin confirms it, then logs and publishes it', async () => {
    const models = JSON.parse(fixture('openrouter-models.json')) as {
      data: { id: string; pricing: Record<string, string> }[]
    }
    models.data.find((m) => m.id === 'openai/gpt-4o')!.pricing.prompt = '0.00003'
    models.data.find((m) => m.id === 'openai/gpt-4o')!.pricing.completion = '0.000012'
    bodies.set('/models-v2', { status: 200, body: JSON.stringify(models) })
    const published: PriceChangeEvent[] = []
    const iterator = t.app.services.pubsub.subscribe('priceChange')[Symbol.asyncIterator]()
    const collecting = (async () => {
      for (;;) {
        const next = await iterator.next()
        if (next.done) return
        published.push(next.value)
      }
    })()

    clock.set('2026-11-23T13:00:00Z')
    const summary = await t.app.services.catalog.syncSource('openrouter', { location: `${base}/models-v2` })
    expect(summary).toMatchObject({ held: 1, rowsOpened: 1, rowsClosed: 1 })
    const pending = await t.gql(
      `{ pendingPriceChanges { id provider model usageType oldUnitPrice newUnitPrice status } }`,
    )
    expect(pending.data!.pendingPriceChanges).toEqual([
      {
        id: expect.any(String),
        provider: 'openrouter',
        model: 'openai/gpt-4o',
        usageType: 'input',
        oldUnitPrice: '0.0000025',
        newUnitPrice: '0.00003',
        status: 'PENDING',
      },
    ])
    const id = pending.data!.pendingPriceChanges[0].id
    // Re-syncing the same feed keeps one pending entry, not two.
    await t.app.services.catalog.syncSource('openrouter', { location: `${base}/models-v2` })
    expect((await t.gql(`{ pendingPriceChanges { id } }`)).data!.pendingPriceChanges).toEqual([{ id }])

    const forbidden = await t.gql(`mutation($id: ID!) { confirmPriceChange(id: $id) { status } }`, { id })
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    t.app.services.config.CATALOG_ADMIN_TENANTS = [t.tenant.id]
    const confirmed = await t.gql(`mutation($id: ID!) { confirmPriceChange(id: $id) { status } }`, { id })
    expect(confirmed.data!.confirmPriceChange.status).toBe('CONFIRMED')
    const missing = await t.gql(`mutation { confirmPriceChange(id: "999999") { status } }`)
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')

    const prices = await t.gql(
      `{ providerPrices(provider: "openrouter", model: "openai/gpt-4o", at: "2026-11-23T13:30:00Z") { usageType unitPrice } }`,
    )
    expect(prices.data!.providerPrices).toEqual([
      { usageType: 'cache_read', unitPrice: '0.00000125' },
      { usageType: 'input', unitPrice: '0.00003' },
      { usageType: 'input_images', unitPrice: '0.003613' },
      { usageType: 'output', unitPrice: '0.000012' },
    ])
    const log = await t.gql(
      `{ priceChangeLog(provider: "openrouter", model: "openai/gpt-4o", first: 2) { usageType oldUnitPrice newUnitPrice effectiveFrom source } }`,
    )
    expect(log.data!.priceChangeLog).toEqual([
      {
        usageType: 'input',
        oldUnitPrice: '0.0000025',
        newUnitPrice: '0.00003',
        effectiveFrom: '2026-11-23T13:00:00.000Z',
        source: 'openrouter',
      },
      {
        usageType: 'output',
        oldUnitPrice: '0.00001',
        newUnitPrice: '0.000012',
        effectiveFrom: '2026-11-23T13:00:00.000Z',
        source: 'openrouter',
      },
    ])
    // Delivery is asynchronous: wait for both events before closing the subscription.
    for (let i = 0; i < 200 && published.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    await iterator.return?.()
    await collecting
    expect(published.map((e) => [e.model, e.usageType, e.oldUnitPrice, e.newUnitPrice, e.tenantId])).toEqual([
      ['openai/gpt-4o', 'output', '0.00001', '0.000012', null],
      ['openai/gpt-4o', 'input', '0.0000025', '0.00003', null],
    ])
  })

  it('lets exactly one of several polling processes fetch a due source', async () => {
    const models = fixture('openrouter-models.json')
    bodies.set('/counted', { status: 200, body: models })
    const config = {
      ...t.app.services.config,
      CATALOG_SOURCES: ['openrouter' as const],
      OPENROUTER_MODELS_URL: `${base}/counted`,
    }
    // Due again: the earlier failure scheduled a retry 30 s after 12:30.
    clock.set('2026-11-23T13:10:00Z')
    const processes = [1, 2, 3].map(() =>
      createCatalogService({ db: t.database.db, clock, logger: createLogger('silent'), config }),
    )
    await Promise.all(processes.map((p) => p.poll()))
    expect(requests.get('/counted')).toBe(1)
    const state = await t.gql(`{ catalogSources { source consecutiveFailures lastSuccessAt nextAttemptAt } }`)
    expect(state.data!.catalogSources).toEqual([
      {
        source: 'openrouter',
        consecutiveFailures: 0,
        lastSuccessAt: '2026-11-23T13:10:00.000Z',
        nextAttemptAt: '2026-11-23T14:10:00.000Z',
      },
    ])
    await Promise.all(processes.map((p) => p.poll()))
    expect(requests.get('/counted')).toBe(1)
  })

  it('serializes concurrent syncs: each row is written once', async () => {
    const models = JSON.parse(fixture('openrouter-models.json')) as {
      data: { id: string; pricing: Record<string, string> }[]
    }
    models.data.find((m) => m.id === 'deepseek/deepseek-r1')!.pricing.prompt = '0.0000005'
    bodies.set('/models-v3', { status: 200, body: JSON.stringify(models) })
    clock.set('2026-11-23T14:00:00Z')
    const results = await Promise.all(
      [1, 2, 3].map(() => t.app.services.catalog.syncSource('openrouter', { location: `${base}/models-v3` })),
    )
    // The deepseek input change (gpt-4o's output went back at the last poll); gpt-4o's input falling 12x is held again.
    expect(results.map((r) => r.rowsOpened).sort()).toEqual([0, 0, 1])
    expect(results.map((r) => r.held)).toEqual([1, 1, 1])
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from (
        select 1 from price_catalog group by provider, model, usage_type, time_window, effective_from, source, tenant_id having count(*) > 1
      ) as duplicated`.execute(t.database.db)
    expect(rows[0]!.n).toBe(0)
  })
})
