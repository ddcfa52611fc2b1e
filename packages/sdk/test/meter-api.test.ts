import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../api/src/logger.ts'
import { startServer, type RunningServer } from '../../api/src/server.ts'
import { createTestApp, type TestApp } from '../../api/test/support/app.ts'
import { anthropic, BurnrateClient, createMeter, gemini, openai, type UsageEvent } from '../src/index.ts'
import { fixture } from './fixtures.ts'

let t: TestApp
let server: RunningServer
let client: BurnrateClient
const now = () => new Date(Date.now() - 60_000).toISOString()

beforeAll(async () => {
  t = await createTestApp({ config: { PORT: 0 } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
  client = new BurnrateClient({ url: server.url, apiKey: t.tenant.apiKey })
})

afterAll(async () => {
  await server?.close()
  await t?.close()
})

describe('SDK against the real API', () => {
  it('recordUsage returns the priced event; exact decimal strings', async () => {
    const result = await client.recordUsage({
      ...openai.chatCompletion(fixture('openai-chat-completion')),
      timestamp: now(),
      customerId: 'sdk-direct',
    })
    expect(result.status).toBe('RECORDED')
    expect(result.event).toMatchObject({
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      canonicalModel: 'gpt-4o',
      status: 'PRICED',
    })
    expect(result.event!.cost).toMatch(/^\d+\.\d+$/)
    expect(result.event!.lines.map((l) => l.usageType).sort()).toEqual(['cache_read', 'input', 'output'])
  })

  it('meter → batches → API: provider responses become priced events; replays are duplicates', async () => {
    const meter = createMeter({ client, batchSize: 2, flushIntervalMs: 60_000 })
    const events: UsageEvent[] = [
      { ...openai.response(fixture('openai-response')), timestamp: now(), customerId: 'sdk-meter', feature: 'chat' },
      {
        ...anthropic.message(fixture('anthropic-message')),
        timestamp: now(),
        customerId: 'sdk-meter',
        feature: 'chat',
      },
      { ...anthropic.message(fixture('anthropic-message-cache-hit')), timestamp: now(), customerId: 'sdk-meter' },
    ]
    for (const e of events) meter.record(e)
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(meter.stats).toMatchObject({ sent: 3, duplicates: 0, rejected: 0, batches: 2 })

    for (const e of events) meter.record(e)
    await meter.close()
    expect(meter.stats).toMatchObject({ sent: 3, duplicates: 3, rejected: 0 })

    const page = await client.usageEvents({ customerId: 'sdk-meter', first: 10 })
    expect(page.events.map((e) => e.id).sort()).toEqual(events.map((e) => e.id).sort())
    const summary = await client.usageSummary({
      customerId: 'sdk-meter',
      from: new Date(Date.now() - 3_600_000),
      to: new Date(Date.now() + 60_000),
      groupBy: ['MODEL'],
    })
    expect(summary.events).toBe(3)
    // Anthropic's input_tokens (21 and 12) plus their cache reads and writes, plus the OpenAI response's 328.
    expect(summary.inputTokens).toBe(328 + 21 + 188086 + 12 + 188086)
  })

  it('the same Anthropic or Gemini response metered twice is a DUPLICATE, not an IDEMPOTENCY_CONFLICT', async () => {
    const tick = () => new Promise((resolve) => setTimeout(resolve, 5))
    const msg = { ...fixture('anthropic-message'), id: 'msg_metered_twice' }
    const reply = { ...fixture('gemini-generate-content'), responseId: 'gemini-metered-twice' }
    const stream = gemini.generateContentStream()
    for (const chunk of fixture<unknown[]>('gemini-stream'))
      stream.push({ ...(chunk as object), responseId: 'gemini-stream-twice' })
    const statuses: string[] = []
    for (const usage of [() => anthropic.message(msg), () => gemini.generateContent(reply), () => stream.usage()!]) {
      const first = await client.recordUsage({ ...usage(), customerId: 'sdk-twice' })
      await tick() // a later clock: a fresh "now" would now differ
      const second = await client.recordUsage({ ...usage(), customerId: 'sdk-twice' })
      statuses.push(`${first.status}/${second.status}${second.error ? ` ${second.error.code}` : ''}`)
    }
    expect(statuses).toEqual(['RECORDED/DUPLICATE', 'RECORDED/DUPLICATE', 'RECORDED/DUPLICATE'])
  })

  it('signed events from the meter pass a tenant that requires signatures; a wrong secret is rejected', async () => {
    await t.app.services.tenants.updateSettings(t.tenant.id, { requireSignatures: true })
    try {
      const good = createMeter({ client, signingSecret: t.tenant.signingSecret })
      good.record({
        id: 'signed-1',
        customerId: 'sdk-signed',
        model: 'gpt-4o',
        timestamp: now(),
        inputTokens: 10,
        outputTokens: 2,
        units: [{ unit: 'web_searches', quantity: '1.0' }],
        metadata: { z: 1, a: 'x' },
      })
      await good.close()
      expect(good.stats).toMatchObject({ sent: 1, rejected: 0 })

      const codes: string[] = []
      const bad = createMeter({
        client,
        signingSecret: 'not-the-secret',
        onRejected: (_e, err) => codes.push(err.code),
      })
      bad.record({ id: 'signed-2', customerId: 'sdk-signed', model: 'gpt-4o', timestamp: now(), inputTokens: 10 })
      await bad.close()
      expect(codes).toEqual(['INVALID_SIGNATURE'])
    } finally {
      await t.app.services.tenants.updateSettings(t.tenant.id, { requireSignatures: false })
    }
  })

  it('a wrong API key is retried (the events are kept), never dropped as invalid', async () => {
    const wrong = new BurnrateClient({ url: server.url, apiKey: 'br_sk_wrong' })
    let failed!: () => void
    const firstFailure = new Promise<void>((resolve) => (failed = resolve))
    const meter = createMeter({ client: wrong, retryDelayMs: 1, maxRetryDelayMs: 5, onError: () => failed() })
    meter.record({ id: 'wrong-key-1', customerId: 'x', model: 'gpt-4o', timestamp: now() })
    void meter.flush()
    await firstFailure
    expect(meter.stats.lastError).toMatch(/API key/)
    expect(await meter.close({ timeoutMs: 20 })).toEqual({ done: false, remaining: 1 })
  })
})
