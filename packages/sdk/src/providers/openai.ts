import type { MeteredUsage } from '../types.ts'
import {
  count,
  isoFromUnixSeconds,
  MissingUsageError,
  record,
  stampOnce,
  unitsOf,
  type UsageCollector,
} from './common.ts'

/** The parts of an OpenAI `usage` object metering reads (Chat Completions). */
export interface OpenAIChatUsage {
  prompt_tokens?: number
  completion_tokens?: number
  total_tokens?: number
  prompt_tokens_details?: {
    cached_tokens?: number | null
    audio_tokens?: number | null
    cache_write_tokens?: number | null
  } | null
  completion_tokens_details?: {
    reasoning_tokens?: number | null
    audio_tokens?: number | null
    accepted_prediction_tokens?: number | null
    rejected_prediction_tokens?: number | null
  } | null
}

export interface OpenAIChatCompletionLike {
  id: string
  model: string
  created?: number
  usage?: OpenAIChatUsage | null
}

/** Token counts by modality, as the Responses and Realtime APIs break them down. */
interface ModalityDetails {
  text_tokens?: number | null
  audio_tokens?: number | null
  image_tokens?: number | null
}

export interface OpenAIResponseUsage {
  input_tokens?: number
  output_tokens?: number
  total_tokens?: number
  input_tokens_details?:
    | (ModalityDetails & {
        cached_tokens?: number | null
        cache_write_tokens?: number | null
        cached_tokens_details?: ModalityDetails | null
      })
    | null
  output_tokens_details?: (ModalityDetails & { reasoning_tokens?: number | null }) | null
}

export interface OpenAIResponseLike {
  id: string
  model: string
  created_at?: number
  usage?: OpenAIResponseUsage | null
}

/**
 * Chat Completions usage → Burnrate's convention. OpenAI's `prompt_tokens` already counts cached
 * and audio tokens and `completion_tokens` already counts reasoning and audio tokens, as Burnrate's
 * do. Audio tokens (gpt-audio, gpt-4o-audio-preview) cost several times text tokens: they are
 * reported as the units `input_audio_tokens` / `output_audio_tokens`, parts of input and output.
 * Rejected prediction tokens are already in `completion_tokens` and billed as output.
 */
export function chatUsageFields(usage: OpenAIChatUsage) {
  const input = count(usage.prompt_tokens)
  const output = count(usage.completion_tokens)
  return {
    inputTokens: input,
    outputTokens: output,
    cacheReadTokens: count(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteTokens: count(usage.prompt_tokens_details?.cache_write_tokens),
    reasoningTokens: count(usage.completion_tokens_details?.reasoning_tokens),
    ...unitsOf({
      input_audio_tokens: Math.min(count(usage.prompt_tokens_details?.audio_tokens), input),
      output_audio_tokens: Math.min(count(usage.completion_tokens_details?.audio_tokens), output),
    }),
  }
}

/**
 * Responses API and Realtime API usage (same names; the Realtime API spells the details
 * `input_token_details`). `input_tokens` counts cached and every modality; the cached part is
 * broken down by modality too (`cached_tokens_details`), so cached audio and images are priced at
 * their own cache rates.
 */
export function responseUsageFields(
  usage: OpenAIResponseUsage & { input_token_details?: unknown; output_token_details?: unknown },
) {
  const inDetails = record(usage.input_tokens_details ?? usage.input_token_details) as NonNullable<
    OpenAIResponseUsage['input_tokens_details']
  >
  const outDetails = record(usage.output_tokens_details ?? usage.output_token_details) as NonNullable<
    OpenAIResponseUsage['output_tokens_details']
  >
  const cachedDetails = record(inDetails.cached_tokens_details) as ModalityDetails
  const input = count(usage.input_tokens)
  const output = count(usage.output_tokens)
  const cacheRead = Math.min(count(inDetails.cached_tokens), input)
  const audioIn = Math.min(count(inDetails.audio_tokens), input)
  const imageIn = Math.min(count(inDetails.image_tokens), input - audioIn)
  const cachedAudio = Math.min(count(cachedDetails.audio_tokens), cacheRead, audioIn)
  const cachedImage = Math.min(count(cachedDetails.image_tokens), cacheRead - cachedAudio, imageIn)
  return {
    inputTokens: input,
    outputTokens: output,
    cacheReadTokens: cacheRead,
    ...(count(inDetails.cache_write_tokens) > 0
      ? { cacheWriteTokens: Math.min(count(inDetails.cache_write_tokens), input - cacheRead) }
      : {}),
    reasoningTokens: Math.min(count(outDetails.reasoning_tokens), output),
    ...unitsOf({
      input_audio_tokens: audioIn,
      cache_audio_read_tokens: cachedAudio,
      input_image_tokens: imageIn,
      cache_image_read_tokens: cachedImage,
      output_audio_tokens: Math.min(count(outDetails.audio_tokens), output),
      output_image_tokens: Math.min(count(outDetails.image_tokens), output),
    }),
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
    ...responseUsageFields(usage),
  }
}

/**
 * Usage of a Realtime API `response.done` server event (gpt-realtime). Its response names no model
 * and no time: pass the session's `model`; the time is when this event object was first mapped.
 */
export function realtimeResponseDone(event: unknown, options: { model: string; timestamp?: Date }): MeteredUsage {
  const res = record(record(event).response)
  if (typeof res.id !== 'string')
    throw new MissingUsageError('Realtime event has no response.id (expected a response.done event)')
  if (!res.usage || typeof res.usage !== 'object')
    throw new MissingUsageError(`realtime response ${res.id} has no usage`)
  return {
    id: res.id,
    model: options.model,
    provider: 'openai',
    timestamp: stampOnce(res, options.timestamp),
    ...responseUsageFields(res.usage as OpenAIResponseUsage),
  }
}

/**
 * Request parameters with `stream_options.include_usage` set: without it a streamed Chat
 * Completion never reports usage and cannot be metered. `stream` is in the constraint so that
 * `stream: true` keeps its literal type and the client's streaming overload is chosen (a constraint
 * of optional properties only made TypeScript check `{ model, messages, stream }` against it: TS2353).
 */
export function withStreamUsage<P extends { stream?: boolean | null; stream_options?: Record<string, unknown> | null }>(
  params: P,
): P & { stream_options: { include_usage: true } } {
  return { ...params, stream_options: { ...(params.stream_options ?? {}), include_usage: true } }
}

/**
 * Follows a streamed Chat Completion. Usage arrives in the last chunk (empty `choices`), only with
 * `stream_options: { include_usage: true }` — see `withStreamUsage`.
 */
export function chatCompletionStream(
  options: { provider?: string } = {},
): UsageCollector<unknown> & { lastUsageChunk(): Record<string, unknown> | null } {
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
      return {
        id,
        model,
        provider: options.provider ?? 'openai',
        timestamp: isoFromUnixSeconds(created),
        ...chatUsageFields(usageChunk.usage as OpenAIChatUsage),
      }
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
