import type { MeteredUsage } from '../types.ts'
import { count, isoFromUnixSeconds, MissingUsageError, record, type UsageCollector } from './common.ts'

/** The parts of an OpenAI `usage` object metering reads (Chat Completions). */
export interface OpenAIChatUsage {
  prompt_tokens?: number
  completion_tokens?: number
  total_tokens?: number
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number; cache_write_tokens?: number } | null
  completion_tokens_details?: { reasoning_tokens?: number; audio_tokens?: number } | null
}

export interface OpenAIChatCompletionLike {
  id: string
  model: string
  created?: number
  usage?: OpenAIChatUsage | null
}

export interface OpenAIResponseLike {
  id: string
  model: string
  created_at?: number
  usage?: {
    input_tokens?: number
    output_tokens?: number
    total_tokens?: number
    input_tokens_details?: { cached_tokens?: number } | null
    output_tokens_details?: { reasoning_tokens?: number } | null
  } | null
}

/**
 * Chat Completions usage → Burnrate's convention. OpenAI's `prompt_tokens` already counts cached
 * tokens and `completion_tokens` already counts reasoning tokens, as Burnrate's do: nothing to add.
 */
export function chatUsageFields(usage: OpenAIChatUsage) {
  return {
    inputTokens: count(usage.prompt_tokens),
    outputTokens: count(usage.completion_tokens),
    cacheReadTokens: count(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteTokens: count(usage.prompt_tokens_details?.cache_write_tokens),
    reasoningTokens: count(usage.completion_tokens_details?.reasoning_tokens),
  }
}

/** Usage of a Chat Completions response (`client.chat.completions.create`). */
export function chatCompletion(response: OpenAIChatCompletionLike, options: { provider?: string } = {}): MeteredUsage {
  if (!response.usage) throw new MissingUsageError(`chat completion ${response.id} has no usage`)
  return {
    id: response.id,
    model: response.model,
    provider: options.provider ?? 'openai',
    timestamp: isoFromUnixSeconds(response.created),
    ...chatUsageFields(response.usage),
  }
}

/** Usage of a Responses API response (`client.responses.create`). */
export function response(res: OpenAIResponseLike): MeteredUsage {
  const usage = res.usage
  if (!usage) throw new MissingUsageError(`response ${res.id} has no usage`)
  return {
    id: res.id,
    model: res.model,
    provider: 'openai',
    timestamp: isoFromUnixSeconds(res.created_at),
    inputTokens: count(usage.input_tokens),
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: count(usage.input_tokens_details?.cached_tokens),
    reasoningTokens: count(usage.output_tokens_details?.reasoning_tokens),
  }
}

/**
 * Request parameters with `stream_options.include_usage` set: without it a streamed Chat
 * Completion never reports usage and cannot be metered.
 */
export function withStreamUsage<P extends { stream_options?: Record<string, unknown> | null }>(params: P): P & { stream_options: { include_usage: true } } {
  return { ...params, stream_options: { ...(params.stream_options ?? {}), include_usage: true } }
}

/**
 * Follows a streamed Chat Completion. Usage arrives in the last chunk (empty `choices`), only with
 * `stream_options: { include_usage: true }` — see `withStreamUsage`.
 */
export function chatCompletionStream(options: { provider?: string } = {}): UsageCollector<unknown> & { lastUsageChunk(): Record<string, unknown> | null } {
  let id: string | null = null
  let model: string | null = null
  let created: unknown
  let usageChunk: Record<string, unknown> | null = null
  return {
    push(chunk) {
      const c = record(chunk)
      if (typeof c.id === 'string' && !id) id = c.id
      if (typeof c.model === 'string') model = c.model
      if (created === undefined) created = c.created
      if (c.usage && typeof c.usage === 'object') usageChunk = c
    },
    usage() {
      if (!id || !model || !usageChunk) return null
      return { id, model, provider: options.provider ?? 'openai', timestamp: isoFromUnixSeconds(created), ...chatUsageFields(usageChunk.usage as OpenAIChatUsage) }
    },
    lastUsageChunk: () => usageChunk,
  }
}

/** Follows a streamed Responses API call: usage is in the `response.completed` event's response. */
export function responseStream(): UsageCollector<unknown> {
  let seen: OpenAIResponseLike | null = null
  return {
    push(event) {
      const e = record(event)
      const res = record(e.response)
      if (typeof res.id === 'string' && typeof res.model === 'string') {
        // response.created / in_progress carry the id early; completed / incomplete carry usage.
        if (!seen || res.usage) seen = res as unknown as OpenAIResponseLike
      }
    },
    usage() {
      return seen?.usage ? response(seen) : null
    },
  }
}
