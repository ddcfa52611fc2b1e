import { randomUUID } from 'node:crypto'
import type { Meter } from '../meter.ts'
import type { MeteredUsage, UsageEvent } from '../types.ts'
import { usageFields as anthropicUsageFields } from './anthropic.ts'
import { count, record } from './common.ts'
import { usageFields as geminiUsageFields } from './gemini.ts'
import { chatUsageFields, responseUsageFields } from './openai.ts'

/*
 * Vercel AI SDK middleware, typed structurally so the SDK does not depend on `ai`. It follows the
 * LanguageModelV2Middleware / V3 shape (`wrapGenerate`, `wrapStream`) that `wrapLanguageModel`
 * accepts, and reads both usage shapes:
 *   V2 (ai 5):  { inputTokens, outputTokens, totalTokens, reasoningTokens?, cachedInputTokens? }
 *   V3 (ai 6):  { inputTokens: { total, noCache, cacheRead, cacheWrite }, outputTokens: { total, text, reasoning } }
 */

export interface AiSdkModelLike {
  provider: string
  modelId: string
}

export interface AiSdkCallOptionsLike {
  providerOptions?: Record<string, Record<string, unknown> | undefined>
}

interface GenerateResultLike {
  usage?: unknown
  response?: { id?: string; modelId?: string; timestamp?: Date } | undefined
  providerMetadata?: Record<string, Record<string, unknown> | undefined>
}

interface StreamResultLike {
  stream: ReadableStream<unknown>
}

export interface BurnrateMiddlewareOptions {
  meter: Pick<Meter, 'record'>
  /** The customer of every call, or a function of the call; a call can also pass `providerOptions: { burnrate: { customerId } }`. */
  customerId?: string | ((params: AiSdkCallOptionsLike) => string | undefined)
  feature?: string
  metadata?: Record<string, unknown>
  /** Called when a call could not be metered (no customer, no usage). */
  onUnmetered?: (reason: string) => void
}

/** `openai.chat` → `openai`, `google.generative-ai` → `google`, `anthropic.messages` → `anthropic`. */
function providerName(aiSdkProvider: string): string {
  const head = aiSdkProvider.split('.')[0] ?? aiSdkProvider
  return head === 'google-vertex' ? 'google' : head
}

/**
 * What the AI SDK's normalized usage cannot say (1-hour cache writes, audio and image tokens, web
 * searches) is read from the provider's own usage object, by the provider's mapper: V3's
 * `usage.raw`, or on ai 5 the copy some providers put in provider metadata.
 */
function providerUnits(
  provider: string,
  usage: Record<string, unknown>,
  providerMetadata?: Record<string, Record<string, unknown> | undefined>,
) {
  const raw = record(
    usage.raw ??
      (provider === 'anthropic'
        ? providerMetadata?.anthropic?.usage
        : provider === 'google'
          ? providerMetadata?.google?.usageMetadata
          : undefined),
  )
  if (Object.keys(raw).length === 0) return {}
  let units: { unit: string; quantity: string }[] | undefined
  if (provider === 'anthropic') units = anthropicUsageFields(raw).units
  else if (provider === 'google') units = geminiUsageFields(raw).units
  else if (provider === 'openai' || provider === 'azure')
    units = ('prompt_tokens' in raw ? chatUsageFields(raw) : responseUsageFields(raw)).units
  return units ? { units } : {}
}

/** AI SDK usage (V2 or V3) → Burnrate's convention (inputTokens counts cache reads and writes). */
function usageFields(
  usage: unknown,
  provider: string,
  providerMetadata?: Record<string, Record<string, unknown> | undefined>,
) {
  return {
    ...tokenFields(usage, provider, providerMetadata),
    ...providerUnits(provider, record(usage), providerMetadata),
  }
}

function tokenFields(
  usage: unknown,
  provider: string,
  providerMetadata?: Record<string, Record<string, unknown> | undefined>,
) {
  const u = record(usage)
  if (u.inputTokens && typeof u.inputTokens === 'object') {
    const input = record(u.inputTokens)
    const output = record(u.outputTokens)
    const cacheRead = count(input.cacheRead)
    const cacheWrite = count(input.cacheWrite)
    const total = input.total !== undefined ? count(input.total) : count(input.noCache) + cacheRead + cacheWrite
    return {
      inputTokens: total,
      outputTokens: count(output.total),
      cacheReadTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      reasoningTokens: count(output.reasoning),
    }
  }
  // V2: the Anthropic provider reports Anthropic's own input_tokens (without cache reads and writes)
  // and puts cache writes in provider metadata; every other provider's inputTokens is the total.
  const cacheRead = count(u.cachedInputTokens)
  const cacheWrite = count(record(providerMetadata?.anthropic).cacheCreationInputTokens)
  const input = count(u.inputTokens)
  return {
    inputTokens: provider === 'anthropic' ? input + cacheRead + cacheWrite : input,
    outputTokens: count(u.outputTokens),
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: count(u.reasoningTokens),
  }
}

export function burnrateMiddleware(options: BurnrateMiddlewareOptions) {
  const customerOf = (params: AiSdkCallOptionsLike): string | undefined => {
    const fromCall = params.providerOptions?.burnrate?.customerId
    if (typeof fromCall === 'string' && fromCall) return fromCall
    return typeof options.customerId === 'function' ? options.customerId(params) : options.customerId
  }

  const emit = (
    params: AiSdkCallOptionsLike,
    model: AiSdkModelLike,
    seen: {
      usage?: unknown
      id?: string
      modelId?: string
      timestamp?: Date
      providerMetadata?: Record<string, Record<string, unknown> | undefined>
    },
  ) => {
    const customerId = customerOf(params)
    if (!customerId)
      return options.onUnmetered?.('no customerId: set it on the middleware or in providerOptions.burnrate.customerId')
    if (!seen.usage) return options.onUnmetered?.('the model reported no usage')
    const provider = providerName(model.provider)
    const usage: MeteredUsage = {
      // Without a provider response id there is nothing to deduplicate on: a fresh id per call.
      id: seen.id ?? `aisdk-${randomUUID()}`,
      model: seen.modelId ?? model.modelId,
      provider,
      timestamp: (seen.timestamp ?? new Date()).toISOString(),
      ...usageFields(seen.usage, provider, seen.providerMetadata),
    }
    const event: UsageEvent = { ...usage, customerId }
    if (options.feature) event.feature = options.feature
    if (options.metadata) event.metadata = options.metadata
    options.meter.record(event)
  }

  return {
    // ai 6 checks this; ai 5 ignores unknown keys (and reads `middlewareVersion`).
    specificationVersion: 'v3' as const,
    middlewareVersion: 'v2' as const,

    async wrapGenerate<R extends GenerateResultLike>({
      doGenerate,
      params,
      model,
    }: {
      doGenerate: () => PromiseLike<R>
      params: AiSdkCallOptionsLike
      model: AiSdkModelLike
    }): Promise<R> {
      const result = await doGenerate()
      emit(params, model, {
        usage: result.usage,
        id: result.response?.id,
        modelId: result.response?.modelId,
        timestamp: result.response?.timestamp,
        providerMetadata: result.providerMetadata,
      })
      return result
    },

    async wrapStream<R extends StreamResultLike>({
      doStream,
      params,
      model,
    }: {
      doStream: () => PromiseLike<R>
      params: AiSdkCallOptionsLike
      model: AiSdkModelLike
    }): Promise<R> {
      const result = await doStream()
      const seen: Parameters<typeof emit>[2] = {}
      let emitted = false
      const once = () => {
        if (emitted) return
        emitted = true
        emit(params, model, seen)
      }
      const observe = new TransformStream<unknown, unknown>({
        transform(part, controller) {
          const p = record(part)
          if (p.type === 'response-metadata') {
            if (typeof p.id === 'string') seen.id = p.id
            if (typeof p.modelId === 'string') seen.modelId = p.modelId
            if (p.timestamp instanceof Date) seen.timestamp = p.timestamp
          } else if (p.type === 'finish') {
            seen.usage = p.usage
            seen.providerMetadata = p.providerMetadata as typeof seen.providerMetadata
          }
          controller.enqueue(part)
        },
        flush: once,
      })
      const reader = result.stream.pipeThrough(observe).getReader()
      // A consumer that cancels mid-stream still gets metered with what was seen.
      const stream = new ReadableStream<unknown>({
        async pull(controller) {
          const it = await reader.read()
          if (it.done) controller.close()
          else controller.enqueue(it.value)
        },
        cancel(reason) {
          once()
          return reader.cancel(reason)
        },
      })
      return { ...result, stream }
    },
  }
}
