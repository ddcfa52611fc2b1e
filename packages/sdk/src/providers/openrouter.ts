import type { MeteredUsage } from '../types.ts'
import { record, type UsageCollector } from './common.ts'
import {
  chatCompletion as openaiChatCompletion,
  chatCompletionStream as openaiChatCompletionStream,
  type OpenAIChatCompletionLike,
} from './openai.ts'

/**
 * OpenRouter answers in the OpenAI Chat Completions shape, plus `usage.cost` (what OpenRouter
 * charged, in credits = USD) and `provider` (who served the call). The event's provider is
 * `openrouter` (who was paid) and its model the OpenRouter slug (`openai/gpt-4o`); the charged cost
 * and the upstream provider are kept in metadata as strings (`providerCost`, `upstreamProvider`),
 * so the tenant can reconcile Burnrate's price with OpenRouter's bill.
 */
export interface OpenRouterCompletionLike extends OpenAIChatCompletionLike {
  provider?: string
  usage?: (OpenAIChatCompletionLike['usage'] & { cost?: number; is_byok?: boolean }) | null
}

function extras(body: Record<string, unknown>): Pick<MeteredUsage, 'metadata'> {
  const usage = record(body.usage)
  const metadata: Record<string, unknown> = {}
  // JSON numbers like 0.000123 print back exactly as written; String() keeps them as decimal text.
  if (typeof usage.cost === 'number') metadata.providerCost = String(usage.cost)
  if (typeof body.provider === 'string') metadata.upstreamProvider = body.provider
  return Object.keys(metadata).length > 0 ? { metadata } : {}
}

export function chatCompletion(response: OpenRouterCompletionLike): MeteredUsage {
  return {
    ...openaiChatCompletion(response, { provider: 'openrouter' }),
    ...extras(response as unknown as Record<string, unknown>),
  }
}

/** OpenRouter always sends usage in the last chunk of a stream. */
export function chatCompletionStream(): UsageCollector<unknown> {
  const inner = openaiChatCompletionStream({ provider: 'openrouter' })
  let provider: string | undefined
  return {
    push(chunk) {
      inner.push(chunk)
      const c = record(chunk)
      if (typeof c.provider === 'string') provider = c.provider
    },
    usage() {
      const usage = inner.usage()
      if (!usage) return null
      return { ...usage, ...extras({ ...inner.lastUsageChunk(), provider }) }
    },
  }
}
