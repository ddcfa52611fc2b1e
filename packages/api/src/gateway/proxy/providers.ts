/**
 * The providers the gateway speaks for — OpenAI chat completions and Anthropic messages: where a
 * call goes, which headers it carries, how errors are shaped, and how usage is read from an
 * answer or a stream (the SDK's meters).
 */
import type { IncomingMessage } from 'node:http'
import {
  anthropic as anthropicMeter,
  openai as openaiMeter,
  type MeteredUsage,
  type UsageCollector,
} from '@burnrate/sdk'
import type { Config } from '../../config.ts'
import type { GatewayProvider } from '../db-types.ts'

export interface Prepared {
  body: Record<string, unknown>
  /** The gateway asked for usage the client did not: hold back the usage-only chunk it adds. */
  stripUsageChunk: boolean
}

export interface ProviderSpec {
  provider: GatewayProvider
  path: string
  upstreamUrl(config: Config): string
  upstreamHeaders(apiKey: string, req: IncomingMessage): Record<string, string>
  errorBody(type: string, message: string): unknown
  prepare(body: Record<string, unknown>): Prepared
  usageOf(json: unknown, startedAt: Date): MeteredUsage
  streamCollector(startedAt: Date): UsageCollector<unknown>
  isUsageOnlyChunk(json: unknown): boolean
}

export const passHeader = (req: IncomingMessage, name: string): Record<string, string> => {
  const value = req.headers[name]
  return typeof value === 'string' && value ? { [name]: value } : {}
}

const OPENAI: ProviderSpec = {
  provider: 'openai',
  path: '/v1/chat/completions',
  upstreamUrl: (config) => `${config.GATEWAY_OPENAI_URL.replace(/\/+$/, '')}/v1/chat/completions`,
  upstreamHeaders: (apiKey, req) => ({ authorization: `Bearer ${apiKey}`, ...passHeader(req, 'openai-beta') }),
  errorBody: (type, message) => ({ error: { message, type, param: null, code: type } }),
  prepare(body) {
    if (body.stream !== true) return { body, stripUsageChunk: false }
    const options =
      body.stream_options && typeof body.stream_options === 'object'
        ? (body.stream_options as Record<string, unknown>)
        : {}
    // Without include_usage a streamed completion never says what it cost: the gateway always asks.
    return { body: openaiMeter.withStreamUsage(body), stripUsageChunk: options.include_usage !== true }
  },
  usageOf: (json) => openaiMeter.chatCompletion(json as openaiMeter.OpenAIChatCompletionLike),
  streamCollector: () => openaiMeter.chatCompletionStream(),
  isUsageOnlyChunk: (json) => {
    const chunk = json as { choices?: unknown; usage?: unknown }
    return Array.isArray(chunk.choices) && chunk.choices.length === 0 && !!chunk.usage
  },
}

const ANTHROPIC: ProviderSpec = {
  provider: 'anthropic',
  path: '/v1/messages',
  upstreamUrl: (config) => `${config.GATEWAY_ANTHROPIC_URL.replace(/\/+$/, '')}/v1/messages`,
  upstreamHeaders: (apiKey, req) => ({
    'x-api-key': apiKey,
    'anthropic-version':
      typeof req.headers['anthropic-version'] === 'string' ? req.headers['anthropic-version'] : '2023-06-01',
    ...passHeader(req, 'anthropic-beta'),
  }),
  errorBody: (type, message) => ({ type: 'error', error: { type, message } }),
  prepare: (body) => ({ body, stripUsageChunk: false }),
  usageOf: (json, startedAt) =>
    anthropicMeter.message(json as anthropicMeter.AnthropicMessageLike, { timestamp: startedAt }),
  streamCollector: (startedAt) => anthropicMeter.messageStream({ timestamp: startedAt }),
  isUsageOnlyChunk: () => false,
}

export const PROVIDERS: readonly ProviderSpec[] = [OPENAI, ANTHROPIC]
