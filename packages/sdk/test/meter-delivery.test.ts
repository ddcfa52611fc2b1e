import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { verifyCanonicalSignature, canonicalEventString } from '../../api/src/usage/signing.ts'
import { retryAfterSeconds } from '../src/client.ts'
import { BurnrateClient, createMeter, type UsageError, type UsageEvent } from '../src/index.ts'
import { fakeApi, servers, type Behaviour } from './fake-api.ts'

const event = (i: number, extra: Partial<UsageEvent> = {}): UsageEvent => ({
  id: `evt-${i}`,
  customerId: 'acme',
  model: 'gpt-4o',
  timestamp: '2026-11-23T10:00:00.000Z',
  inputTokens: 100 + i,
  outputTokens: 10,
  ...extra,
})

// Fast backoff so retries happen in milliseconds; a long window so only size or flush() triggers sends.
const fast = { apiKey: 'br_sk_test', retryDelayMs: 1, maxRetryDelayMs: 5, flushIntervalMs: 60_000 }

describe('Meter delivery', () => {
  it('sends full batches at once and the rest on flush, in order', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, batchSize: 3, ...fast })
    for (let i = 0; i < 7; i++) expect(meter.record(event(i))).toBe(true)
    await api.requests(2) // two full batches go without waiting for the window
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(api.batches.map((b) => b.map((e) => e.id))).toEqual([
      ['evt-0', 'evt-1', 'evt-2'],
      ['evt-3', 'evt-4', 'evt-5'],
      ['evt-6'],
    ])
    expect(meter.stats).toMatchObject({ queued: 0, sent: 7, batches: 3, retries: 0, rejected: 0, dropped: 0 })
  })

  it('sends batches to POST /v1/usage/batch, without GraphQL', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, batchSize: 2, ...fast })
    for (let i = 0; i < 5; i++) meter.record(event(i))
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(api.paths).toEqual(['/v1/usage/batch', '/v1/usage/batch', '/v1/usage/batch'])
    expect(meter.stats).toMatchObject({ sent: 5, batches: 3, retries: 0, rejected: 0 })
  })

  it('falls back to recordUsageBatch for good when the API has no /v1/usage/batch (404), losing nothing', async () => {
    const api = await fakeApi()
    api.httpIngest = false
    const errors: string[] = []
    // A URL naming the GraphQL endpoint works the same: the route is its sibling.
    const meter = createMeter({ url: `${api.url}/graphql`, batchSize: 2, ...fast, onError: (e) => errors.push(e.code) })
    for (let i = 0; i < 5; i++) meter.record(event(i))
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(api.paths).toEqual(['/v1/usage/batch', '/graphql', '/graphql', '/graphql'])
    expect([...api.received.values()]).toEqual([1, 1, 1, 1, 1])
    expect(meter.stats).toMatchObject({ sent: 5, batches: 3, retries: 0, rejected: 0 })
    expect(errors).toEqual([])
  })

  it('a partial batch is sent when the time window ends', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, apiKey: 'k', flushIntervalMs: 5 })
    meter.record(event(1))
    meter.record(event(2))
    await api.requests(1)
    expect(api.batches.map((b) => b.length)).toEqual([2])
  })

  it('retries network errors, 5xx and 429 with backoff, then delivers everything once', async () => {
    const failures: Behaviour[] = [
      'reset',
      { status: 503 },
      { status: 502, body: 'bad gateway' },
      { status: 429, headers: { 'retry-after': '0' } },
    ]
    const api = await fakeApi((n) => failures[n - 1] ?? 'ok')
    const errors: string[] = []
    const meter = createMeter({ url: api.url, ...fast, onError: (e) => errors.push(e.code) })
    for (let i = 0; i < 5; i++) meter.record(event(i))
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect([...api.stored.keys()]).toEqual(['evt-0', 'evt-1', 'evt-2', 'evt-3', 'evt-4'])
    expect(errors).toEqual(['NETWORK_ERROR', 'SERVER_ERROR', 'SERVER_ERROR', 'RATE_LIMITED'])
    expect(meter.stats).toMatchObject({ sent: 5, retries: 4, duplicates: 0, queued: 0 })
  })

  it('an answer lost after the API stored the batch comes back DUPLICATE on retry: nothing counted twice', async () => {
    const api = await fakeApi((n) => (n === 1 ? 'lost' : 'ok'))
    const meter = createMeter({ url: api.url, ...fast })
    meter.record(event(1))
    meter.record(event(2))
    await meter.flush()
    expect(api.stored.size).toBe(2)
    expect(meter.stats).toMatchObject({ sent: 0, duplicates: 2, retries: 1 })
  })

  it('a request the API refuses as invalid (4xx) is never retried; its events are reported rejected', async () => {
    const api = await fakeApi(() => ({
      status: 400,
      body: { errors: [{ message: 'Variable "$events" got invalid value', extensions: { code: 'BAD_USER_INPUT' } }] },
    }))
    const rejected: UsageError[] = []
    const meter = createMeter({ url: api.url, ...fast, onRejected: (_e, err) => rejected.push(err) })
    meter.record(event(1))
    meter.record(event(2))
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(await api.requests(1)).toBeUndefined()
    expect(api.batches).toHaveLength(0)
    expect(meter.stats).toMatchObject({ rejected: 2, retries: 0, sent: 0 })
    expect(rejected.map((r) => r.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT'])
  })

  it('per-event REJECTED results are counted and reported; the rest of the batch is delivered', async () => {
    const api = await fakeApi()
    const rejected: [string, string][] = []
    const meter = createMeter({ url: api.url, ...fast, onRejected: (e, err) => rejected.push([e.id, err.code]) })
    meter.record(event(1))
    meter.record(event(2, { model: 'reject-me' }))
    meter.record(event(3))
    await meter.flush()
    expect(rejected).toEqual([['evt-2', 'INVALID_INPUT']])
    expect(meter.stats).toMatchObject({ sent: 2, rejected: 1 })
  })

  it('events GraphQL would refuse for the whole batch are refused by record(), so they never sink a batch', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, ...fast })
    expect(meter.record(event(1, { inputTokens: 1.5 }))).toBe(false)
    expect(meter.record(event(2, { outputTokens: 2 ** 31 }))).toBe(false)
    expect(meter.record(event(3, { timestamp: 'yesterday' }))).toBe(false)
    expect(meter.record(event(4))).toBe(true)
    await meter.flush()
    expect(meter.stats).toMatchObject({ rejected: 3, sent: 1 })
  })

  it('bounded queue while the API is down: new events are refused and counted; nothing accepted is lost once it recovers', async () => {
    let down = true
    const api = await fakeApi(() => (down ? { status: 503 } : 'ok'))
    const dropped: string[] = []
    const meter = createMeter({
      url: api.url,
      ...fast,
      maxQueueSize: 5,
      onDrop: (e, reason) => dropped.push(`${e.id}:${reason}`),
    })
    const accepted = Array.from({ length: 8 }, (_, i) => meter.record(event(i)))
    expect(accepted).toEqual([true, true, true, true, true, false, false, false])
    expect(dropped).toEqual(['evt-5:queue_full', 'evt-6:queue_full', 'evt-7:queue_full'])
    expect(await meter.flush({ timeoutMs: 20 })).toEqual({ done: false, remaining: 5 })
    await api.requests(3) // still retrying in the background after flush gave up
    expect(meter.stats.queued).toBe(5)
    down = false
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect([...api.stored.keys()]).toEqual(['evt-0', 'evt-1', 'evt-2', 'evt-3', 'evt-4'])
    expect(meter.stats.dropped).toBe(3)
    expect(meter.stats.retries).toBeGreaterThanOrEqual(3)
  })

  it('a 429 with Retry-After holds every send until it has passed, however many full batches are recorded meanwhile', async () => {
    const api = await fakeApi(() => ({ status: 429, headers: { 'retry-after': '3600' } }))
    let failed!: () => void
    const firstFailure = new Promise<void>((resolve) => (failed = resolve))
    const meter = createMeter({ url: api.url, ...fast, batchSize: 10, maxQueueSize: 1_000, onError: () => failed() })
    for (let i = 0; i < 10; i++) meter.record(event(i))
    await firstFailure
    // 50 more full batches, letting timers and I/O run between them, then an explicit flush.
    for (let b = 1; b <= 50; b++) {
      for (let i = 0; i < 10; i++) meter.record(event(b * 10 + i))
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    expect(await meter.flush({ timeoutMs: 20 })).toEqual({ done: false, remaining: 510 })
    expect(api.arrivals).toHaveLength(1)
    expect(meter.stats).toMatchObject({ retries: 1, queued: 510 })
    await meter.close({ timeoutMs: 1 })
  })

  it('after a Retry-After of 1 s the meter resumes and delivers everything, no request before then', async () => {
    const api = await fakeApi((n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : 'ok'))
    const meter = createMeter({ url: api.url, ...fast, batchSize: 10 })
    for (let i = 0; i < 10; i++) meter.record(event(i))
    await api.requests(1)
    for (let i = 10; i < 40; i++) meter.record(event(i))
    expect(await meter.flush()).toEqual({ done: true, remaining: 0 })
    expect(api.stored.size).toBe(40)
    // A lower bound only (the backoff's own guarantee); how much later the retry came is not asserted.
    expect(api.arrivals[1]! - api.arrivals[0]!).toBeGreaterThanOrEqual(950)
    expect(api.arrivals).toHaveLength(5)
  })

  it('Retry-After is read as seconds or as an HTTP-date', () => {
    const now = Date.parse('2026-11-23T10:00:00Z')
    expect(retryAfterSeconds('5', now)).toBe(5)
    expect(retryAfterSeconds('Mon, 23 Nov 2026 10:00:30 GMT', now)).toBe(30)
    expect(retryAfterSeconds('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBeUndefined()
    expect(retryAfterSeconds('0', now)).toBeUndefined()
    expect(retryAfterSeconds('soon', now)).toBeUndefined()
    expect(retryAfterSeconds(null, now)).toBeUndefined()
  })

  it('signs every event with the signing secret; the API-side check accepts the signatures', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, ...fast, signingSecret: 'whsec_test' })
    meter.record(event(1, { metadata: { b: 1, a: [2, { d: 3, c: 4 }] } }))
    meter.record(event(2, { units: [{ unit: 'web_searches', quantity: '2.50' }] }))
    await meter.flush()
    for (const sent of api.batches.flat()) {
      expect(sent.signature).toMatch(/^[0-9a-f]{64}$/)
      expect(verifyCanonicalSignature(canonicalEventString(sent as any), sent.signature!, 'whsec_test')).toBe(true)
    }
  })

  it('close() flushes, then refuses new events', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, ...fast })
    meter.record(event(1))
    expect(await meter.close()).toEqual({ done: true, remaining: 0 })
    expect(api.stored.size).toBe(1)
    expect(meter.record(event(2))).toBe(false)
    expect(meter.stats).toMatchObject({ sent: 1, dropped: 1 })
  })

  it('close() on a down API gives up after its timeout and reports what is left', async () => {
    const api = await fakeApi(() => ({ status: 500 }))
    const meter = createMeter({ url: api.url, ...fast })
    meter.record(event(1))
    expect(await meter.close({ timeoutMs: 20 })).toEqual({ done: false, remaining: 1 })
  })

  it('events recorded without a timestamp get the time of record(), kept across retries', async () => {
    const api = await fakeApi((n) => (n === 1 ? { status: 503 } : 'ok'))
    const meter = createMeter({ url: api.url, ...fast, now: () => Date.parse('2026-11-23T09:59:00Z') })
    const { timestamp: _t, ...noTimestamp } = event(1)
    meter.record(noTimestamp)
    await meter.flush()
    expect(api.batches[0]![0]!.timestamp).toBe('2026-11-23T09:59:00.000Z')
  })

  it('an accepted event is a copy: the caller reusing its object changes nothing queued', async () => {
    const api = await fakeApi()
    const meter = createMeter({ url: api.url, ...fast })
    const reused = event(1)
    meter.record(reused)
    reused.id = 'evt-2'
    reused.inputTokens = 999
    meter.record(reused)
    await meter.flush()
    expect(api.batches.flat().map((e) => [e.id, e.inputTokens])).toEqual([
      ['evt-1', 101],
      ['evt-2', 999],
    ])
  })

  it('the client reports a timeout as retryable', async () => {
    const server = createServer(() => {})
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const client = new BurnrateClient({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      apiKey: 'k',
      timeoutMs: 20,
    })
    await expect(client.recordUsage(event(1))).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true })
  })
})
