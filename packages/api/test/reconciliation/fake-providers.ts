import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Decimal } from '../../src/money/decimal.ts'

/**
 * Local servers speaking the providers' report formats: OpenAI's organization Usage and Costs
 * APIs, Anthropic's Admin API usage and cost reports, OpenRouter's generation and key endpoints.
 * They hold calls (what the provider saw), report only those before `now` (partial days), page
 * with cursors, and answer the first request of each path with 429 + Retry-After when asked.
 */

export interface FakeCall {
  provider: 'openai' | 'anthropic' | 'openrouter'
  /** The provider's own model name (dated, as providers report them). */
  model: string
  at: Date
  input: number
  cachedInput: number
  cacheWrite: number
  output: number
  /** OpenRouter only. */
  generationId?: string
  isByok?: boolean
}

export interface FakePrices {
  [model: string]: { input: string; output: string; cache_read?: string; cache_write?: string }
}

export interface FakeProviders {
  url: string
  calls: FakeCall[]
  prices: FakePrices
  now: Date
  keys: { openai: string; anthropic: string; openrouter: string }
  /** Paths whose next request answers 429 with this Retry-After (seconds), once. */
  rateLimitOnce: Map<string, string>
  requests: { path: string; query: URLSearchParams; status: number }[]
  close(): Promise<void>
}

const HOUR = 3_600_000
const DAY = 86_400_000

const NUM = (text: string) => `__NUM__${text}__`
/** JSON with money written as the exact decimal literal, as providers do. */
const json = (body: unknown) => JSON.stringify(body).replace(/"__NUM__(-?[0-9.]+)__"/g, '$1')

export function callCost(prices: FakePrices, call: FakeCall) {
  const p = prices[call.model]
  if (!p) throw new Error(`no fake price for ${call.model}`)
  const uncached = call.input - call.cachedInput - call.cacheWrite
  return {
    input: new Decimal(p.input).times(uncached),
    cache_read: new Decimal(p.cache_read ?? '0').times(call.cachedInput),
    cache_write: new Decimal(p.cache_write ?? '0').times(call.cacheWrite),
    output: new Decimal(p.output).times(call.output),
  }
}

export async function startFakeProviders(prices: FakePrices, now: Date): Promise<FakeProviders> {
  const state: Omit<FakeProviders, 'url' | 'close'> = {
    calls: [],
    prices,
    now,
    keys: { openai: 'sk-admin-openai-1234', anthropic: 'sk-ant-admin01-5678', openrouter: 'sk-or-v1-9012' },
    rateLimitOnce: new Map(),
    requests: [],
  }

  const visible = (provider: string, from: number, to: number) =>
    state.calls.filter(
      (c) => c.provider === provider && c.at.getTime() >= from && c.at.getTime() < to && c.at < state.now,
    )

  /** Buckets [start, end) of `width`, at most `limit` from the cursor, with the next cursor. */
  function buckets(from: number, to: number, width: number, limit: number, page: string | null) {
    const start = page ? Number(Buffer.from(page, 'base64url').toString()) : Math.floor(from / width) * width
    const end = Math.min(to, Math.ceil(state.now.getTime() / width) * width)
    const list: number[] = []
    let t = start
    for (; t < end && list.length < limit; t += width) list.push(t)
    const more = t < end
    return { list, next: more ? Buffer.from(String(t)).toString('base64url') : null }
  }

  function byModel(calls: FakeCall[]) {
    const groups = new Map<string, FakeCall[]>()
    for (const c of calls) groups.set(c.model, [...(groups.get(c.model) ?? []), c])
    return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))
  }
  const sum = (calls: FakeCall[], f: (c: FakeCall) => number) => calls.reduce((s, c) => s + f(c), 0)

  function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake')
    const q = url.searchParams
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      state.requests.push({ path: url.pathname, query: q, status })
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(typeof body === 'string' ? body : JSON.stringify(body))
    }
    const limited = state.rateLimitOnce.get(url.pathname)
    if (limited !== undefined) {
      state.rateLimitOnce.delete(url.pathname)
      return send(429, { error: { message: 'rate limited' } }, { 'retry-after': limited })
    }

    if (url.pathname.startsWith('/v1/organization/')) {
      if (req.headers.authorization !== `Bearer ${state.keys.openai}`)
        return send(401, { error: { message: 'invalid admin key' } })
      const from = Number(q.get('start_time')) * 1000
      const to = q.get('end_time') ? Number(q.get('end_time')) * 1000 : state.now.getTime()
      const limit = Number(q.get('limit') ?? 7)
      if (url.pathname === '/v1/organization/usage/completions') {
        if (q.get('bucket_width') !== '1h' || !q.getAll('group_by').includes('model'))
          return send(400, { error: { message: 'test server expects bucket_width=1h&group_by=model' } })
        const { list, next } = buckets(from, to, HOUR, limit, q.get('page'))
        const data = list.map((start) => ({
          object: 'bucket',
          start_time: start / 1000,
          end_time: (start + HOUR) / 1000,
          results: byModel(visible('openai', start, start + HOUR)).map(([model, calls]) => ({
            object: 'organization.usage.completions.result',
            input_tokens: sum(calls, (c) => c.input),
            output_tokens: sum(calls, (c) => c.output),
            input_cached_tokens: sum(calls, (c) => c.cachedInput),
            input_audio_tokens: 0,
            output_audio_tokens: 0,
            num_model_requests: calls.length,
            project_id: null,
            user_id: null,
            api_key_id: null,
            model,
            batch: null,
          })),
        }))
        return send(200, { object: 'page', data, has_more: next !== null, next_page: next })
      }
      if (url.pathname === '/v1/organization/costs') {
        const { list, next } = buckets(from, to, DAY, limit, q.get('page'))
        const data = list.map((start) => ({
          object: 'bucket',
          start_time: start / 1000,
          end_time: (start + DAY) / 1000,
          results: byModel(visible('openai', start, start + DAY)).flatMap(([model, calls]) => {
            const costs = calls.map((c) => callCost(state.prices, c))
            const total = (k: 'input' | 'cache_read' | 'output') => costs.reduce((s, c) => s.plus(c[k]), new Decimal(0))
            return (
              [
                ['input', total('input')],
                ['cached input', total('cache_read')],
                ['output', total('output')],
              ] as const
            )
              .filter(([, v]) => !v.isZero())
              .map(([kind, v]) => ({
                object: 'organization.costs.result',
                amount: { value: NUM(v.toFixed()), currency: 'usd' },
                line_item: `${model}, ${kind}`,
                project_id: null,
              }))
          }),
        }))
        return send(200, json({ object: 'page', data, has_more: next !== null, next_page: next }))
      }
    }

    if (url.pathname.startsWith('/v1/organizations/')) {
      if (req.headers['x-api-key'] !== state.keys.anthropic || req.headers['anthropic-version'] !== '2023-06-01')
        return send(401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } })
      const from = Date.parse(q.get('starting_at') ?? '')
      const to = q.get('ending_at') ? Date.parse(q.get('ending_at')!) : state.now.getTime()
      if (url.pathname === '/v1/organizations/usage_report/messages') {
        if (q.get('bucket_width') !== '1h' || !q.getAll('group_by[]').includes('model'))
          return send(400, { type: 'error', error: { type: 'invalid_request_error', message: 'bad params' } })
        const { list, next } = buckets(from, to, HOUR, Number(q.get('limit') ?? 24), q.get('page'))
        const data = list.map((start) => ({
          starting_at: new Date(start).toISOString().replace('.000Z', 'Z'),
          ending_at: new Date(start + HOUR).toISOString().replace('.000Z', 'Z'),
          results: byModel(visible('anthropic', start, start + HOUR)).map(([model, calls]) => ({
            uncached_input_tokens: sum(calls, (c) => c.input - c.cachedInput - c.cacheWrite),
            cache_creation: {
              ephemeral_1h_input_tokens: 0,
              ephemeral_5m_input_tokens: sum(calls, (c) => c.cacheWrite),
            },
            cache_read_input_tokens: sum(calls, (c) => c.cachedInput),
            output_tokens: sum(calls, (c) => c.output),
            server_tool_use: { web_search_requests: 0 },
            api_key_id: null,
            workspace_id: null,
            model,
            service_tier: null,
            context_window: null,
          })),
        }))
        return send(200, { data, has_more: next !== null, next_page: next })
      }
      if (url.pathname === '/v1/organizations/cost_report') {
        const { list, next } = buckets(from, to, DAY, Number(q.get('limit') ?? 7), q.get('page'))
        const data = list.map((start) => ({
          starting_at: new Date(start).toISOString().replace('.000Z', 'Z'),
          ending_at: new Date(start + DAY).toISOString().replace('.000Z', 'Z'),
          results: byModel(visible('anthropic', start, start + DAY)).flatMap(([model, calls]) => {
            const costs = calls.map((c) => callCost(state.prices, c))
            const total = (k: 'input' | 'cache_read' | 'cache_write' | 'output') =>
              costs.reduce((s, c) => s.plus(c[k]), new Decimal(0))
            return (
              [
                ['uncached_input_tokens', total('input')],
                ['cache_read_input_tokens', total('cache_read')],
                ['cache_creation.ephemeral_5m_input_tokens', total('cache_write')],
                ['output_tokens', total('output')],
              ] as const
            )
              .filter(([, v]) => !v.isZero())
              .map(([tokenType, v]) => ({
                // In cents, as decimal text.
                amount: v.times(100).toFixed(),
                currency: 'USD',
                cost_type: 'tokens',
                description: `${model} ${tokenType}`,
                model,
                token_type: tokenType,
                context_window: '0-200k',
                service_tier: 'standard',
                workspace_id: null,
              }))
          }),
        }))
        return send(200, { data, has_more: next !== null, next_page: next })
      }
    }

    if (url.pathname.startsWith('/api/v1/')) {
      if (req.headers.authorization !== `Bearer ${state.keys.openrouter}`)
        return send(401, { error: { code: 401, message: 'No auth credentials found' } })
      if (url.pathname === '/api/v1/generation') {
        const call = state.calls.find((c) => c.generationId === q.get('id') && c.at < state.now)
        if (!call) return send(404, { error: { code: 404, message: 'Generation not found' } })
        const cost = Object.values(callCost(state.prices, call)).reduce((s, v) => s.plus(v), new Decimal(0))
        return send(
          200,
          json({
            data: {
              id: call.generationId,
              upstream_id: 'chatcmpl-1',
              total_cost: NUM(call.isByok ? '0.0001' : cost.toFixed()),
              cache_discount: null,
              upstream_inference_cost: call.isByok ? NUM(cost.toFixed()) : null,
              created_at: call.at.toISOString(),
              model: call.model,
              app_id: null,
              streamed: false,
              cancelled: false,
              provider_name: 'OpenAI',
              latency: 100,
              moderation_latency: null,
              generation_time: 90,
              finish_reason: 'stop',
              native_finish_reason: 'stop',
              tokens_prompt: call.input,
              tokens_completion: call.output,
              native_tokens_prompt: call.input,
              native_tokens_completion: call.output,
              native_tokens_cached: call.cachedInput,
              native_tokens_reasoning: 0,
              num_media_prompt: null,
              num_media_completion: null,
              num_search_results: null,
              origin: '',
              usage: NUM(cost.toFixed()),
              is_byok: call.isByok ?? false,
            },
          }),
        )
      }
      if (url.pathname === '/api/v1/key') {
        const today = Math.floor(state.now.getTime() / DAY) * DAY
        const todays = visible('openrouter', today, today + DAY)
        const daily = todays
          .map((c) => Object.values(callCost(state.prices, c)).reduce((s, v) => s.plus(v), new Decimal(0)))
          .reduce((s, v) => s.plus(v), new Decimal(0))
        return send(
          200,
          json({
            data: {
              label: 'sk-or-v1-…9012',
              limit: null,
              usage: NUM(daily.toFixed()),
              usage_daily: NUM(daily.toFixed()),
              usage_weekly: NUM(daily.toFixed()),
              usage_monthly: NUM(daily.toFixed()),
              is_free_tier: false,
            },
          }),
        )
      }
    }
    send(404, { error: { message: `no route ${url.pathname}` } })
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const fake = state as FakeProviders
  fake.url = `http://127.0.0.1:${port}`
  fake.close = () => new Promise((resolve) => server.close(() => resolve()))
  return fake
}
