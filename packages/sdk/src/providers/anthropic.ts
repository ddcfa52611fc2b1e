import type { MeteredUsage } from '../types.ts'
import { count, MissingUsageError, record, stampOnce, unitsOf, type UsageCollector } from './common.ts'

export interface AnthropicUsage {
  input_tokens?: number
  output_tokens?: number
  cache_creation_input_tokens?: number | null
  cache_read_input_tokens?: number | null
  /** Cache writes by TTL: a 1-hour write costs more than a 5-minute one (2× vs 1.25× input). */
  cache_creation?: { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null } | null
  server_tool_use?: { web_search_requests?: number | null; web_fetch_requests?: number | null } | null
  service_tier?: string | null
}

export interface AnthropicMessageLike {
  id: string
  model: string
  usage?: AnthropicUsage | null
}

/**
 * Anthropic's `input_tokens` counts only the uncached part of the prompt: cache reads and cache
 * writes come on top. Burnrate's inputTokens counts all of them, so they are summed here.
 * `cacheWriteTokens` counts every write; the 1-hour ones are also reported as the unit
 * `cache_write_1h_tokens` (a part of the writes), so they are priced at the 1-hour rate.
 * Anthropic folds extended-thinking tokens into `output_tokens` without a separate count.
 * Web searches are billed per search (`web_searches`); web fetches cost only their tokens.
 */
export function usageFields(usage: AnthropicUsage) {
  const cacheRead = count(usage.cache_read_input_tokens)
  const byTtl = usage.cache_creation
  const fiveMinutes = count(byTtl?.ephemeral_5m_input_tokens)
  const oneHour = count(byTtl?.ephemeral_1h_input_tokens)
  // The total is authoritative; the breakdown alone (a partial stream event) still counts.
  const cacheWrite =
    usage.cache_creation_input_tokens == null ? fiveMinutes + oneHour : count(usage.cache_creation_input_tokens)
  return {
    inputTokens: count(usage.input_tokens) + cacheRead + cacheWrite,
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    ...unitsOf({
      cache_write_1h_tokens: Math.min(oneHour, cacheWrite),
      web_searches: count(usage.server_tool_use?.web_search_requests),
    }),
  }
}

/**
 * Usage of a Messages API response (`client.messages.create`). Anthropic gives no timestamp: the
 * time this response object was first mapped (see `stampOnce`), unless `options.timestamp` says.
 */
export function message(msg: AnthropicMessageLike, options: { timestamp?: Date } = {}): MeteredUsage {
  if (!msg.usage) throw new MissingUsageError(`message ${msg.id} has no usage`)
  return {
    id: msg.id,
    model: msg.model,
    provider: 'anthropic',
    timestamp: stampOnce(msg, options.timestamp),
    ...usageFields(msg.usage),
  }
}

/**
 * Follows a streamed message: `message_start` carries the id, model and input-side usage;
 * each `message_delta` carries cumulative usage (output_tokens, and on newer API versions the
 * input-side counts again). Later numbers replace earlier ones field by field.
 */
export function messageStream(options: { timestamp?: Date } = {}): UsageCollector<unknown> {
  let id: string | null = null
  let model: string | null = null
  const usage: AnthropicUsage = {}
  const merge = (u: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(u))
      if (value !== null && value !== undefined) (usage as Record<string, unknown>)[key] = value
  }
  const timestamp = options.timestamp ?? new Date()
  return {
    push(event) {
      const e = record(event)
      if (e.type === 'message_start') {
        const msg = record(e.message)
        if (typeof msg.id === 'string') id = msg.id
        if (typeof msg.model === 'string') model = msg.model
        merge(record(msg.usage))
      } else if (e.type === 'message_delta') {
        merge(record(e.usage))
      }
    },
    usage() {
      if (!id || !model) return null
      return { id, model, provider: 'anthropic', timestamp: timestamp.toISOString(), ...usageFields(usage) }
    },
  }
}
