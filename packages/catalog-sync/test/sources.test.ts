import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseInterval, runCli } from '../src/cli.ts'
import { SourceError } from '../src/sources/fetch.ts'
import { fromGenaiPricesJson } from '../src/sources/genai-prices.ts'
import { fromLitellm } from '../src/sources/litellm.ts'
import { fromOpenRouter } from '../src/sources/openrouter.ts'
import { parseOverridesFile } from '../src/sources/overrides.ts'
import { parsePrice } from '../src/sources/price-value.ts'
import { loadPublicSource, withRetry } from '../src/sources/registry.ts'
import type { NormalizedPrice } from '../src/types.ts'

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')
const json = (name: string) => JSON.parse(fixture(name)) as unknown

const rowsOf = (prices: NormalizedPrice[], provider: string, model: string) =>
  Object.fromEntries(
    prices
      .filter((p) => p.provider === provider && p.model === model)
      .map((p) => [p.usageType, p.tiers ? [p.unitPrice, p.tiers] : p.unitPrice]),
  )

describe('parsePrice', () => {
  it('keeps decimal strings and JSON numbers exact and refuses bad prices with a reason', () => {
    expect(parsePrice('0.0000025')).toEqual({ ok: true, unitPrice: '0.0000025' })
    expect(parsePrice(2.5e-6)).toEqual({ ok: true, unitPrice: '0.0000025' })
    expect(parsePrice(3.81469e-8)).toEqual({ ok: true, unitPrice: '0.0000000381469' })
    expect(parsePrice('-1')).toEqual({ ok: false, reason: 'negative price -1' })
    expect(parsePrice(Number.NaN)).toEqual({ ok: false, reason: 'price is NaN' })
    expect(parsePrice('NaN')).toEqual({ ok: false, reason: 'price is NaN' })
    expect(parsePrice(undefined)).toEqual({ ok: false, reason: 'missing price' })
    expect(parsePrice('cheap')).toMatchObject({ ok: false })
    expect(parsePrice(true)).toMatchObject({ ok: false })
  })
})

describe('openrouter adapter', () => {
  const snapshot = fromOpenRouter(json('openrouter-models.json'))

  it('turns /api/v1/models pricing into openrouter rows, per token, request, search and image', () => {
    expect(snapshot.source).toBe('openrouter')
    expect(snapshot.sourceVersion).toMatch(/^sha256:[0-9a-f]{16}$/)
    expect(new Set(snapshot.prices.map((p) => p.provider))).toEqual(new Set(['openrouter']))
    expect(rowsOf(snapshot.prices, 'openrouter', 'openai/gpt-4o')).toEqual({
      input: '0.0000025',
      output: '0.00001',
      cache_read: '0.00000125',
      input_images: '0.003613',
    })
    expect(rowsOf(snapshot.prices, 'openrouter', 'anthropic/claude-sonnet-4')).toEqual({
      input_images: '0.0048',
      input: '0.000003',
      output: '0.000015',
      cache_read: '0.0000003',
      cache_write: '0.00000375',
      web_searches: '0.01',
    })
    // A free model is priced at zero (known, free), not left unpriced.
    expect(rowsOf(snapshot.prices, 'openrouter', 'meta-llama/llama-3.3-70b-instruct:free')).toEqual({
      input: '0',
      output: '0',
    })
  })

  it('rejects the auto router (price -1) with a reason and keeps it as it was', () => {
    expect(snapshot.rejected).toEqual([
      { model: 'openrouter/auto', field: 'prompt', rawValue: '"-1"', reason: 'negative price -1' },
      { model: 'openrouter/auto', field: 'completion', rawValue: '"-1"', reason: 'negative price -1' },
    ])
    expect(snapshot.unreadable).toEqual([{ provider: 'openrouter', model: 'openrouter/auto' }])
    expect(snapshot.prices.some((p) => p.model === 'openrouter/auto')).toBe(false)
    expect(snapshot.models).toBe(4)
  })

  it('refuses a changed schema as a whole', () => {
    expect(() => fromOpenRouter({ models: [] })).toThrow(SourceError)
    expect(() => fromOpenRouter({ data: [{ id: 'x/y', price: {} }] })).toThrow(/unexpected \/models shape/)
  })
})

describe('litellm adapter', () => {
  const snapshot = fromLitellm(json('litellm-prices.json'))

  it('maps per-token prices, cache prices and above-200k tiers to canonical models', () => {
    expect(rowsOf(snapshot.prices, 'openai', 'gpt-4o')).toEqual({
      input: '0.0000025',
      output: '0.00001',
      cache_read: '0.00000125',
    })
    expect(rowsOf(snapshot.prices, 'anthropic', 'claude-sonnet-4-0')).toEqual({
      web_searches: '0.01',
      input: ['0.000003', [{ start: 200000, unitPrice: '0.000006' }]],
      output: ['0.000015', [{ start: 200000, unitPrice: '0.0000225' }]],
      cache_read: ['0.0000003', [{ start: 200000, unitPrice: '0.0000006' }]],
      cache_write: ['0.00000375', [{ start: 200000, unitPrice: '0.0000075' }]],
    })
    expect(rowsOf(snapshot.prices, 'google', 'gemini-2.5-pro')).toMatchObject({
      input: ['0.00000125', [{ start: 200000, unitPrice: '0.0000025' }]],
    })
    expect(rowsOf(snapshot.prices, 'openai', 'whisper-1')).toEqual({ input_audio_seconds: '0.0001' })
  })

  it('resolves aliases to one model and keeps a differently priced snapshot apart', () => {
    expect(snapshot.skipped).toContainEqual({
      model: 'gpt-4o-2024-08-06',
      field: null,
      rawValue: null,
      reason: 'alias of openai/gpt-4o, whose own entry is used',
    })
    expect(rowsOf(snapshot.prices, 'openai', 'gpt-4o-2024-05-13')).toEqual({ input: '0.000005', output: '0.000015' })
    expect(snapshot.prices.filter((p) => p.model === 'gpt-4o' && p.usageType === 'input')).toHaveLength(1)
  })

  it('rejects negative prices with a reason, skips what it cannot represent, never prices sample_spec', () => {
    expect(snapshot.rejected).toEqual([
      {
        model: 'broken-model',
        field: 'input_cost_per_token',
        rawValue: '-0.000001',
        reason: 'negative price -0.000001',
      },
    ])
    expect(snapshot.skipped).toEqual(
      expect.arrayContaining([
        {
          model: 'gpt-4o',
          field: 'input_cost_per_token_batches',
          rawValue: '0.00000125',
          reason: 'unknown unit: no usage type for input_cost_per_token_batches',
        },
        {
          model: 'whisper-1',
          field: 'output_cost_per_second',
          rawValue: '0.0001',
          reason: 'unknown unit: no usage type for output_cost_per_second',
        },
      ]),
    )
    expect(snapshot.prices.some((p) => p.model === 'sample_spec')).toBe(false)
    expect(() => fromLitellm([])).toThrow(SourceError)
    expect(() => fromLitellm({ sample_spec: {} })).toThrow(/no model entries/)
  })
})

describe('genai-prices data.json adapter', () => {
  it('reads the published data file with its dated prices and tiers', () => {
    const snapshot = fromGenaiPricesJson(json('genai-prices-data.json'))
    const input = snapshot.prices.filter((p) => p.model === 'gpt-4o' && p.usageType === 'input')
    expect(
      input.map((p) => [p.unitPrice, p.effectiveFrom.toISOString(), p.effectiveTo?.toISOString() ?? null]),
    ).toEqual([
      ['0.0000025', '1970-01-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
      ['0.000002', '2026-12-01T00:00:00.000Z', null],
    ])
    expect(rowsOf(snapshot.prices, 'anthropic', 'claude-sonnet-4-0').input).toEqual([
      '0.000003',
      [{ start: 200000, unitPrice: '0.000006' }],
    ])
    expect(snapshot.source).toBe('genai-prices')
  })

  it('rejects negative prices row by row and a changed shape as a whole', () => {
    const data = json('genai-prices-data.json') as { models: { prices: unknown }[] }[]
    data[1]!.models[0]!.prices = { input_mtok: -3, output_mtok: 15 }
    const snapshot = fromGenaiPricesJson(data)
    expect(snapshot.rejected).toEqual([
      {
        model: 'anthropic/claude-sonnet-4-0',
        field: 'input',
        rawValue: '"-0.000003"',
        reason: 'negative price -0.000003',
      },
    ])
    // The model is unreadable this time: a sync keeps what the catalog has for it, rather than half of it.
    expect(rowsOf(snapshot.prices, 'anthropic', 'claude-sonnet-4-0')).toEqual({})
    expect(snapshot.unreadable).toEqual([{ provider: 'anthropic', model: 'claude-sonnet-4-0' }])
    expect(() => fromGenaiPricesJson({ providers: [] })).toThrow(SourceError)
  })
})

describe('overrides file', () => {
  it('reads YAML into per-tenant timelines with canonical models', () => {
    const snapshots = parseOverridesFile(`
overrides:
  - tenant: t_1
    provider: openai
    model: gpt-4o-2024-08-06
    usageType: input
    unitPrice: "0.000002"
    effectiveFrom: 2026-11-01T00:00:00Z
  - tenant: t_1
    provider: openai
    model: gpt-4o
    usageType: input
    unitPrice: "0.0000018"
    effectiveFrom: 2026-12-01T00:00:00Z
  - tenant: t_2
    provider: anthropic
    model: claude-sonnet-4-0
    usageType: output
    unitPrice: 0.00001
    effectiveFrom: 2026-11-01T00:00:00Z
`)
    expect([...snapshots.keys()]).toEqual(['t_1', 't_2'])
    expect(
      snapshots
        .get('t_1')!
        .prices.map((p) => [p.model, p.unitPrice, p.effectiveFrom.toISOString(), p.effectiveTo?.toISOString() ?? null]),
    ).toEqual([
      ['gpt-4o', '0.000002', '2026-11-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z'],
      ['gpt-4o', '0.0000018', '2026-12-01T00:00:00.000Z', null],
    ])
  })

  it('refuses bad entries naming the field', () => {
    const entry = (extra: string) =>
      `overrides:\n  - { tenant: t, provider: openai, model: gpt-4o, effectiveFrom: "2026-11-01T00:00:00Z", ${extra} }`
    expect(() => parseOverridesFile(entry('usageType: input, unitPrice: "-1"'))).toThrow(
      /overrides\[0\]\.unitPrice: .*negative/,
    )
    expect(() => parseOverridesFile(entry('usageType: tokens, unitPrice: "1"'))).toThrow(/unknown usageType/)
    expect(() => parseOverridesFile('overrides: [')).toThrow(SourceError)
  })
})

describe('fetching sources over HTTP', () => {
  let server: Server
  let base: string
  let flaky = 0
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/api/v1/models')
        return res.writeHead(200, { 'content-type': 'application/json' }).end(fixture('openrouter-models.json'))
      if (req.url === '/litellm.json') return res.writeHead(200).end(fixture('litellm-prices.json'))
      if (req.url === '/data.json') return res.writeHead(200).end(fixture('genai-prices-data.json'))
      if (req.url === '/broken') return res.writeHead(200).end('{"data": [')
      if (req.url === '/flaky' && flaky++ < 2) return res.writeHead(503).end()
      if (req.url === '/flaky') return res.writeHead(200).end(fixture('openrouter-models.json'))
      if (req.url === '/slow') return void setTimeout(() => res.writeHead(200).end('{}'), 2_000)
      res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => {
    server.closeAllConnections()
    server.close()
  })

  it('fetches each real wire format', async () => {
    expect((await loadPublicSource('openrouter', `${base}/api/v1/models`)).models).toBe(4)
    expect((await loadPublicSource('litellm', `${base}/litellm.json`)).prices.length).toBeGreaterThan(10)
    expect((await loadPublicSource('genai-prices-remote', `${base}/data.json`)).source).toBe('genai-prices')
  })

  it('reports HTTP errors, timeouts and malformed JSON as typed SourceErrors', async () => {
    await expect(loadPublicSource('openrouter', `${base}/missing`)).rejects.toMatchObject({
      kind: 'http',
      message: expect.stringContaining('HTTP 404'),
    })
    await expect(loadPublicSource('openrouter', `${base}/broken`)).rejects.toMatchObject({ kind: 'malformed' })
    await expect(loadPublicSource('openrouter', `${base}/slow`, { timeoutMs: 100 })).rejects.toMatchObject({
      kind: 'timeout',
    })
    await expect(loadPublicSource('openrouter', `${base}/litellm.json`)).rejects.toMatchObject({ kind: 'schema' })
  })

  it('retries with exponential backoff, but never a schema change', async () => {
    const delays: number[] = []
    const sleep = async (ms: number) => void delays.push(ms)
    const snapshot = await withRetry(() => loadPublicSource('openrouter', `${base}/flaky`), {
      attempts: 3,
      baseMs: 100,
      sleep,
    })
    expect(snapshot.models).toBe(4)
    expect(delays).toEqual([100, 200])
    let calls = 0
    await expect(
      withRetry(
        () => {
          calls++
          return loadPublicSource('openrouter', `${base}/litellm.json`)
        },
        { sleep },
      ),
    ).rejects.toMatchObject({ kind: 'schema' })
    expect(calls).toBe(1)
  })
})

describe('cli', () => {
  it('parses intervals and refuses bad usage without touching a database', async () => {
    expect(parseInterval('1h')).toBe(3_600_000)
    expect(parseInterval('15m')).toBe(900_000)
    expect(() => parseInterval('hourly')).toThrow(/invalid interval/)
    const err: string[] = []
    const io = { out: () => undefined, err: (l: string) => void err.push(l), isTty: false, env: {} }
    expect(await runCli([], io)).toBe(2)
    expect(await runCli(['--source', 'nope'], io)).toBe(2)
    expect(await runCli(['--source', 'openrouter', '--once', '--every', '1h'], io)).toBe(2)
    expect(err.join('\n')).toContain('unknown source nope')
  })
})
