import { Decimal } from '../money/decimal.ts'
import type {
  AnthropicCostResult,
  AnthropicPage,
  AnthropicUsageResult,
  OpenAICompletionsResult,
  OpenAICostsResult,
  OpenAIPage,
  OpenRouterGeneration,
  OpenRouterKey,
} from './clients.ts'

/**
 * Provider reports turned into one shape (pure). Quantities use Burnrate's event vocabulary,
 * gross like an event's fields: `input` counts every input token (cached and cache writes
 * included), `cache_read` and `cache_write` are parts of it, `output` includes reasoning.
 * Costs use the usage type of the priced line they compare with (`input` = uncached input).
 */
export interface ReportedRow {
  source: 'usage' | 'cost' | 'generation' | 'credits'
  bucketStart: Date
  /** '1h', '1d', or 'gen' (one OpenRouter generation, placed in its hour). */
  bucketWidth: string
  model: string
  usageType: string
  /** The provider's own line (cost line item, generation id); '' for none. */
  line: string
  quantity: string | null
  cost: string | null
  currency: string
}

export class ReportShapeError extends Error {
  override readonly name = 'ReportShapeError'
}

const HOUR = 3_600_000
const DAY = 86_400_000

function count(value: unknown, field: string): number {
  if (value === undefined || value === null) return 0
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new ReportShapeError(`${field} must be a non-negative integer, got ${JSON.stringify(value)}`)
  return value
}

function money(value: unknown, field: string): Decimal {
  if (typeof value !== 'string' && typeof value !== 'number')
    throw new ReportShapeError(`${field} must be a decimal, got ${JSON.stringify(value)}`)
  const text = String(value).trim()
  if (!/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text))
    throw new ReportShapeError(`${field} must be a decimal, got ${JSON.stringify(value)}`)
  return new Decimal(text)
}

function widthOf(startMs: number, endMs: number): string {
  const span = endMs - startMs
  if (span === HOUR) return '1h'
  if (span === DAY) return '1d'
  if (span === 60_000) return '1m'
  throw new ReportShapeError(`unsupported bucket of ${span / 1000} s`)
}

function instant(value: unknown, field: string): number {
  const ms = typeof value === 'number' ? value * 1000 : typeof value === 'string' ? Date.parse(value) : NaN
  if (!Number.isFinite(ms)) throw new ReportShapeError(`${field} is not a time: ${JSON.stringify(value)}`)
  return ms
}

function quantities(
  base: Omit<ReportedRow, 'usageType' | 'quantity' | 'cost'>,
  values: Record<string, number>,
): ReportedRow[] {
  const rows: ReportedRow[] = []
  for (const [usageType, quantity] of Object.entries(values)) {
    if (quantity > 0) rows.push({ ...base, usageType, quantity: String(quantity), cost: null })
  }
  return rows
}

export function openaiUsageRows(page: OpenAIPage<OpenAICompletionsResult>): ReportedRow[] {
  const rows: ReportedRow[] = []
  for (const bucket of page.data) {
    const start = instant(bucket.start_time, 'start_time')
    const width = widthOf(start, instant(bucket.end_time, 'end_time'))
    for (const r of bucket.results) {
      rows.push(
        ...quantities(
          {
            source: 'usage',
            bucketStart: new Date(start),
            bucketWidth: width,
            model: r.model ?? '',
            line: '',
            currency: 'USD',
          },
          {
            input: count(r.input_tokens, 'input_tokens'),
            cache_read: count(r.input_cached_tokens, 'input_cached_tokens'),
            output: count(r.output_tokens, 'output_tokens'),
            input_audio_tokens: count(r.input_audio_tokens, 'input_audio_tokens'),
            output_audio_tokens: count(r.output_audio_tokens, 'output_audio_tokens'),
            requests: count(r.num_model_requests, 'num_model_requests'),
          },
        ),
      )
    }
  }
  return rows
}

const OPENAI_LINE_TYPES: Readonly<Record<string, string>> = {
  input: 'input',
  'cached input': 'cache_read',
  cached_input: 'cache_read',
  output: 'output',
  'audio input': 'input_audio_tokens',
  'audio output': 'output_audio_tokens',
}

/** An OpenAI cost line item such as "gpt-4o-2024-08-06, input": its model and usage type, when readable. */
export function parseOpenAILineItem(lineItem: string): { model: string; usageType: string } {
  const match = /^(.+?),\s*([a-z_ ]+)$/i.exec(lineItem.trim())
  const usageType = match ? OPENAI_LINE_TYPES[match[2]!.toLowerCase()] : undefined
  if (match && usageType) return { model: match[1]!.trim(), usageType }
  return { model: '', usageType: 'other' }
}

export function openaiCostRows(page: OpenAIPage<OpenAICostsResult>): ReportedRow[] {
  const rows: ReportedRow[] = []
  for (const bucket of page.data) {
    const start = instant(bucket.start_time, 'start_time')
    const width = widthOf(start, instant(bucket.end_time, 'end_time'))
    for (const r of bucket.results) {
      if (!r.amount) continue
      const line = r.line_item ?? ''
      const { model, usageType } = line ? parseOpenAILineItem(line) : { model: '', usageType: 'other' }
      rows.push({
        source: 'cost',
        bucketStart: new Date(start),
        bucketWidth: width,
        model,
        usageType,
        line,
        quantity: null,
        cost: money(r.amount.value, 'amount.value').toFixed(),
        currency: (r.amount.currency || 'usd').toUpperCase(),
      })
    }
  }
  return rows
}

export function anthropicUsageRows(page: AnthropicPage<AnthropicUsageResult>): ReportedRow[] {
  const rows: ReportedRow[] = []
  for (const bucket of page.data) {
    const start = instant(bucket.starting_at, 'starting_at')
    const width = widthOf(start, instant(bucket.ending_at, 'ending_at'))
    for (const r of bucket.results) {
      const uncached = count(r.uncached_input_tokens, 'uncached_input_tokens')
      const cacheRead = count(r.cache_read_input_tokens, 'cache_read_input_tokens')
      const cacheWrite =
        count(r.cache_creation?.ephemeral_5m_input_tokens, 'cache_creation.ephemeral_5m_input_tokens') +
        count(r.cache_creation?.ephemeral_1h_input_tokens, 'cache_creation.ephemeral_1h_input_tokens')
      rows.push(
        ...quantities(
          {
            source: 'usage',
            bucketStart: new Date(start),
            bucketWidth: width,
            model: r.model ?? '',
            line: '',
            currency: 'USD',
          },
          {
            input: uncached + cacheRead + cacheWrite,
            cache_read: cacheRead,
            cache_write: cacheWrite,
            output: count(r.output_tokens, 'output_tokens'),
            web_searches: count(r.server_tool_use?.web_search_requests, 'server_tool_use.web_search_requests'),
          },
        ),
      )
    }
  }
  return rows
}

const ANTHROPIC_TOKEN_TYPES: Readonly<Record<string, string>> = {
  uncached_input_tokens: 'input',
  output_tokens: 'output',
  cache_read_input_tokens: 'cache_read',
  'cache_creation.ephemeral_5m_input_tokens': 'cache_write',
  'cache_creation.ephemeral_1h_input_tokens': 'cache_write',
}

export function anthropicCostRows(page: AnthropicPage<AnthropicCostResult>): ReportedRow[] {
  const rows: ReportedRow[] = []
  for (const bucket of page.data) {
    const start = instant(bucket.starting_at, 'starting_at')
    const width = widthOf(start, instant(bucket.ending_at, 'ending_at'))
    for (const r of bucket.results) {
      const usageType =
        r.cost_type === 'web_search'
          ? 'web_searches'
          : r.cost_type === 'tokens' || r.cost_type == null
            ? (ANTHROPIC_TOKEN_TYPES[r.token_type ?? ''] ?? 'other')
            : 'other'
      rows.push({
        source: 'cost',
        bucketStart: new Date(start),
        bucketWidth: width,
        model: usageType === 'other' ? '' : (r.model ?? ''),
        usageType,
        line: r.description ?? [r.model, r.cost_type, r.token_type].filter(Boolean).join(' '),
        quantity: null,
        // The cost report states amounts in the currency's lowest unit (cents), as decimal text.
        cost: money(r.amount, 'amount').dividedBy(100).toFixed(),
        currency: (r.currency || 'USD').toUpperCase(),
      })
    }
  }
  return rows
}

/**
 * One OpenRouter generation: native token counts and what it cost. For BYOK calls the inference
 * was paid on the tenant's own provider key: the cost compared is the upstream inference cost.
 */
export function openrouterGenerationRows(gen: OpenRouterGeneration): ReportedRow[] {
  const created = instant(gen.created_at, 'created_at')
  const base = {
    source: 'generation' as const,
    bucketStart: new Date(Math.floor(created / HOUR) * HOUR),
    bucketWidth: 'gen',
    model: gen.model,
    line: gen.id,
    currency: 'USD',
  }
  const prompt = count(gen.native_tokens_prompt, 'native_tokens_prompt')
  const rows = quantities(base, {
    input: prompt,
    cache_read: count(gen.native_tokens_cached, 'native_tokens_cached'),
    output: count(gen.native_tokens_completion, 'native_tokens_completion'),
    requests: 1,
  })
  const cost =
    gen.is_byok && gen.upstream_inference_cost != null
      ? money(gen.upstream_inference_cost, 'upstream_inference_cost')
      : money(gen.total_cost, 'total_cost')
  rows.push({ ...base, usageType: 'total', quantity: null, cost: cost.toFixed() })
  return rows
}

/** The key's credit usage today (UTC), as of now: revised through the day, final once the day is over. */
export function openrouterCreditRows(key: OpenRouterKey, now: Date): ReportedRow[] {
  if (key.usage_daily == null) return []
  return [
    {
      source: 'credits',
      bucketStart: new Date(Math.floor(now.getTime() / DAY) * DAY),
      bucketWidth: '1d',
      model: '*',
      usageType: 'credits',
      line: 'usage_daily',
      quantity: null,
      cost: money(key.usage_daily, 'usage_daily').toFixed(),
      currency: 'USD',
    },
  ]
}

/** The identity of a provider bucket, across revisions. */
export const bucketKey = (
  r: Pick<ReportedRow, 'source' | 'bucketStart' | 'bucketWidth' | 'model' | 'usageType' | 'line'>,
) => [r.source, r.bucketStart.toISOString(), r.bucketWidth, r.model, r.usageType, r.line].join('\u0001')

/** What a revision says, canonical: equal content, equal hash (decimals compared by value). */
export function contentHash(r: Pick<ReportedRow, 'quantity' | 'cost' | 'currency'>): string {
  const norm = (v: string | null) => (v === null ? '' : new Decimal(v).toFixed())
  return `q=${norm(r.quantity)};c=${norm(r.cost)};${r.currency}`
}

/** Rows reported twice in one import (a provider repeating a bucket across pages) are summed into one. */
export function mergeRows(rows: readonly ReportedRow[]): ReportedRow[] {
  const merged = new Map<string, ReportedRow>()
  for (const row of rows) {
    const key = bucketKey(row)
    const seen = merged.get(key)
    if (!seen) {
      merged.set(key, { ...row })
      continue
    }
    const add = (a: string | null, b: string | null) =>
      a === null ? b : b === null ? a : new Decimal(a).plus(b).toFixed()
    seen.quantity = add(seen.quantity, row.quantity)
    seen.cost = add(seen.cost, row.cost)
  }
  return [...merged.values()]
}
