/**
 * HTTP clients for the providers' usage and cost reports. They speak each provider's documented
 * wire format through an injected fetch (the global one in production), follow the providers'
 * pagination, and wait out rate limits (429 with Retry-After) and passing 5xx answers.
 * Money fields are read as exact decimal text, never as JS numbers.
 */

export type Fetch = typeof globalThis.fetch

export interface HttpOptions {
  fetch: Fetch
  timeoutMs: number
  maxRetries: number
  /** Waits between attempts; injected so tests need not sleep. */
  sleep: (ms: number) => Promise<void>
  /** Longest wait a Retry-After may ask for; longer asks fail the import instead. */
  maxRetryAfterMs?: number
}

export class ProviderHttpError extends Error {
  override readonly name = 'ProviderHttpError'
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message)
  }
}

/** Keys whose JSON numbers are money: kept as the decimal text the provider wrote. */
const MONEY_KEYS = [
  'value',
  'total_cost',
  'upstream_inference_cost',
  'cache_discount',
  'usage',
  'usage_daily',
  'usage_weekly',
  'usage_monthly',
  'byok_usage',
  'byok_usage_daily',
  'byok_usage_weekly',
  'byok_usage_monthly',
  'limit',
  'limit_remaining',
  'total_credits',
  'total_usage',
]
const MONEY_NUMBER = new RegExp(`"(${MONEY_KEYS.join('|')})"(\\s*):(\\s*)(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)`, 'g')

/** JSON.parse, with the numbers of money keys turned into their exact decimal text. */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(text.replace(MONEY_NUMBER, '"$1"$2:$3"$4"'))
}

/** Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: Date): number | null {
  if (!header) return null
  const trimmed = header.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000)
  const at = Date.parse(trimmed)
  if (Number.isNaN(at)) return null
  return Math.max(0, at - now.getTime())
}

/** GET a JSON document, retrying 429 and 5xx answers (Retry-After honoured, else exponential backoff). */
async function getJson(url: string, headers: Record<string, string>, options: HttpOptions): Promise<unknown> {
  const maxWait = options.maxRetryAfterMs ?? 120_000
  for (let attempt = 0; ; attempt++) {
    let response: Response
    try {
      response = await options.fetch(url, {
        method: 'GET',
        headers: { accept: 'application/json', ...headers },
        signal: AbortSignal.timeout(options.timeoutMs),
      })
    } catch (error) {
      if (attempt < options.maxRetries) {
        await options.sleep(backoff(attempt))
        continue
      }
      throw new ProviderHttpError(`request failed: ${(error as Error).message}`, null)
    }
    if (response.ok) {
      const text = await response.text()
      try {
        return parseJsonExact(text)
      } catch {
        throw new ProviderHttpError('the provider answered with something other than JSON', response.status)
      }
    }
    const body = await response.text().catch(() => '')
    const retryable = response.status === 429 || response.status >= 500
    if (retryable && attempt < options.maxRetries) {
      const asked = retryAfterMs(response.headers.get('retry-after'), new Date())
      if (asked !== null && asked > maxWait)
        throw new ProviderHttpError(`rate limited; the provider asks to wait ${Math.round(asked / 1000)} s`, 429)
      await options.sleep(asked ?? backoff(attempt))
      continue
    }
    throw new ProviderHttpError(`HTTP ${response.status}: ${errorMessage(body)}`, response.status)
  }
}

const backoff = (attempt: number) => Math.min(30_000, 500 * 2 ** attempt)

function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string }
    const message = typeof parsed.error === 'string' ? parsed.error : parsed.error?.message
    if (typeof message === 'string') return message.slice(0, 300)
  } catch {
    // not JSON
  }
  return body.slice(0, 300) || 'no body'
}

// ---------------------------------------------------------------------------------------------
// Wire shapes (only the fields read). OpenAI: GET /v1/organization/usage/completions and
// /v1/organization/costs, cursor `page` / `next_page`, unix-second bucket bounds.
// ---------------------------------------------------------------------------------------------

export interface OpenAIPage<R> {
  object: 'page'
  data: { object: 'bucket'; start_time: number; end_time: number; results: R[] }[]
  has_more: boolean
  next_page: string | null
}

export interface OpenAICompletionsResult {
  object: 'organization.usage.completions.result'
  input_tokens: number
  output_tokens: number
  input_cached_tokens?: number | null
  input_audio_tokens?: number | null
  output_audio_tokens?: number | null
  num_model_requests: number
  model?: string | null
}

export interface OpenAICostsResult {
  object: 'organization.costs.result'
  amount?: { value: string; currency: string } | null
  line_item?: string | null
  project_id?: string | null
}

// Anthropic: GET /v1/organizations/usage_report/messages and /v1/organizations/cost_report,
// cursor `page` / `next_page` with `has_more`, RFC 3339 bucket bounds; cost `amount` is a decimal
// string in the currency's lowest unit (cents).
export interface AnthropicPage<R> {
  data: { starting_at: string; ending_at: string; results: R[] }[]
  has_more: boolean
  next_page: string | null
}

export interface AnthropicUsageResult {
  model?: string | null
  uncached_input_tokens: number
  cache_read_input_tokens: number
  cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number } | null
  output_tokens: number
  server_tool_use?: { web_search_requests?: number } | null
}

export interface AnthropicCostResult {
  amount: string
  currency: string
  cost_type?: 'tokens' | 'web_search' | 'code_execution' | null
  description?: string | null
  model?: string | null
  token_type?: string | null
}

// OpenRouter: GET /api/v1/generation?id=… and GET /api/v1/key.
export interface OpenRouterGeneration {
  id: string
  model: string
  created_at: string
  total_cost: string
  upstream_inference_cost?: string | null
  is_byok?: boolean | null
  native_tokens_prompt?: number | null
  native_tokens_completion?: number | null
  native_tokens_cached?: number | null
  native_tokens_reasoning?: number | null
  provider_name?: string | null
}

export interface OpenRouterKey {
  label?: string | null
  usage: string
  usage_daily?: string | null
  byok_usage_daily?: string | null
  limit?: string | null
}

export interface ProviderClients {
  openaiCompletions(key: string, from: Date, to: Date): AsyncIterable<OpenAIPage<OpenAICompletionsResult>>
  openaiCosts(key: string, from: Date, to: Date): AsyncIterable<OpenAIPage<OpenAICostsResult>>
  anthropicUsage(key: string, from: Date, to: Date): AsyncIterable<AnthropicPage<AnthropicUsageResult>>
  anthropicCosts(key: string, from: Date, to: Date): AsyncIterable<AnthropicPage<AnthropicCostResult>>
  /** null when OpenRouter does not know the id (404). */
  openrouterGeneration(key: string, id: string): Promise<OpenRouterGeneration | null>
  openrouterKey(key: string): Promise<OpenRouterKey>
}

export interface ProviderUrls {
  openai: string
  anthropic: string
  openrouter: string
}

const MAX_PAGES = 10_000

export function createProviderClients(urls: ProviderUrls, http: HttpOptions): ProviderClients {
  const base = (url: string) => url.replace(/\/+$/, '')
  const unix = (d: Date) => String(Math.floor(d.getTime() / 1000))

  async function* pages<P extends { has_more: boolean; next_page: string | null }>(
    first: URL,
    headers: Record<string, string>,
    check: (body: unknown) => P,
  ): AsyncIterable<P> {
    let page: string | null = null
    for (let n = 0; n < MAX_PAGES; n++) {
      const url = new URL(first)
      if (page) url.searchParams.set('page', page)
      const body = check(await getJson(url.toString(), headers, http))
      yield body
      if (!body.has_more || !body.next_page) return
      if (body.next_page === page) throw new ProviderHttpError('the provider repeated its page cursor', null)
      page = body.next_page
    }
    throw new ProviderHttpError(`more than ${MAX_PAGES} pages`, null)
  }

  const openaiHeaders = (key: string) => ({ authorization: `Bearer ${key}` })
  const anthropicHeaders = (key: string) => ({ 'x-api-key': key, 'anthropic-version': '2023-06-01' })

  return {
    openaiCompletions(key, from, to) {
      const url = new URL(`${base(urls.openai)}/v1/organization/usage/completions`)
      url.searchParams.set('start_time', unix(from))
      url.searchParams.set('end_time', unix(to))
      url.searchParams.set('bucket_width', '1h')
      url.searchParams.append('group_by', 'model')
      url.searchParams.set('limit', '168')
      return pages(url, openaiHeaders(key), checkPage<OpenAIPage<OpenAICompletionsResult>>('start_time'))
    },
    openaiCosts(key, from, to) {
      const url = new URL(`${base(urls.openai)}/v1/organization/costs`)
      url.searchParams.set('start_time', unix(from))
      url.searchParams.set('end_time', unix(to))
      url.searchParams.set('bucket_width', '1d')
      url.searchParams.append('group_by', 'line_item')
      url.searchParams.set('limit', '180')
      return pages(url, openaiHeaders(key), checkPage<OpenAIPage<OpenAICostsResult>>('start_time'))
    },
    anthropicUsage(key, from, to) {
      const url = new URL(`${base(urls.anthropic)}/v1/organizations/usage_report/messages`)
      url.searchParams.set('starting_at', from.toISOString())
      url.searchParams.set('ending_at', to.toISOString())
      url.searchParams.set('bucket_width', '1h')
      url.searchParams.append('group_by[]', 'model')
      url.searchParams.set('limit', '168')
      return pages(url, anthropicHeaders(key), checkPage<AnthropicPage<AnthropicUsageResult>>('starting_at'))
    },
    anthropicCosts(key, from, to) {
      const url = new URL(`${base(urls.anthropic)}/v1/organizations/cost_report`)
      url.searchParams.set('starting_at', from.toISOString())
      url.searchParams.set('ending_at', to.toISOString())
      url.searchParams.append('group_by[]', 'description')
      url.searchParams.set('limit', '31')
      return pages(url, anthropicHeaders(key), checkPage<AnthropicPage<AnthropicCostResult>>('starting_at'))
    },
    async openrouterGeneration(key, id) {
      const url = new URL(`${base(urls.openrouter)}/api/v1/generation`)
      url.searchParams.set('id', id)
      try {
        const body = (await getJson(url.toString(), openaiHeaders(key), http)) as { data?: OpenRouterGeneration }
        if (!body || typeof body !== 'object' || !body.data || typeof body.data.id !== 'string')
          throw new ProviderHttpError('unexpected generation response: no data.id', null)
        return body.data
      } catch (error) {
        if (error instanceof ProviderHttpError && error.status === 404) return null
        throw error
      }
    },
    async openrouterKey(key) {
      const body = (await getJson(`${base(urls.openrouter)}/api/v1/key`, openaiHeaders(key), http)) as {
        data?: OpenRouterKey
      }
      if (!body || typeof body !== 'object' || !body.data || typeof body.data.usage !== 'string')
        throw new ProviderHttpError('unexpected key response: no data.usage', null)
      return body.data
    },
  }
}

function checkPage<P>(startField: string): (body: unknown) => P & { has_more: boolean; next_page: string | null } {
  return (body) => {
    const page = body as { data?: unknown; has_more?: unknown; next_page?: unknown }
    if (!page || typeof page !== 'object' || !Array.isArray(page.data))
      throw new ProviderHttpError('unexpected report page: no data array', null)
    for (const bucket of page.data as Record<string, unknown>[]) {
      if (!bucket || bucket[startField] === undefined || !Array.isArray(bucket.results))
        throw new ProviderHttpError(`unexpected report bucket: needs ${startField} and results`, null)
    }
    return {
      ...(page as P),
      has_more: page.has_more === true,
      next_page: typeof page.next_page === 'string' ? page.next_page : null,
    }
  }
}
