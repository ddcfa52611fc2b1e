import { describe, expect, it } from 'vitest'
import {
  anthropic,
  burnrateMiddleware,
  gemini,
  meterStream,
  MissingUsageError,
  openai,
  openrouter,
  SseParser,
  sseJson,
  type UsageEvent,
} from '../src/index.ts'
import { asStream, fixture } from './fixtures.ts'

describe('OpenAI', () => {
  it('Chat Completions: prompt_tokens already include cached tokens, completion_tokens include reasoning', () => {
    expect(openai.chatCompletion(fixture('openai-chat-completion'))).toEqual({
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      model: 'gpt-4o-2024-08-06',
      provider: 'openai',
      timestamp: '2025-03-10T01:31:23.000Z',
      inputTokens: 1117,
      outputTokens: 46,
      cacheReadTokens: 1024,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    })
    expect(openai.chatCompletion(fixture('openai-chat-completion-reasoning'))).toMatchObject({
      inputTokens: 2400,
      cacheReadTokens: 2048,
      outputTokens: 1650,
      reasoningTokens: 1536,
    })
  })

  it('Responses: input/output tokens with cached and reasoning details', () => {
    expect(openai.response(fixture('openai-response'))).toEqual({
      id: 'resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41',
      model: 'o4-mini-2025-04-16',
      provider: 'openai',
      timestamp: '2025-03-08T23:32:57.000Z',
      inputTokens: 328,
      outputTokens: 452,
      cacheReadTokens: 256,
      reasoningTokens: 384,
    })
  })

  it('a response without usage is an explicit error, not a zero-token event', () => {
    expect(() => openai.chatCompletion({ id: 'x', model: 'gpt-4o' })).toThrow(MissingUsageError)
  })

  it('withStreamUsage sets stream_options.include_usage and keeps other options', () => {
    const params = openai.withStreamUsage({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_obfuscation: false },
    })
    expect(params).toEqual({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_obfuscation: false, include_usage: true },
    })
  })

  it('Chat Completions stream: usage from the final chunk', async () => {
    const chunks = fixture<unknown[]>('openai-chat-stream')
    const seen: unknown[] = []
    let metered: unknown = 'not called'
    for await (const chunk of meterStream(asStream(chunks), openai.chatCompletionStream(), (u) => (metered = u)))
      seen.push(chunk)
    expect(seen).toEqual(chunks)
    expect(metered).toEqual({
      id: 'chatcmpl-123stream',
      model: 'gpt-4o-mini-2024-07-18',
      provider: 'openai',
      timestamp: '2023-09-09T14:03:10.000Z',
      inputTokens: 1200,
      outputTokens: 9,
      cacheReadTokens: 1152,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    })
  })

  it('a stream without include_usage reports no usage (null), once', async () => {
    const chunks = fixture<unknown[]>('openai-chat-stream').slice(0, 3)
    const calls: unknown[] = []
    for await (const _ of meterStream(asStream(chunks), openai.chatCompletionStream(), (u, info) =>
      calls.push([u, info]),
    ))
      void _
    expect(calls).toEqual([[null, { complete: true }]])
  })

  it('Responses stream: usage from response.completed', async () => {
    const collector = openai.responseStream()
    for (const event of fixture<unknown[]>('openai-response-stream')) collector.push(event)
    expect(collector.usage()).toMatchObject({
      id: 'resp_stream_68a1',
      model: 'gpt-4.1-2025-04-14',
      inputTokens: 37,
      outputTokens: 11,
    })
  })
})

describe('Anthropic', () => {
  it('input_tokens excludes cache reads and writes: Burnrate inputTokens is their sum', () => {
    expect(anthropic.message(fixture('anthropic-message'), { timestamp: new Date('2026-11-23T10:00:00Z') })).toEqual({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
      model: 'claude-sonnet-4-20250514',
      provider: 'anthropic',
      timestamp: '2026-11-23T10:00:00.000Z',
      inputTokens: 21 + 188086,
      outputTokens: 393,
      cacheReadTokens: 0,
      cacheWriteTokens: 188086,
    })
    expect(anthropic.message(fixture('anthropic-message-cache-hit'))).toMatchObject({
      inputTokens: 12 + 188086,
      cacheReadTokens: 188086,
      cacheWriteTokens: 0,
      units: [{ unit: 'web_searches', quantity: '2' }],
    })
  })

  it('stream: message_start input usage plus the final message_delta output count', async () => {
    let metered: unknown
    for await (const _ of meterStream(
      asStream(fixture<unknown[]>('anthropic-stream')),
      anthropic.messageStream(),
      (u) => (metered = u),
    ))
      void _
    expect(metered).toMatchObject({
      id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
      inputTokens: 25 + 2048,
      cacheReadTokens: 2048,
      outputTokens: 15,
    })
  })

  it('a consumer that stops early still gets the usage seen so far, once', async () => {
    const calls: unknown[][] = []
    for await (const chunk of meterStream(
      asStream(fixture<any[]>('anthropic-stream')),
      anthropic.messageStream(),
      (u, info) => calls.push([u, info]),
    )) {
      if (chunk.type === 'content_block_delta') break
    }
    expect(calls).toHaveLength(1)
    expect(calls[0]![0]).toMatchObject({ inputTokens: 2073, outputTokens: 1 })
    expect(calls[0]![1]).toEqual({ complete: false })
  })
})

describe('Gemini', () => {
  it('candidatesTokenCount excludes thoughts: output = candidates + thoughts; prompt already includes the cache', () => {
    const usage = gemini.generateContent(fixture('gemini-generate-content'))
    expect(usage).toMatchObject({
      id: 'mAitaLmkHPPlz7IPvtfUqQ4',
      model: 'gemini-2.5-flash',
      provider: 'google',
      inputTokens: 2100,
      cacheReadTokens: 2048,
      outputTokens: 13 + 924,
      reasoningTokens: 924,
    })
    // The provider's own total is reproduced: nothing dropped, nothing counted twice.
    expect(usage.inputTokens! + usage.outputTokens!).toBe(
      fixture('gemini-generate-content').usageMetadata.totalTokenCount,
    )
  })

  it('tool-use prompt tokens are input', () => {
    expect(
      gemini.generateContent({
        responseId: 'r',
        modelVersion: 'gemini-2.5-flash',
        usageMetadata: { promptTokenCount: 10, toolUsePromptTokenCount: 5, candidatesTokenCount: 3 },
      }),
    ).toMatchObject({ inputTokens: 15, outputTokens: 3 })
  })

  it('stream: the last chunk carries the final usage', async () => {
    let metered: any
    for await (const _ of meterStream(
      asStream(fixture<unknown[]>('gemini-stream')),
      gemini.generateContentStream(),
      (u) => (metered = u),
    ))
      void _
    expect(metered).toMatchObject({
      id: 'Wr-taNvJHbzL7M8P2s2J8Qc',
      model: 'gemini-2.5-pro',
      inputTokens: 9,
      outputTokens: 532,
      reasoningTokens: 520,
    })
    expect(metered.inputTokens + metered.outputTokens).toBe(541)
  })

  it('a response without responseId needs an explicit id', () => {
    expect(() =>
      gemini.generateContent({ modelVersion: 'gemini-2.5-flash', usageMetadata: { promptTokenCount: 1 } }),
    ).toThrow(/responseId/)
  })
})

describe('OpenRouter', () => {
  it('OpenAI shape; provider openrouter, cost and upstream provider kept as exact strings in metadata', () => {
    expect(openrouter.chatCompletion(fixture('openrouter-chat-completion'))).toMatchObject({
      id: 'gen-1752611234-xRjFFT3jG1kDk4MKzPq7',
      model: 'openai/gpt-4o',
      provider: 'openrouter',
      inputTokens: 194,
      outputTokens: 2,
      cacheReadTokens: 0,
      cacheWriteTokens: 100,
      metadata: { providerCost: '0.000505', upstreamProvider: 'OpenAI' },
    })
  })

  it('stream: usage and cost from the last chunk', () => {
    const collector = openrouter.chatCompletionStream()
    for (const chunk of fixture<unknown[]>('openrouter-stream')) collector.push(chunk)
    expect(collector.usage()).toMatchObject({
      inputTokens: 3014,
      cacheReadTokens: 3000,
      outputTokens: 20,
      metadata: { providerCost: '0.0012354', upstreamProvider: 'Anthropic' },
    })
  })
})

describe('SSE parsing', () => {
  it('reassembles events split anywhere, with CRLF and comments', async () => {
    const text =
      ': keep-alive\r\nevent: message_start\r\ndata: {"a":1}\r\n\r\ndata: {"b":\ndata: 2}\n\ndata: [DONE]\n\n'
    const bytes = new TextEncoder().encode(text)
    const parts: Uint8Array[] = []
    for (let i = 0; i < bytes.length; i += 3) parts.push(bytes.slice(i, i + 3))
    const out: unknown[] = []
    for await (const value of sseJson(asStream(parts))) out.push(value)
    expect(out).toEqual([{ a: 1 }, { b: 2 }])
    expect(new SseParser().push('event: x\ndata: y\n\n')).toEqual([{ event: 'x', data: 'y' }])
  })
})

function streamOf<T>(items: readonly T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item)
      controller.close()
    },
  })
}

describe('Vercel AI SDK middleware', () => {
  const model = { provider: 'anthropic.messages', modelId: 'claude-sonnet-4-20250514', specificationVersion: 'v3' }

  function recorder() {
    const events: UsageEvent[] = []
    return { events, meter: { record: (e: UsageEvent) => (events.push(e), true) } }
  }

  it('V3 usage (ai 6): nested input/output totals, customer from providerOptions', async () => {
    const { events, meter } = recorder()
    const middleware = burnrateMiddleware({ meter, feature: 'chat' })
    const result = {
      content: [{ type: 'text', text: 'hi' }],
      finishReason: 'stop',
      usage: {
        inputTokens: { total: 2073, noCache: 25, cacheRead: 2048, cacheWrite: 0 },
        outputTokens: { total: 15, text: 10, reasoning: 5 },
      },
      response: { id: 'msg_v3', modelId: 'claude-sonnet-4-20250514', timestamp: new Date('2026-11-23T10:00:00Z') },
      warnings: [],
    }
    const out = await middleware.wrapGenerate({
      doGenerate: async () => result,
      params: { providerOptions: { burnrate: { customerId: 'acme' } } },
      model,
    })
    expect(out).toBe(result)
    expect(events).toEqual([
      {
        id: 'msg_v3',
        customerId: 'acme',
        model: 'claude-sonnet-4-20250514',
        provider: 'anthropic',
        timestamp: '2026-11-23T10:00:00.000Z',
        inputTokens: 2073,
        outputTokens: 15,
        cacheReadTokens: 2048,
        cacheWriteTokens: 0,
        reasoningTokens: 5,
        feature: 'chat',
      },
    ])
  })

  it('V2 usage (ai 5): Anthropic inputTokens get cache reads and writes added', async () => {
    const { events, meter } = recorder()
    const middleware = burnrateMiddleware({ meter, customerId: 'acme' })
    await middleware.wrapGenerate({
      doGenerate: async () => ({
        usage: { inputTokens: 25, outputTokens: 15, totalTokens: 40, cachedInputTokens: 2048 },
        providerMetadata: { anthropic: { cacheCreationInputTokens: 100 } },
        response: { id: 'msg_v2' },
      }),
      params: {},
      model,
    })
    expect(events[0]).toMatchObject({
      id: 'msg_v2',
      inputTokens: 25 + 2048 + 100,
      cacheReadTokens: 2048,
      cacheWriteTokens: 100,
    })
  })

  it('streams: metered at the finish part with the response id; parts pass through unchanged', async () => {
    const { events, meter } = recorder()
    const middleware = burnrateMiddleware({ meter, customerId: (p: any) => p.headers?.['x-customer'] })
    const parts = [
      { type: 'stream-start', warnings: [] },
      { type: 'response-metadata', id: 'chatcmpl-s1', modelId: 'gpt-4o-2024-08-06' },
      { type: 'text-delta', id: '0', delta: 'Hi' },
      {
        type: 'finish',
        finishReason: 'stop',
        usage: { inputTokens: 100, outputTokens: 7, totalTokens: 107, cachedInputTokens: 64 },
      },
    ]
    const { stream } = await middleware.wrapStream({
      doStream: async () => ({ stream: streamOf(parts) }),
      params: { headers: { 'x-customer': 'acme' } } as any,
      model: { provider: 'openai.chat', modelId: 'gpt-4o' },
    })
    const seen: unknown[] = []
    const reader = stream.getReader()
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen.push(r.value)
    expect(seen).toEqual(parts)
    expect(events).toEqual([
      expect.objectContaining({
        id: 'chatcmpl-s1',
        customerId: 'acme',
        model: 'gpt-4o-2024-08-06',
        provider: 'openai',
        inputTokens: 100,
        cacheReadTokens: 64,
        outputTokens: 7,
      }),
    ])
  })

  it('a consumer that cancels mid-stream is metered once with what was seen', async () => {
    const { events, meter } = recorder()
    const middleware = burnrateMiddleware({ meter, customerId: 'acme' })
    const parts = [
      { type: 'response-metadata', id: 'msg_cancel', modelId: 'claude-sonnet-4-20250514' },
      { type: 'text-delta', id: '0', delta: 'Hi' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: { total: 30 }, outputTokens: { total: 2 } } },
    ]
    const { stream } = await middleware.wrapStream({
      doStream: async () => ({ stream: streamOf(parts) }),
      params: {},
      model,
    })
    const reader = stream.getReader()
    await reader.read()
    await reader.read()
    await reader.read()
    await reader.cancel()
    await reader.cancel()
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ id: 'msg_cancel', inputTokens: 30, outputTokens: 2 })
  })

  it('without a customer the call is reported unmetered and nothing is recorded', async () => {
    const { events, meter } = recorder()
    const reasons: string[] = []
    const middleware = burnrateMiddleware({ meter, onUnmetered: (r) => reasons.push(r) })
    await middleware.wrapGenerate({
      doGenerate: async () => ({ usage: { inputTokens: 1, outputTokens: 1 } }),
      params: {},
      model,
    })
    expect(events).toEqual([])
    expect(reasons[0]).toMatch(/customerId/)
  })
})
