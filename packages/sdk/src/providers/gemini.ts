import type { MeteredUsage } from '../types.ts'
import { count, MissingUsageError, record, stampOnce, type UsageCollector } from './common.ts'

export interface GeminiUsageMetadata {
  promptTokenCount?: number
  candidatesTokenCount?: number
  thoughtsTokenCount?: number
  cachedContentTokenCount?: number
  toolUsePromptTokenCount?: number
  totalTokenCount?: number
}

export interface GeminiResponseLike {
  responseId?: string
  modelVersion?: string
  createTime?: string
  usageMetadata?: GeminiUsageMetadata | null
}

/**
 * Gemini's `promptTokenCount` already includes the cached content; `candidatesTokenCount` does NOT
 * include thinking: totalTokenCount = prompt + candidates + thoughts + toolUsePrompt. Thoughts are
 * billed as output, so outputTokens = candidates + thoughts (reasoningTokens = thoughts), and the
 * tool-use prompt (results of tool calls fed back to the model) is input.
 */
export function usageFields(usage: GeminiUsageMetadata) {
  const thoughts = count(usage.thoughtsTokenCount)
  return {
    inputTokens: count(usage.promptTokenCount) + count(usage.toolUsePromptTokenCount),
    outputTokens: count(usage.candidatesTokenCount) + thoughts,
    cacheReadTokens: count(usage.cachedContentTokenCount),
    reasoningTokens: thoughts,
  }
}

/**
 * Usage of a `generateContent` response. The id is `responseId`; pass `id` when your client
 * strips it, and `model` when the response has no `modelVersion`.
 */
export function generateContent(response: GeminiResponseLike, options: { id?: string; model?: string; timestamp?: Date } = {}): MeteredUsage {
  if (!response.usageMetadata) throw new MissingUsageError('Gemini response has no usageMetadata')
  const id = options.id ?? response.responseId
  const model = options.model ?? response.modelVersion
  if (!id) throw new MissingUsageError('Gemini response has no responseId: pass options.id (a stable id for this call)')
  if (!model) throw new MissingUsageError('Gemini response has no modelVersion: pass options.model')
  // Vertex AI sends createTime; the Gemini API sends no time (see stampOnce).
  const timestamp = options.timestamp ?? (response.createTime ? new Date(response.createTime) : undefined)
  return { id, model, provider: 'google', timestamp: stampOnce(response, timestamp), ...usageFields(response.usageMetadata) }
}

/** Follows `streamGenerateContent`: each chunk may carry usageMetadata; the last one is final. */
export function generateContentStream(options: { id?: string; model?: string; timestamp?: Date } = {}): UsageCollector<unknown> {
  // One stream, one time: usage() asked twice answers the same event.
  const started = new Date()
  let last: GeminiResponseLike | null = null
  let responseId: string | undefined
  let modelVersion: string | undefined
  return {
    push(chunk) {
      const c = record(chunk)
      if (typeof c.responseId === 'string') responseId = c.responseId
      if (typeof c.modelVersion === 'string') modelVersion = c.modelVersion
      if (c.usageMetadata && typeof c.usageMetadata === 'object') last = c as GeminiResponseLike
    },
    usage() {
      if (!last) return null
      try {
        const timestamp = options.timestamp ?? (last.createTime ? new Date(last.createTime) : started)
        return generateContent({ ...last, responseId, modelVersion }, { ...options, timestamp })
      } catch {
        return null
      }
    },
  }
}
