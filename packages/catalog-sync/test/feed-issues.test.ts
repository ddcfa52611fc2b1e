import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../api/test/support/db.ts'
import { applyCatalogSnapshot, type CatalogDB } from '../src/apply.ts'
import { runCli } from '../src/cli.ts'
import { fromLitellm } from '../src/sources/litellm.ts'
import { fromOpenRouter } from '../src/sources/openrouter.ts'
import type { NormalizedPrice } from '../src/types.ts'
import { UNIT_BY_USAGE_TYPE } from '../src/units.ts'

const json = (name: string) =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as Record<string, any>

const rowsOf = (prices: NormalizedPrice[], provider: string, model: string) =>
  Object.fromEntries(
    prices
      .filter((p) => p.provider === provider && p.model === model)
      .map((p) => [p.usageType, `${p.unitPrice}/${p.unit}`]),
  )

/** The OpenRouter fixture with an o3 entry, its completion price replaced when asked. */
function openRouterFeed(o3Completion: unknown = '0.000008') {
  const feed = json('openrouter-models.json')
  feed.data.push({
    id: 'openai/o3',
    name: 'OpenAI: o3',
    architecture: { modality: 'text+image->text', input_modalities: ['text', 'image'], output_modalities: ['text'] },
    pricing: {
      prompt: '0.000002',
      completion: o3Completion,
      request: '0',
      image: '0.00153',
      web_search: '0.01',
      internal_reasoning: '0',
      input_cache_read: '0.0000005',
    },
  })
  feed.data.push({
    id: 'openai/text-embedding-3-small',
    name: 'OpenAI: Text Embedding 3 Small',
    architecture: { modality: 'text->embeddings', input_modalities: ['text'], output_modalities: ['embeddings'] },
    pricing: {
      prompt: '0.00000002',
      completion: '0',
      request: '0',
      image: '0',
      web_search: '0',
      internal_reasoning: '0',
    },
  })
  return feed
}

describe('a malformed row never withdraws the price in force (issue 12, item 1)', () => {
  it('the adapters name the model whose entry was unreadable, so the sync leaves it alone', () => {
    const snapshot = fromOpenRouter(openRouterFeed('not-a-number'))
    expect(snapshot.prices.some((p) => p.model === 'openai/o3')).toBe(false)
    expect(snapshot.unreadable).toContainEqual({ provider: 'openrouter', model: 'openai/o3' })
    const litellm = json('litellm-prices.json')
    litellm['gpt-4o'].output_cost_per_token = 'ten dollars'
    expect(fromLitellm(litellm).unreadable).toContainEqual({ provider: 'openai', model: 'gpt-4o' })
  })

  describe('applied', () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await createTestDatabase()
    })
    afterAll(() => database.destroy())

    it('keeps every o3 row open when a re-sync has a bad o3 completion price, and records the rejection', async () => {
      const first = new Date('2026-12-01T00:00:00Z')
      await applyCatalogSnapshot(database.db, fromOpenRouter(openRouterFeed()), { observedAt: first })
      const before = await database.db
        .selectFrom('price_catalog')
        .selectAll()
        .where('model', '=', 'openai/o3')
        .orderBy('id')
        .execute()
      expect(before.map((r) => r.usage_type).sort()).toEqual([
        'cache_read',
        'input',
        'input_images',
        'output',
        'web_searches',
      ])

      const bad = fromOpenRouter(openRouterFeed('not-a-number'))
      const summary = await applyCatalogSnapshot(database.db, bad, { observedAt: new Date('2026-12-02T00:00:00Z') })
      expect(summary.rowsClosed).toBe(0)
      // o3's completion, and the auto router's two "-1" prices.
      expect(summary.rejected).toBe(3)
      const after = await database.db
        .selectFrom('price_catalog')
        .selectAll()
        .where('model', '=', 'openai/o3')
        .orderBy('id')
        .execute()
      expect(after).toEqual(before)

      const issues = await database.db
        .selectFrom('catalog_feed_issues')
        .selectAll()
        .where('sync_run_id', '=', summary.syncRunId!)
        .orderBy('id')
        .execute()
      expect(issues.filter((i) => i.kind === 'REJECTED')).toEqual([
        expect.objectContaining({
          source: 'openrouter',
          model: 'openai/o3',
          field: 'completion',
          raw_value: '"not-a-number"',
          reason: 'price "not-a-number" is not a decimal number',
        }),
        expect.objectContaining({
          source: 'openrouter',
          model: 'openrouter/auto',
          field: 'prompt',
          raw_value: '"-1"',
          reason: 'negative price -1',
        }),
        expect.objectContaining({
          source: 'openrouter',
          model: 'openrouter/auto',
          field: 'completion',
          raw_value: '"-1"',
          reason: 'negative price -1',
        }),
      ])
    })

    it('a price field of the wrong JSON type rejects that model only, not the whole feed', async () => {
      const snapshot = fromOpenRouter(openRouterFeed({ usd: 8 }))
      expect(snapshot.rejected).toContainEqual({
        model: 'openai/o3',
        field: 'completion',
        rawValue: '{"usd":8}',
        reason: 'price is a object, not a number',
      })
      expect(snapshot.prices.some((p) => p.model === 'openai/gpt-4o')).toBe(true)
    })
  })
})

describe('every rejection and skip is kept with source, model, field, raw value and reason (item 2)', () => {
  it('OpenRouter: a variable price (-1) and a malformed value are rejected with the raw value', () => {
    const snapshot = fromOpenRouter(openRouterFeed('not-a-number'))
    expect(snapshot.rejected).toEqual([
      {
        model: 'openai/o3',
        field: 'completion',
        rawValue: '"not-a-number"',
        reason: 'price "not-a-number" is not a decimal number',
      },
      { model: 'openrouter/auto', field: 'prompt', rawValue: '"-1"', reason: 'negative price -1' },
      { model: 'openrouter/auto', field: 'completion', rawValue: '"-1"', reason: 'negative price -1' },
    ])
  })

  it('LiteLLM: sample_spec, unknown units and aliases are skipped with a trace; bad values rejected', () => {
    const litellm = json('litellm-prices.json')
    litellm['tts-1'] = { mode: 'audio_speech', input_cost_per_character: 1.5e-5, litellm_provider: 'openai' }
    const snapshot = fromLitellm(litellm)
    expect(snapshot.skipped).toEqual(
      expect.arrayContaining([
        { model: 'sample_spec', field: null, rawValue: null, reason: 'documentation entry, not a model' },
        {
          model: 'tts-1',
          field: 'input_cost_per_character',
          rawValue: '0.000015',
          reason: 'unknown unit: no usage type for input_cost_per_character',
        },
        {
          model: 'gpt-4o-2024-08-06',
          field: null,
          rawValue: null,
          reason: 'alias of openai/gpt-4o, whose own entry is used',
        },
      ]),
    )
    expect(snapshot.rejected).toEqual([
      {
        model: 'broken-model',
        field: 'input_cost_per_token',
        rawValue: '-0.000001',
        reason: 'negative price -0.000001',
      },
    ])
  })

  describe('stored per sync run', () => {
    let database: TestDatabase
    beforeAll(async () => {
      database = await createTestDatabase()
    })
    afterAll(() => database.destroy())

    it('records the run and each issue once per feed version; a dry run records nothing', async () => {
      const snapshot = fromLitellm(json('litellm-prices.json'))
      const dry = await applyCatalogSnapshot(database.db, snapshot, {
        observedAt: new Date('2026-12-01T00:00:00Z'),
        dryRun: true,
      })
      expect(dry.syncRunId).toBeNull()
      expect(await database.db.selectFrom('catalog_sync_runs').selectAll().execute()).toEqual([])

      const first = await applyCatalogSnapshot(database.db, snapshot, { observedAt: new Date('2026-12-01T00:00:00Z') })
      const run = await database.db
        .selectFrom('catalog_sync_runs')
        .selectAll()
        .where('id', '=', first.syncRunId!)
        .executeTakeFirstOrThrow()
      expect(run).toMatchObject({
        source: 'litellm',
        source_version: snapshot.sourceVersion,
        rejected: 1,
        skipped: snapshot.skipped.length,
        rows_opened: first.rowsOpened,
      })
      const stored = await database.db
        .selectFrom('catalog_feed_issues')
        .selectAll()
        .where('sync_run_id', '=', first.syncRunId!)
        .orderBy('id')
        .execute()
      expect(stored).toHaveLength(snapshot.skipped.length + 1)
      expect(stored).toContainEqual(
        expect.objectContaining({
          kind: 'SKIPPED',
          model: 'sample_spec',
          source: 'litellm',
          source_version: snapshot.sourceVersion,
        }),
      )

      // The same content again: a new run, whose issues are the ones already stored for that version.
      const second = await applyCatalogSnapshot(database.db, snapshot, { observedAt: new Date('2026-12-01T01:00:00Z') })
      expect(second.syncRunId).not.toBe(first.syncRunId)
      const total = await database.db
        .selectFrom('catalog_feed_issues')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      expect(Number(total.n)).toBe(stored.length)
    })
  })
})

describe('the CLI counts rejections and skips in its summary (item 2)', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  it('prints rejected and skipped per source and in the final line, and each rejection on stderr', async () => {
    const out: string[] = []
    const err: string[] = []
    const file = fileURLToPath(new URL('./fixtures/litellm-prices.json', import.meta.url))
    const code = await runCli(['--source', 'litellm', '--url', file, '--once'], {
      out: (line) => void out.push(line),
      err: (line) => void err.push(line),
      isTty: false,
      env: {},
      db: database.db as unknown as Kysely<CatalogDB>,
      now: () => new Date('2026-12-01T00:00:00Z'),
    })
    expect(code).toBe(0)
    const skipped = fromLitellm(json('litellm-prices.json')).skipped.length
    expect(skipped).toBeGreaterThan(0)
    expect(out.at(-1)).toMatch(new RegExp(`, rejected 1, skipped ${skipped},`))
    expect(err).toContain('litellm: rejected broken-model input_cost_per_token = -0.000001: negative price -0.000001')
  })
})

describe('units: images, pixels, seconds, requests and searches become rows (item 3)', () => {
  it('every unit the adapters produce is one the pricing engine prices', () => {
    const litellm = json('litellm-prices.json')
    const prices = [...fromOpenRouter(openRouterFeed()).prices, ...fromLitellm(litellm).prices]
    for (const price of prices)
      expect(UNIT_BY_USAGE_TYPE.get(price.usageType)?.unit, `${price.model} ${price.usageType}`).toBe(price.unit)
  })

  it('OpenRouter: per-image price as an input_images row; embeddings have no output row', () => {
    const snapshot = fromOpenRouter(openRouterFeed())
    expect(rowsOf(snapshot.prices, 'openrouter', 'openai/gpt-4o')).toEqual({
      input: '0.0000025/token',
      output: '0.00001/token',
      cache_read: '0.00000125/token',
      input_images: '0.003613/image',
    })
    expect(rowsOf(snapshot.prices, 'openrouter', 'openai/text-embedding-3-small')).toEqual({
      input: '0.00000002/token',
    })
  })

  it('LiteLLM: per pixel, per image, per second, per request and per web search, exact', () => {
    const litellm = json('litellm-prices.json')
    litellm['perplexity/sonar'] = {
      input_cost_per_token: 1e-6,
      output_cost_per_token: 1e-6,
      input_cost_per_request: 0.005,
      litellm_provider: 'perplexity',
      mode: 'chat',
    }
    litellm['gemini/gemini-2.0-flash-live-001'] = {
      input_cost_per_token: 3.5e-7,
      output_cost_per_token: 1.5e-6,
      input_cost_per_audio_per_second: 2.1e-5,
      output_cost_per_audio_per_second: 8.5e-5,
      input_cost_per_image: 0.001315,
      litellm_provider: 'gemini',
      mode: 'chat',
    }
    const snapshot = fromLitellm(litellm)
    expect(rowsOf(snapshot.prices, 'openai', 'dall-e-3')).toEqual({ output_image_pixels: '0.0000000381469/pixel' })
    expect(rowsOf(snapshot.prices, 'vertex_ai-image-models', 'vertex_ai/imagen-3.0-generate-002')).toEqual({
      output_images: '0.04/image',
    })
    expect(rowsOf(snapshot.prices, 'openai', 'whisper-1')).toEqual({ input_audio_seconds: '0.0001/second' })
    expect(rowsOf(snapshot.prices, 'perplexity', 'sonar')).toMatchObject({ requests: '0.005/request' })
    expect(rowsOf(snapshot.prices, 'google', 'gemini-2.0-flash-live-001')).toMatchObject({
      input_audio_seconds: '0.000021/second',
      output_audio_seconds: '0.000085/second',
      input_images: '0.001315/image',
    })
    expect(rowsOf(snapshot.prices, 'anthropic', 'claude-sonnet-4-0')).toMatchObject({ web_searches: '0.01/search' })
    // Input-only embeddings: no output row at 0.
    expect(rowsOf(snapshot.prices, 'openai', 'text-embedding-3-small')).toEqual({ input: '0.00000002/token' })
  })

  it('a web search priced by context size is a trace, not a guess', () => {
    const litellm = json('litellm-prices.json')
    litellm['gpt-4o'].search_context_cost_per_query = {
      search_context_size_low: 0.03,
      search_context_size_medium: 0.035,
      search_context_size_high: 0.05,
    }
    const snapshot = fromLitellm(litellm)
    expect(rowsOf(snapshot.prices, 'openai', 'gpt-4o').web_searches).toBeUndefined()
    expect(snapshot.skipped).toContainEqual({
      model: 'gpt-4o',
      field: 'search_context_cost_per_query',
      rawValue: '{"search_context_size_low":0.03,"search_context_size_medium":0.035,"search_context_size_high":0.05}',
      reason: 'web search price depends on the search context size, which usage does not report',
    })
  })
})

describe('a model first seen without a date is priced from the sync that saw it (item 4)', () => {
  let database: TestDatabase
  beforeAll(async () => {
    database = await createTestDatabase()
  })
  afterAll(() => database.destroy())

  it('OpenRouter and LiteLLM rows of a new model start at observedAt, not 1970; a re-sync writes nothing', async () => {
    const observedAt = new Date('2026-12-03T09:00:00Z')
    await applyCatalogSnapshot(database.db, fromOpenRouter(openRouterFeed()), { observedAt })
    await applyCatalogSnapshot(database.db, fromLitellm(json('litellm-prices.json')), { observedAt })
    const starts = await database.db.selectFrom('price_catalog').select('effective_from').distinct().execute()
    expect(starts.map((s) => s.effective_from.toISOString())).toEqual([observedAt.toISOString()])
    const again = await applyCatalogSnapshot(database.db, fromOpenRouter(openRouterFeed()), {
      observedAt: new Date('2026-12-04T09:00:00Z'),
    })
    expect(again).toMatchObject({ rowsOpened: 0, rowsClosed: 0 })
  })
})
