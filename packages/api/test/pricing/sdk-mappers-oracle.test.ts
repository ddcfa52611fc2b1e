import { calcPrice, extractUsage, findProvider, waitForUpdate } from '@pydantic/genai-prices'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  anthropic,
  burnrateMiddleware,
  gemini,
  meterStream,
  openai,
  type MeteredUsage,
  type UsageEvent,
} from '@burnrate/sdk'
import { asStream, fixture } from '../../../sdk/test/fixtures.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/**
 * Each mapper against a provider response shaped exactly like the real one, priced twice: by the
 * API, from the event the mapper made, and by an independent oracle — @pydantic/genai-prices reads
 * the same raw response with its own extractor (`extractUsage`) and prices it with `calcPrice`.
 * The two must agree; and the oracle's price without the detail under test (audio, 1-hour cache,
 * images, searches) must differ, so each case really exercises that detail.
 */
let t: TestApp
const at = new Date(Date.now() - 60_000)

beforeAll(async () => {
  t = await createTestApp()
  await waitForUpdate()
})
afterAll(() => t?.close())

async function billed(
  usage: Omit<UsageEvent, 'customerId'>,
  customerId = 'oracle',
): Promise<{ status: string; cost: string | null; lines: { usageType: string }[] }> {
  const event: UsageEvent = { ...usage, customerId, timestamp: at.toISOString() }
  const { data, errors } = await t.gql(
    `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status error { code message } event { status cost lines { usageType quantity } } } }`,
    { e: event },
  )
  expect(errors).toBeUndefined()
  expect(data!.recordUsage.error).toBeNull()
  return data!.recordUsage.event
}

function oracle(
  providerId: string,
  raw: unknown,
  flavor: string,
  model: string,
  withoutDetail: (usage: Record<string, number | undefined>) => void,
) {
  const provider = findProvider({ providerId })!
  const { usage } = extractUsage(provider, raw, flavor)
  const full = calcPrice(usage, model, { providerId, timestamp: at })
  const plain = { ...usage }
  withoutDetail(plain)
  const text = calcPrice(plain, model, { providerId, timestamp: at })
  expect(full, `genai-prices prices ${providerId}/${model}`).not.toBeNull()
  return { price: full!.total_price, textOnlyPrice: text!.total_price }
}

function expectSame(ours: string | null, theirs: number) {
  expect(ours).not.toBeNull()
  const diff = new Decimal(ours!).minus(theirs.toString()).abs()
  expect(
    diff.lessThanOrEqualTo(new Decimal(theirs).abs().times('1e-9')),
    `ours ${ours} vs genai-prices ${theirs}`,
  ).toBe(true)
}

const drop =
  (...keys: string[]) =>
  (usage: Record<string, number | undefined>) => {
    for (const k of keys) delete usage[k]
  }

async function collect(chunks: unknown[], collector: Parameters<typeof meterStream>[1]): Promise<MeteredUsage> {
  let metered: MeteredUsage | null = null
  for await (const _ of meterStream(asStream(chunks), collector, (u) => (metered = u))) void _
  return metered!
}

describe('provider mappers against @pydantic/genai-prices, through the API', () => {
  it('Anthropic: 1-hour cache writes are billed at the 1-hour price', async () => {
    const msg = fixture('anthropic-message-cache-1h')
    const usage = anthropic.message(msg)
    expect(usage.units).toEqual([{ unit: 'cache_write_1h_tokens', quantity: '23586' }])
    const theirs = oracle('anthropic', msg, 'default', msg.model, drop('cache_write_1h_tokens'))
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice)
    const event = await billed(usage)
    expectSame(event.cost, theirs.price)
    expect(event.lines.map((l) => l.usageType).sort()).toEqual([
      'cache_write',
      'cache_write_1h_tokens',
      'input',
      'output',
    ])
  })

  it('Anthropic stream: the 1-hour writes of message_start are kept through message_delta', async () => {
    const events = fixture<any[]>('anthropic-stream-cache-1h')
    const usage = await collect(events, anthropic.messageStream())
    const start = events[0].message
    const final = {
      model: start.model,
      usage: { ...start.usage, ...events.find((e) => e.type === 'message_delta').usage },
    }
    const theirs = oracle('anthropic', final, 'default', start.model, drop('cache_write_1h_tokens'))
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('Anthropic: server-side web searches are billed per search', async () => {
    const msg = fixture('anthropic-message-web-search')
    const usage = anthropic.message(msg)
    const theirs = oracle('anthropic', msg, 'default', msg.model, drop('web_searches'))
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('OpenAI Chat Completions (gpt-audio): audio input and output tokens at audio prices', async () => {
    const completion = fixture('openai-chat-completion-audio')
    const usage = openai.chatCompletion(completion)
    expect(usage.units).toEqual([
      { unit: 'input_audio_tokens', quantity: '356' },
      { unit: 'output_audio_tokens', quantity: '142' },
    ])
    const theirs = oracle(
      'openai',
      completion,
      'chat',
      completion.model,
      drop('input_audio_tokens', 'output_audio_tokens'),
    )
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice * 2)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('OpenAI Chat Completions stream (gpt-audio): the usage chunk’s audio tokens', async () => {
    const chunks = fixture<any[]>('openai-chat-stream-audio')
    const usage = await collect(chunks, openai.chatCompletionStream())
    const theirs = oracle(
      'openai',
      chunks.at(-1),
      'chat',
      chunks[0].model,
      drop('input_audio_tokens', 'output_audio_tokens'),
    )
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice * 2)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('OpenAI Realtime (gpt-realtime): audio in and out, cached audio and cached text each at their price', async () => {
    const done = fixture('openai-realtime-response-done')
    const usage = openai.realtimeResponseDone(done, { model: 'gpt-realtime' })
    const theirs = oracle(
      'openai',
      { ...done, model: 'gpt-realtime' },
      'realtime',
      'gpt-realtime',
      drop('input_audio_tokens', 'output_audio_tokens', 'cache_audio_read_tokens'),
    )
    expect(theirs.price).not.toBe(theirs.textOnlyPrice)
    const event = await billed(usage)
    expectSame(event.cost, theirs.price)
    expect(event.lines.map((l) => l.usageType).sort()).toEqual([
      'cache_audio_read_tokens',
      'cache_read',
      'input',
      'input_audio_tokens',
      'output',
      'output_audio_tokens',
    ])
  })

  it('Gemini: audio prompt tokens and cached audio at their own prices', async () => {
    const response = fixture('gemini-generate-content-audio')
    const usage = gemini.generateContent(response)
    const theirs = oracle(
      'google',
      response,
      'default',
      response.modelVersion,
      drop('input_audio_tokens', 'cache_audio_read_tokens'),
    )
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('Gemini stream: audio prompt tokens from the last chunk', async () => {
    const chunks = fixture<any[]>('gemini-stream-audio')
    const usage = await collect(chunks, gemini.generateContentStream())
    const theirs = oracle('google', chunks.at(-1), 'default', chunks[0].modelVersion, drop('input_audio_tokens'))
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('Gemini image output (gemini-2.5-flash-image): image tokens at the image price', async () => {
    const response = fixture('gemini-generate-content-image')
    const usage = gemini.generateContent(response)
    const theirs = oracle('google', response, 'default', response.modelVersion, drop('output_image_tokens'))
    expect(theirs.price).toBeGreaterThan(theirs.textOnlyPrice * 2)
    expectSame((await billed(usage)).cost, theirs.price)
  })

  it('Vercel AI SDK (ai 6): 1-hour cache writes and audio come from usage.raw', async () => {
    const recorded: UsageEvent[] = []
    const middleware = burnrateMiddleware({ meter: { record: (e) => (recorded.push(e), true) }, customerId: 'oracle' })
    const msg = fixture('anthropic-message-cache-1h')
    const u = msg.usage
    await middleware.wrapGenerate({
      model: { provider: 'anthropic.messages', modelId: msg.model },
      params: {},
      doGenerate: async () => ({
        usage: {
          inputTokens: {
            total: u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
            noCache: u.input_tokens,
            cacheRead: u.cache_read_input_tokens,
            cacheWrite: u.cache_creation_input_tokens,
          },
          outputTokens: { total: u.output_tokens, text: u.output_tokens, reasoning: undefined },
          raw: u,
        },
        response: { id: msg.id, modelId: msg.model },
      }),
    })
    const completion = fixture('openai-chat-completion-audio')
    const cu = completion.usage
    await middleware.wrapGenerate({
      model: { provider: 'openai.chat', modelId: completion.model },
      params: {},
      doGenerate: async () => ({
        usage: {
          inputTokens: { total: cu.prompt_tokens, noCache: cu.prompt_tokens, cacheRead: 0, cacheWrite: undefined },
          outputTokens: { total: cu.completion_tokens, text: undefined, reasoning: 0 },
          raw: cu,
        },
        response: { id: `${completion.id}-aisdk`, modelId: completion.model },
      }),
    })
    expectSame(
      (await billed({ ...recorded[0]!, id: `${msg.id}-aisdk` })).cost,
      oracle('anthropic', msg, 'default', msg.model, drop()).price,
    )
    expectSame((await billed(recorded[1]!)).cost, oracle('openai', completion, 'chat', completion.model, drop()).price)
  })
})
