import type { MeteredUsage } from '../types.ts'
import { count, MissingUsageError, record, stampOnce, unitsOf, type UsageCollector } from './common.ts'

/** One entry of a by-modality breakdown (`promptTokensDetails`, `cacheTokensDetails`, …). */
export interface GeminiModalityTokenCount {
  modality?: string
  tokenCount?: number
}

export interface GeminiUsageMetadata {
  promptTokenCount?: number
  candidatesTokenCount?: number
  thoughtsTokenCount?: number
  cachedContentTokenCount?: number
  toolUsePromptTokenCount?: number
  totalTokenCount?: number
  promptTokensDetails?: GeminiModalityTokenCount[] | null
  cacheTokensDetails?: GeminiModalityTokenCount[] | null
  candidatesTokensDetails?: GeminiModalityTokenCount[] | null
  toolUsePromptTokensDetails?: GeminiModalityTokenCount[] | null
}

export interface GeminiResponseLike {
  responseId?: string
  modelVersion?: string
  createTime?: string
  usageMetadata?: GeminiUsageMetadata | null
}

/**
 * Tokens of one modality in a breakdown. DOCUMENT (PDF pages) is billed as images, as
 * @pydantic/genai-prices reads it.
 */
function modality(details: GeminiModalityTokenCount[] | null | undefined, name: 'AUDIO' | 'IMAGE' | 'VIDEO'): number {
  if (!Array.isArray(details)) return 0
  let total = 0
  for (const d of details)
    if (d?.modality === name || (name === 'IMAGE' && d?.modality === 'DOCUMENT')) total += count(d.tokenCount)
  return total
}

/**
 * Gemini's `promptTokenCount` already includes the cached content; `candidatesTokenCount` does NOT
 * include thinking: totalTokenCount = prompt + candidates + thoughts + toolUsePrompt. Thoughts are
 * billed as output, so outputTokens = candidates + thoughts (reasoningTokens = thoughts), and the
 * tool-use prompt (results of tool calls fed back to the model) is input.
 *
 * Audio, image and video tokens cost differently from text (gemini-2.5-flash audio input: 3.3×),
 * so the by-modality breakdowns become units that are parts of input or output: prompt and
 * tool-use prompt → `input_audio_tokens` / `input_image_tokens` / `input_video_tokens`, cached
 * content → `cache_audio_read_tokens` / `cache_image_read_tokens`, candidates →
 * `output_audio_tokens` / `output_image_tokens` / `output_video_tokens`. Cached video has no price
 * of its own anywhere, so it stays plain cache reads.
 */
export function usageFields(usage: GeminiUsageMetadata) {
  const thoughts = count(usage.thoughtsTokenCount)
  const input = count(usage.promptTokenCount) + count(usage.toolUsePromptTokenCount)
  const output = count(usage.candidatesTokenCount) + thoughts
  const cacheRead = Math.min(count(usage.cachedContentTokenCount), input)
  const inputOf = (m: 'AUDIO' | 'IMAGE' | 'VIDEO') =>
    modality(usage.promptTokensDetails, m) + modality(usage.toolUsePromptTokensDetails, m)
  const audioIn = Math.min(inputOf('AUDIO'), input)
  const imageIn = Math.min(inputOf('IMAGE'), input - audioIn)
  const videoIn = Math.min(inputOf('VIDEO'), input - audioIn - imageIn)
  const cachedAudio = Math.min(modality(usage.cacheTokensDetails, 'AUDIO'), cacheRead, audioIn)
  const cachedImage = Math.min(modality(usage.cacheTokensDetails, 'IMAGE'), cacheRead - cachedAudio, imageIn)
  const audioOut = Math.min(modality(usage.candidatesTokensDetails, 'AUDIO'), output)
  const imageOut = Math.min(modality(usage.candidatesTokensDetails, 'IMAGE'), output - audioOut)
  const videoOut = Math.min(modality(usage.candidatesTokensDetails, 'VIDEO'), output - audioOut - imageOut)
  return {
    inputTokens: input,
    outputTokens: output,
    cacheReadTokens: cacheRead,
    reasoningTokens: thoughts,
    ...unitsOf({
      input_audio_tokens: audioIn,
      input_image_tokens: imageIn,
      input_video_tokens: videoIn,
      cache_audio_read_tokens: cachedAudio,
      cache_image_read_tokens: cachedImage,
      output_audio_tokens: audioOut,
      output_image_tokens: imageOut,
      output_video_tokens: videoOut,
    }),
  }
}

/**
 * Usage of a `generateContent` response. The id is `responseId`; pass `id` when your client
 * strips it, and `model` when the response has no `modelVersion`.
 */
export function generateContent(
  response: GeminiResponseLike,
  options: { id?: string; model?: string; timestamp?: Date } = {},
): MeteredUsage {
  if (!response.usageMetadata) throw new MissingUsageError('Gemini response has no usageMetadata')
  const id = options.id ?? response.responseId
  const model = options.model ?? response.modelVersion
  if (!id) throw new MissingUsageError('Gemini response has no responseId: pass options.id (a stable id for this call)')
  if (!model) throw new MissingUsageError('Gemini response has no modelVersion: pass options.model')
  // Vertex AI sends createTime; the Gemini API sends no time (see stampOnce).
  const timestamp = options.timestamp ?? (response.createTime ? new Date(response.createTime) : undefined)
  return {
    id,
    model,
    provider: 'google',
    timestamp: stampOnce(response, timestamp),
    ...usageFields(response.usageMetadata),
  }
}

/** Follows `streamGenerateContent`: each chunk may carry usageMetadata; the last one is final. */
export function generateContentStream(
  options: { id?: string; model?: string; timestamp?: Date } = {},
): UsageCollector<unknown> {
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
