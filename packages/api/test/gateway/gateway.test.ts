import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createKeyBox } from '../../src/gateway/crypto.ts'
import { boundCall, holdAmount, worstCaseAmount } from '../../src/gateway/estimate.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { SseEventSplitter } from '../../src/gateway/sse.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

/** Provider documentation examples, shared with the SDK's tests. */
function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../../sdk/test/fixtures/${name}.json`, import.meta.url), 'utf8')) as T
}
const sse = (events: unknown[], options: { named?: boolean; done?: boolean } = {}) =>
  events
    .map((e) => `${options.named ? `event: ${(e as { type: string }).type}\n` : ''}data: ${JSON.stringify(e)}\n\n`)
    .join('') + (options.done ? 'data: [DONE]\n\n' : '')

// ------------------------------------------------------------------ a scripted fake provider

interface UpstreamCall {
  path: string
  headers: IncomingHttpHeaders
  body: any
  /** Resolves when the gateway closes this upstream connection (aborted or finished). */
  closed: Promise<void>
}
type Script = (call: UpstreamCall, res: ServerResponse) => void | Promise<void>

let upstream: Server
let upstreamUrl: string
let script: Script
let calls: UpstreamCall[] = []

async function startUpstream() {
  upstream = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()))
      const call: UpstreamCall = {
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'),
        closed,
      }
      calls.push(call)
      void script(call, res)
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_upstream_1', ...headers })
  res.end(text)
}

// ------------------------------------------------------------------ the gateway under test

let t: TestApp
let server: RunningServer
let other: { id: string; apiKey: string }
const OPENAI_KEY = 'sk-proj-upstream-secret-0001'
const ANTHROPIC_KEY = 'sk-ant-api03-upstream-secret-0002'

beforeAll(async () => {
  await startUpstream()
  t = await createTestApp({
    config: {
      PORT: 0,
      GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      GATEWAY_OPENAI_URL: upstreamUrl,
      GATEWAY_ANTHROPIC_URL: upstreamUrl,
      // Long enough for a first call on a loaded machine, short enough for the timeout tests to wait it out.
      GATEWAY_TIMEOUT_MS: 2_000,
      // Each call reserved on its own, as near a limit: these tests follow one call's reservation
      // (leases: the last describe and budget-leases.test.ts).
      GATEWAY_BUDGET_LEASE_CALLS: 0,
    },
  })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
  other = await t.createTenant('Other tenant')
  for (const [provider, apiKey] of [
    ['OPENAI', OPENAI_KEY],
    ['ANTHROPIC', ANTHROPIC_KEY],
  ]) {
    const set = await t.gql(`mutation($i: ProviderKeyInput!) { setProviderKey(input: $i) { provider hint } }`, {
      i: { provider, apiKey },
    })
    expect(set.errors).toBeUndefined()
  }
})

afterAll(async () => {
  await server?.close()
  await t?.close()
  upstream?.closeAllConnections()
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()))
})

beforeEach(() => {
  calls = []
  script = (_call, res) => json(res, 500, { error: 'no script' })
})

interface GatewayResponse {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** False when the gateway cut the response short. */
  complete: boolean
}

/** A raw HTTP call to the gateway, so the bytes received can be compared with the bytes sent. */
function call(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
  base = server.url,
): Promise<GatewayResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      // 'close' also covers a response the gateway cuts (a stalled stream): what arrived is the answer.
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, complete: res.complete }),
      )
    })
    req.end(typeof body === 'string' ? body : JSON.stringify(body))
  })
}

const asTenant = (customer = 'acme') => ({ authorization: `Bearer ${t.tenant.apiKey}`, 'burnrate-customer': customer })

async function eventsOf(customerId: string, tenantId = t.tenant.id) {
  return t.database.db
    .selectFrom('usage_events')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('customer_id', '=', customerId)
    .orderBy('id')
    .execute()
}

/** Waits until the gateway has recorded `n` events for the customer (recording ends the request, but a disconnected client cannot wait for it). */
async function eventuallyEvents(customerId: string, n: number) {
  // A deadline, not a timing assertion: it returns as soon as the events are there.
  for (let i = 0; i < 1000; i++) {
    const rows = await eventsOf(customerId)
    if (rows.length >= n) return rows
    await new Promise((r) => setTimeout(r, 20))
  }
  return eventsOf(customerId)
}

// ------------------------------------------------------------------ tests

describe('provider keys', () => {
  it('are stored encrypted, bound to their tenant, and never returned', async () => {
    const rows = await t.database.db
      .selectFrom('gateway_provider_keys')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .orderBy('provider')
      .execute()
    expect(rows.map((r) => [r.provider, r.key_hint])).toEqual([
      ['anthropic', '…0002'],
      ['openai', '…0001'],
    ])
    for (const row of rows) {
      expect(row.key_enc).not.toContain('upstream-secret')
      expect(row.key_enc).toMatch(/^v1\./)
    }
    const listed = await t.gql('{ providerKeys { provider hint updatedAt } }')
    expect(listed.data?.providerKeys.map((k: any) => [k.provider, k.hint])).toEqual([
      ['ANTHROPIC', '…0002'],
      ['OPENAI', '…0001'],
    ])
    expect(JSON.stringify(listed)).not.toContain('upstream-secret')
    expect((await t.gql('{ providerKeys { provider } }', {}, other.apiKey)).data?.providerKeys).toEqual([])
  })

  it('a ciphertext moved to another tenant or provider does not decrypt', () => {
    const box = createKeyBox(randomBytes(32))
    const sealed = box.seal('sk-secret', 'ten_a', 'openai')
    expect(box.open(sealed, 'ten_a', 'openai')).toBe('sk-secret')
    expect(() => box.open(sealed, 'ten_b', 'openai')).toThrow()
    expect(() => box.open(sealed, 'ten_a', 'anthropic')).toThrow()
  })

  it('setProviderKey refuses an implausible key', async () => {
    const result = await t.gql(`mutation { setProviderKey(input: { provider: OPENAI, apiKey: "short" }) { hint } }`)
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
  })
})

describe('POST /v1/chat/completions (OpenAI-compatible)', () => {
  it('forwards with the stored key, returns the answer byte for byte, records the provider usage under its id', async () => {
    const answer = fixture('openai-chat-completion')
    const answerText = JSON.stringify(answer, null, 2)
    script = (_call, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-request-id': 'req_abc',
        'openai-processing-ms': '321',
      })
      res.end(answerText)
    }
    const request = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }
    const response = await call('/v1/chat/completions', request, {
      ...asTenant('cust-openai'),
      'burnrate-feature': 'chat',
    })
    expect(response.status).toBe(200)
    expect(response.text).toBe(answerText)
    expect(response.headers['x-request-id']).toBe('req_abc')
    expect(response.headers['openai-processing-ms']).toBe('321')

    expect(calls).toHaveLength(1)
    expect(calls[0]!.path).toBe('/v1/chat/completions')
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`)
    expect(calls[0]!.body).toEqual(request)

    // The client has the whole answer (Content-Length) as soon as it is written; the usage is recorded right after.
    const [event] = await eventuallyEvents('cust-openai', 1)
    expect(event).toMatchObject({
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      model: 'gpt-4o-2024-08-06',
      provider: 'openai',
      input_tokens: 1117,
      cache_read_tokens: 1024,
      output_tokens: 46,
      feature: 'chat',
    })
  })

  it('streams: asks for usage, holds back the usage chunk the client did not ask for, records it', async () => {
    const chunks = fixture<any[]>('openai-chat-stream')
    const body = sse(chunks, { done: true })
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(body)
    }
    const response = await call(
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [], stream: true },
      asTenant('cust-stream'),
    )
    expect(calls[0]!.body.stream_options).toEqual({ include_usage: true })
    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream')
    // Everything the provider sent, minus the usage-only chunk the gateway itself asked for.
    expect(response.text).toBe(sse(chunks.slice(0, 3), { done: true }))
    const [event] = await eventsOf('cust-stream')
    expect(event).toMatchObject({
      id: 'chatcmpl-123stream',
      input_tokens: 1200,
      cache_read_tokens: 1152,
      output_tokens: 9,
    })
  })

  it('streams: a client that asked for usage gets the provider stream unchanged', async () => {
    const chunks = fixture<any[]>('openai-chat-stream').map((c) => ({ ...c, id: 'chatcmpl-with-usage' }))
    const body = sse(chunks, { done: true })
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      // Split mid-event to check the gateway forwards events whole and intact.
      res.write(body.slice(0, 37))
      setTimeout(() => res.end(body.slice(37)), 5)
    }
    const response = await call(
      '/v1/chat/completions',
      { model: 'gpt-4o-mini', messages: [], stream: true, stream_options: { include_usage: true } },
      asTenant('cust-stream2'),
    )
    expect(response.text).toBe(body)
    expect(await eventsOf('cust-stream2')).toHaveLength(1)
  })

  it('the same response id recorded twice stays one event', async () => {
    // Streamed, so each call's usage is committed before its response ends.
    const body = sse(
      fixture<any[]>('openai-chat-stream').map((c) => ({ ...c, id: 'chatcmpl-replayed' })),
      { done: true },
    )
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(body)
    }
    await call('/v1/chat/completions', { model: 'gpt-4o', messages: [], stream: true }, asTenant('cust-replay'))
    await call('/v1/chat/completions', { model: 'gpt-4o', messages: [], stream: true }, asTenant('cust-replay'))
    expect(await eventsOf('cust-replay')).toHaveLength(1)
  })

  it('a provider error is relayed unchanged (status, body, retry-after) and nothing is recorded', async () => {
    const error = {
      error: { message: 'Rate limit reached for gpt-4o', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    }
    script = (_call, res) => json(res, 429, error, { 'retry-after': '7' })
    const response = await call('/v1/chat/completions', { model: 'gpt-4o', messages: [] }, asTenant('cust-429'))
    expect(response.status).toBe(429)
    expect(JSON.parse(response.text)).toEqual(error)
    expect(response.headers['retry-after']).toBe('7')
    expect(await eventsOf('cust-429')).toHaveLength(0)
  })

  it('a provider that does not answer in time gives 504 in the OpenAI error format', async () => {
    script = () => {} // never answers
    const response = await call('/v1/chat/completions', { model: 'gpt-4o', messages: [] }, asTenant('cust-timeout'))
    expect(response.status).toBe(504)
    expect(JSON.parse(response.text)).toMatchObject({ error: { type: 'upstream_timeout' } })
    await calls[0]!.closed // the gateway hung up on the provider
  })

  it('a stream that stalls is cut after the idle timeout; the usage seen is recorded', async () => {
    const events = fixture<any[]>('anthropic-stream').map((e) =>
      e.type === 'message_start' ? { ...e, message: { ...e.message, id: 'msg_stalled' } } : e,
    )
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(sse(events.slice(0, 4), { named: true })) // then silence
    }
    const response = await call(
      '/v1/messages',
      { model: 'claude-sonnet-4-20250514', max_tokens: 10, messages: [], stream: true },
      asTenant('cust-stall'),
    )
    expect(response.status).toBe(200) // headers were already sent; the stream is then cut
    expect(response.complete).toBe(false)
    expect(response.text).toBe(sse(events.slice(0, 4), { named: true }))
    const [event] = await eventuallyEvents('cust-stall', 1)
    expect(event).toMatchObject({ id: 'msg_stalled', input_tokens: 25 + 2048, output_tokens: 1 })
    expect(event!.metadata).toEqual({ source: 'gateway', partial: true })
  })

  it('an unreachable provider gives 502', async () => {
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const t2 = await createTestApp({
      loadCatalog: false,
      config: {
        PORT: 0,
        GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        GATEWAY_OPENAI_URL: `http://127.0.0.1:${port}`,
      },
    })
    const s2 = await startServer(t2.app, t2.app.services.config, createLogger('silent'))
    try {
      await t2.gql(`mutation { setProviderKey(input: { provider: OPENAI, apiKey: "sk-whatever-1234" }) { hint } }`)
      const response = await fetch(`${s2.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${t2.tenant.apiKey}`,
          'burnrate-customer': 'c',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ model: 'gpt-4o', messages: [] }),
      })
      expect(response.status).toBe(502)
      expect(await response.json()).toMatchObject({ error: { type: 'upstream_unreachable' } })
    } finally {
      await s2.close()
      await t2.close()
    }
  })
})

describe('POST /v1/messages (Anthropic-compatible)', () => {
  it('accepts the tenant key as x-api-key, forwards with the stored key and anthropic-version, records input as the sum of its parts', async () => {
    const answer = fixture('anthropic-message')
    script = (_call, res) => json(res, 200, answer, { 'request-id': 'req_018EeWyXxfu5pfWkrYcMdjWG' })
    const response = await call(
      '/v1/messages',
      { model: 'claude-sonnet-4-20250514', max_tokens: 1024, messages: [{ role: 'user', content: 'Hello' }] },
      {
        'x-api-key': t.tenant.apiKey,
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'prompt-caching-2024-07-31',
        'burnrate-customer': 'cust-anthropic',
      },
    )
    expect(response.status).toBe(200)
    expect(JSON.parse(response.text)).toEqual(answer)
    expect(response.headers['request-id']).toBe('req_018EeWyXxfu5pfWkrYcMdjWG')
    expect(calls[0]!.headers['x-api-key']).toBe(ANTHROPIC_KEY)
    expect(calls[0]!.headers['anthropic-version']).toBe('2023-06-01')
    expect(calls[0]!.headers['anthropic-beta']).toBe('prompt-caching-2024-07-31')
    expect(calls[0]!.headers.authorization).toBeUndefined()
    const [event] = await eventuallyEvents('cust-anthropic', 1)
    expect(event).toMatchObject({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
      provider: 'anthropic',
      input_tokens: 21 + 188086,
      cache_write_tokens: 188086,
      output_tokens: 393,
    })
  })

  it('streams the provider events through unchanged and records message_start + message_delta usage', async () => {
    const body = sse(fixture<any[]>('anthropic-stream'), { named: true })
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' })
      res.end(body)
    }
    const response = await call(
      '/v1/messages',
      { model: 'claude-sonnet-4-20250514', max_tokens: 100, messages: [], stream: true },
      asTenant('cust-astream'),
    )
    expect(response.text).toBe(body)
    const [event] = await eventsOf('cust-astream')
    expect(event).toMatchObject({
      id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
      input_tokens: 25 + 2048,
      cache_read_tokens: 2048,
      output_tokens: 15,
    })
    expect(event!.metadata).toEqual({ source: 'gateway' })
  })

  it('a client that disconnects mid-stream: the provider call is stopped and the usage seen so far is recorded once', async () => {
    const events = fixture<any[]>('anthropic-stream').map((e) =>
      e.type === 'message_start' ? { ...e, message: { ...e.message, id: 'msg_disconnect' } } : e,
    )
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(sse(events.slice(0, 4), { named: true })) // message_start … first delta, then the client leaves
    }
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...asTenant('cust-gone') },
      })
      req.on('error', () => resolve())
      req.on('response', (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('timeout', () => reject(new Error('no data')))
      req.end(JSON.stringify({ model: 'claude-sonnet-4-20250514', max_tokens: 100, messages: [], stream: true }))
    })
    await calls[0]!.closed // the gateway stopped the provider call
    const rows = await eventuallyEvents('cust-gone', 1)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ id: 'msg_disconnect', input_tokens: 25 + 2048, output_tokens: 1 })
    expect(rows[0]!.metadata).toEqual({ source: 'gateway', partial: true })
  })
})

describe('refusals before the provider is called', () => {
  it('no key, a wrong key, a missing customer, a bad body, a missing provider key', async () => {
    const body = { model: 'gpt-4o', messages: [] }
    expect((await call('/v1/chat/completions', body, { 'burnrate-customer': 'x' })).status).toBe(401)
    expect(
      (await call('/v1/chat/completions', body, { authorization: 'Bearer br_sk_wrong', 'burnrate-customer': 'x' }))
        .status,
    ).toBe(401)
    // A widget session token (read-only, one customer) is not a tenant key.
    const widget = await t.gql(`mutation { createWidgetSession(customerId: "acme") { token } }`)
    const widgetToken = widget.data?.createWidgetSession.token as string
    expect(widgetToken).toBeTruthy()
    expect(
      (
        await call('/v1/chat/completions', body, {
          authorization: `Bearer ${widgetToken}`,
          'burnrate-customer': 'acme',
        })
      ).status,
    ).toBe(401)
    const noCustomer = await call('/v1/chat/completions', body, { authorization: `Bearer ${t.tenant.apiKey}` })
    expect(noCustomer.status).toBe(400)
    expect(JSON.parse(noCustomer.text).error.message).toMatch(/Burnrate-Customer/)
    expect((await call('/v1/chat/completions', '{not json', asTenant())).status).toBe(400)
    const anthropicBad = await call('/v1/messages', { messages: [] }, asTenant())
    expect(anthropicBad.status).toBe(400)
    expect(JSON.parse(anthropicBad.text)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })
    // Tenant isolation: the other tenant has no provider key of its own, and never borrows this one.
    const otherTenant = await call('/v1/chat/completions', body, {
      authorization: `Bearer ${other.apiKey}`,
      'burnrate-customer': 'x',
    })
    expect(otherTenant.status).toBe(400)
    expect(JSON.parse(otherTenant.text).error.code).toBe('provider_key_missing')
    expect(calls).toHaveLength(0)
  })

  it('a body over MAX_BODY_BYTES gets 413 in the provider error format; without a key, 401 before the body is read', async () => {
    const limit = t.app.services.config.MAX_BODY_BYTES
    const huge = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(limit) }] })
    const openai = await call('/v1/chat/completions', huge, asTenant())
    expect(openai.status).toBe(413)
    expect(JSON.parse(openai.text)).toEqual({
      error: {
        message: `The request body is larger than ${limit} bytes (MAX_BODY_BYTES).`,
        type: 'request_too_large',
        param: null,
        code: 'request_too_large',
      },
    })
    const anthropic = await call('/v1/messages', huge, asTenant())
    expect(anthropic.status).toBe(413)
    expect(JSON.parse(anthropic.text)).toMatchObject({ type: 'error', error: { type: 'request_too_large' } })
    const anonymous = await call('/v1/messages', huge, { 'burnrate-customer': 'x' })
    expect(anonymous.status).toBe(401)
    expect(JSON.parse(anonymous.text)).toMatchObject({ type: 'error', error: { type: 'authentication_error' } })
    expect(calls).toHaveLength(0)
  })

  it('a customer over its hard budget is refused with 402 and the provider is never called', async ({ skip }) => {
    if (!('budgets' in t.app.services)) skip()
    const set = await t.gql(
      `mutation { setBudget(input: { customerId: "cust-budget", period: MONTH, limit: "0.000001", hardLimit: true }) { id } }`,
    )
    expect(set.errors).toBeUndefined()
    script = (_call, res) =>
      json(res, 200, {
        ...fixture<Record<string, unknown>>('openai-chat-completion'),
        id: 'chatcmpl-budget-1',
        created: Math.floor(Date.now() / 1000) - 5,
      })
    const refused = await call('/v1/chat/completions', { model: 'gpt-4o', messages: [] }, asTenant('cust-budget'))
    expect(refused.status).toBe(402)
    expect(JSON.parse(refused.text).error.code).toBe('budget_exceeded')
    expect(calls).toHaveLength(0)
  })
})

// ------------------------------------------------------------------ hard budgets: the call's worst case is held

const openaiAnswer = (id: string) => ({
  ...fixture<Record<string, unknown>>('openai-chat-completion'),
  id,
  created: Math.floor(Date.now() / 1000) - 5,
})

async function reservationsOf(customerId: string) {
  return t.database.db
    .selectFrom('budget_reservations')
    .selectAll()
    .where('tenant_id', '=', t.tenant.id)
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .execute()
}

/** Waits until none of the customer's reservations is open (a JSON answer's bytes reach the client before its usage is recorded). */
async function eventuallyClosedReservations(customerId: string, n: number) {
  // A deadline, not a timing assertion: it returns as soon as they are closed.
  for (let i = 0; i < 1000; i++) {
    const rows = await reservationsOf(customerId)
    if (rows.length >= n && rows.every((r) => r.settled_at !== null)) return rows
    await new Promise((r) => setTimeout(r, 20))
  }
  return reservationsOf(customerId)
}

/** What the gateway holds for `body` (no plan in these tests): the same pure functions, the same catalog. */
function estimateOf(provider: 'openai' | 'anthropic', body: Record<string, unknown>): string {
  const { catalog, config } = t.app.services
  const resolved = catalog.resolve(body.model as string, provider, t.tenant.id)!
  const prices = catalog.pricesAt(resolved.provider, resolved.model, new Date(), t.tenant.id)
  return holdAmount(
    worstCaseAmount(
      boundCall(provider, body, { defaultMaxOutputTokens: config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS }),
      prices,
      null,
    ),
  )
}

async function hardBudget(customerId: string, limit: string, hardLimit = true) {
  const set = await t.gql(`mutation($i: BudgetInput!) { setBudget(input: $i) { id } }`, {
    i: { customerId, period: 'MONTH', limit, hardLimit },
  })
  expect(set.errors).toBeUndefined()
}

describe('hard budgets: the worst case of a call is reserved before it goes out', () => {
  it('a call whose estimate exceeds what remains is refused with 402 (estimate and remaining in the message); the provider receives nothing', async () => {
    const body = {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'write a novel' }],
      max_completion_tokens: 100_000,
    }
    const estimate = estimateOf('openai', body)
    expect(new Decimal(estimate).greaterThan('0.5')).toBe(true) // 100k output tokens of gpt-4o
    await hardBudget('cust-hold-refused', '0.5')
    script = (_call, res) => json(res, 200, openaiAnswer('chatcmpl-never'))
    const refused = await call('/v1/chat/completions', body, asTenant('cust-hold-refused'))
    expect(refused.status).toBe(402)
    const error = JSON.parse(refused.text).error
    expect(error).toMatchObject({ type: 'budget_exceeded', code: 'budget_exceeded' })
    expect(error.message).toContain(`up to ${estimate} USD`)
    expect(error.message).toContain('0.5 remains')
    expect(calls).toHaveLength(0)
    expect(await reservationsOf('cust-hold-refused')).toEqual([])

    // The same call with a cap that fits goes through.
    const fits = await call(
      '/v1/chat/completions',
      { ...body, max_completion_tokens: 1000 },
      asTenant('cust-hold-refused'),
    )
    expect(fits.status).toBe(200)
    expect(calls).toHaveLength(1)
  })

  it('a call within budget goes through; its usage is recorded with the reservation, which it settles', async () => {
    await hardBudget('cust-hold-ok', '100')
    script = (_call, res) => json(res, 200, openaiAnswer('chatcmpl-hold-ok'))
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 }
    const response = await call('/v1/chat/completions', body, asTenant('cust-hold-ok'))
    expect(response.status).toBe(200)
    expect(calls[0]!.body).toEqual(body) // the client's own cap: the request is forwarded unchanged
    const [event] = await eventuallyEvents('cust-hold-ok', 1)
    const [reservation] = await eventuallyClosedReservations('cust-hold-ok', 1)
    expect(reservation).toBeDefined()
    expect(new Decimal(reservation!.amount).equals(estimateOf('openai', body))).toBe(true)
    expect(event).toMatchObject({ id: 'chatcmpl-hold-ok', status: 'PRICED', reservation_id: reservation!.id })
    expect(reservation!.settled_event_id).toBe('chatcmpl-hold-ok')
    expect(new Decimal(reservation!.settled_amount!).equals(event!.amount!)).toBe(true)
    // Nothing is held any more; the spend is the event's amount.
    const [budget] = await t.app.services.budgets.budgets(
      (await t.app.services.tenants.authenticate(t.tenant.apiKey))!,
      'cust-hold-ok',
    )
    expect(budget).toMatchObject({ reserved: '0' })
    expect(new Decimal(budget!.spent).equals(event!.amount!)).toBe(true)
  })

  it('a call without an output cap is held at GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS, which is sent to OpenAI as its cap', async () => {
    await hardBudget('cust-hold-default', '100')
    script = (_call, res) => json(res, 200, openaiAnswer('chatcmpl-hold-default'))
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }
    expect((await call('/v1/chat/completions', body, asTenant('cust-hold-default'))).status).toBe(200)
    expect(calls[0]!.body).toEqual({
      ...body,
      max_completion_tokens: t.app.services.config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS,
    })
    const [reservation] = await eventuallyClosedReservations('cust-hold-default', 1)
    expect(new Decimal(reservation!.amount).equals(estimateOf('openai', body))).toBe(true)
    expect(reservation!.settled_event_id).toBe('chatcmpl-hold-default')
  })

  it('an upstream error releases the reservation; nothing is recorded', async () => {
    await hardBudget('cust-hold-500', '100')
    script = (_call, res) =>
      json(res, 500, { error: { message: 'The server had an error', type: 'server_error', param: null, code: null } })
    const response = await call(
      '/v1/chat/completions',
      { model: 'gpt-4o', messages: [], max_tokens: 10 },
      asTenant('cust-hold-500'),
    )
    expect(response.status).toBe(500)
    const [reservation] = await reservationsOf('cust-hold-500')
    expect(reservation).toMatchObject({ settled_event_id: null })
    expect(reservation!.settled_at).not.toBeNull()
    expect(new Decimal(reservation!.settled_amount!).isZero()).toBe(true)
    expect(await eventsOf('cust-hold-500')).toHaveLength(0)
  })

  it('a timeout, and an answer without usage, release it too', async () => {
    await hardBudget('cust-hold-timeout', '100')
    script = () => {} // never answers
    expect(
      (
        await call(
          '/v1/chat/completions',
          { model: 'gpt-4o', messages: [], max_tokens: 10 },
          asTenant('cust-hold-timeout'),
        )
      ).status,
    ).toBe(504)
    script = (_call, res) =>
      json(res, 200, { id: 'chatcmpl-no-usage', object: 'chat.completion', model: 'gpt-4o', choices: [] })
    expect(
      (
        await call(
          '/v1/chat/completions',
          { model: 'gpt-4o', messages: [], max_tokens: 10 },
          asTenant('cust-hold-timeout'),
        )
      ).status,
    ).toBe(200)
    const reservations = await eventuallyClosedReservations('cust-hold-timeout', 2)
    expect(reservations).toHaveLength(2)
    for (const r of reservations) {
      expect(r.settled_at).not.toBeNull()
      expect(r.settled_event_id).toBeNull()
    }
  })

  it('concurrent calls cannot jointly overshoot: with room for exactly K estimates, exactly K reach the provider', async () => {
    const N = 6
    const K = 3
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1000 }
    await hardBudget('cust-hold-race', new Decimal(estimateOf('openai', body)).times(K).toFixed())
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    let n = 0
    script = async (_call, res) => {
      const id = `chatcmpl-race-${n++}`
      await gate // every call holds its reservation until all refusals are in
      json(res, 200, openaiAnswer(id))
    }
    const statuses: number[] = []
    const all = Array.from({ length: N }, () =>
      call('/v1/chat/completions', body, asTenant('cust-hold-race')).then((r) => statuses.push(r.status)),
    )
    for (let i = 0; i < 1000 && statuses.length < N - K; i++) await new Promise((r) => setTimeout(r, 10))
    expect(statuses).toEqual(Array(N - K).fill(402))
    open()
    await Promise.all(all)
    expect(calls).toHaveLength(K)
    expect(statuses.filter((s) => s === 200)).toHaveLength(K)
    const reservations = await eventuallyClosedReservations('cust-hold-race', K)
    expect(reservations).toHaveLength(K)
    expect(reservations.every((r) => r.settled_event_id !== null)).toBe(true)
  })

  it('a streamed call settles its reservation (Anthropic)', async () => {
    await hardBudget('cust-hold-stream', '100')
    const body = sse(
      fixture<any[]>('anthropic-stream').map((e) =>
        e.type === 'message_start' ? { ...e, message: { ...e.message, id: 'msg_hold_stream' } } : e,
      ),
      { named: true },
    )
    script = (_call, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(body)
    }
    const request = {
      model: 'claude-sonnet-4-20250514',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    }
    const response = await call('/v1/messages', request, asTenant('cust-hold-stream'))
    expect(response.text).toBe(body)
    expect(calls[0]!.body).toEqual(request)
    const [event] = await eventsOf('cust-hold-stream')
    const [reservation] = await reservationsOf('cust-hold-stream')
    expect(new Decimal(reservation!.amount).equals(estimateOf('anthropic', request))).toBe(true)
    expect(event).toMatchObject({ id: 'msg_hold_stream', reservation_id: reservation!.id })
    expect(reservation!.settled_event_id).toBe('msg_hold_stream')
  })

  it('a body nested 20,000 deep is refused with 400 before anything is estimated or held (it was a 500)', async () => {
    await hardBudget('cust-deep', '100')
    script = (_call, res) => json(res, 200, openaiAnswer('chatcmpl-deep'))
    const deep = `{"model":"gpt-4o","messages":${'['.repeat(20_000)}1${']'.repeat(20_000)}}`
    for (const path of ['/v1/chat/completions', '/v1/messages']) {
      const refused = await call(path, deep, asTenant('cust-deep'))
      expect(refused.status, path).toBe(400)
      expect(refused.text, path).toContain('nests arrays and objects more than 128 levels deep')
    }
    expect(calls).toHaveLength(0)
    expect(await reservationsOf('cust-deep')).toEqual([])

    // A real structured-output request nests a few dozen levels at most and goes through.
    let schema: Record<string, unknown> = { type: 'string' }
    for (let i = 0; i < 20; i++) schema = { type: 'object', properties: { inner: schema }, required: ['inner'] }
    const ok = await call(
      '/v1/chat/completions',
      {
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 10,
        response_format: { type: 'json_schema', json_schema: { name: 'n', schema } },
      },
      asTenant('cust-deep'),
    )
    expect(ok.status).toBe(200)
    expect(calls).toHaveLength(1)
  })

  it('a model the catalog cannot price is refused under a hard budget (and let through without one)', async () => {
    await hardBudget('cust-hold-unpriced', '100')
    script = (_call, res) => json(res, 200, { ...openaiAnswer('chatcmpl-unpriced'), model: 'mystery-model-1' })
    const refused = await call(
      '/v1/chat/completions',
      { model: 'mystery-model-1', messages: [], max_tokens: 10 },
      asTenant('cust-hold-unpriced'),
    )
    expect(refused.status).toBe(402)
    expect(JSON.parse(refused.text).error).toMatchObject({ type: 'budget_unpriced_model' })
    expect(JSON.parse(refused.text).error.message).toContain('mystery-model-1')
    expect(calls).toHaveLength(0)
    expect(
      (
        await call(
          '/v1/chat/completions',
          { model: 'mystery-model-1', messages: [], max_tokens: 10 },
          asTenant('cust-no-budget'),
        )
      ).status,
    ).toBe(200)
  })

  it('a model priced for input only (a negotiated price, no public output) is refused, naming output', async () => {
    await hardBudget('cust-hold-half', '100')
    const override = await t.gql(`mutation($i: PriceOverrideInput!) { setPriceOverride(input: $i) { usageType } }`, {
      i: {
        provider: 'openai',
        model: 'in-house-1',
        usageType: 'input',
        unitPrice: '0.000001',
        effectiveFrom: '2026-01-01T00:00:00Z',
      },
    })
    expect(override.errors).toBeUndefined()
    script = (_call, res) => json(res, 200, { ...openaiAnswer('chatcmpl-half'), model: 'in-house-1' })
    const refused = await call(
      '/v1/chat/completions',
      { model: 'in-house-1', messages: [], max_tokens: 10 },
      asTenant('cust-hold-half'),
    )
    expect(refused.status).toBe(402)
    expect(JSON.parse(refused.text).error).toMatchObject({ type: 'budget_unpriced_model' })
    expect(JSON.parse(refused.text).error.message).toContain('has no price for output')
    expect(calls).toHaveLength(0)
    expect(await reservationsOf('cust-hold-half')).toEqual([])
  })

  it('no budget, or only soft ones: nothing is reserved and the request goes out unchanged', async () => {
    await hardBudget('cust-soft', '0.000001', false)
    script = (_call, res) => json(res, 200, openaiAnswer(`chatcmpl-soft-${calls.length}`))
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }
    expect((await call('/v1/chat/completions', body, asTenant('cust-soft'))).status).toBe(200)
    expect((await call('/v1/chat/completions', body, asTenant('cust-soft'))).status).toBe(200)
    expect(calls.map((c) => c.body)).toEqual([body, body])
    expect(await reservationsOf('cust-soft')).toEqual([])
  })
})

describe('hard budgets on a lease (GATEWAY_BUDGET_LEASE_CALLS, the default)', () => {
  let tl: TestApp
  let sl: RunningServer
  beforeAll(async () => {
    tl = await createTestApp({
      config: { PORT: 0, GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), GATEWAY_OPENAI_URL: upstreamUrl },
    })
    sl = await startServer(tl.app, tl.app.services.config, createLogger('silent'))
    const set = await tl.gql(
      `mutation { setProviderKey(input: { provider: OPENAI, apiKey: "${OPENAI_KEY}" }) { hint } }`,
    )
    expect(set.errors).toBeUndefined()
  })
  afterAll(async () => {
    await sl?.close()
    await tl?.close()
  })
  const as = (customerId: string) => ({ authorization: `Bearer ${tl.tenant.apiKey}`, 'burnrate-customer': customerId })
  const rows = (table: 'budget_reservations' | 'usage_events', customerId: string) =>
    tl.database.db
      .selectFrom(table)
      .selectAll()
      .where('tenant_id', '=', tl.tenant.id)
      .where('customer_id', '=', customerId)
      .execute()
  async function setHard(customerId: string, limit: string) {
    const r = await tl.gql(`mutation($i: BudgetInput!) { setBudget(input: $i) { id } }`, {
      i: { customerId, period: 'MONTH', limit, hardLimit: true },
    })
    expect(r.errors).toBeUndefined()
  }
  const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1000 }

  it('concurrent calls share a lease: one reservation for many calls, events without one, the lease released after', async () => {
    await setHard('cust-lease', '100')
    let n = 0
    script = (_call, res) => json(res, 200, openaiAnswer(`chatcmpl-lease-${n++}`))
    const responses = await Promise.all(
      Array.from({ length: 12 }, () => call('/v1/chat/completions', body, as('cust-lease'), sl.url)),
    )
    expect(responses.map((r) => r.status)).toEqual(Array(12).fill(200))
    const reservations = await rows('budget_reservations', 'cust-lease')
    expect(reservations.length).toBeGreaterThanOrEqual(1)
    expect(reservations.length).toBeLessThan(12)
    // A deadline, not a timing assertion: the usage is recorded as each answer ends, the lease
    // released when its age is up and its last call is done.
    let events = await rows('usage_events', 'cust-lease')
    let open = reservations
    for (let i = 0; i < 1000 && (events.length < 12 || open.some((r) => r.settled_at === null)); i++) {
      await new Promise((r) => setTimeout(r, 20))
      events = await rows('usage_events', 'cust-lease')
      open = await rows('budget_reservations', 'cust-lease')
    }
    expect(events).toHaveLength(12)
    expect(events.every((e) => e.reservation_id === null && e.status === 'PRICED')).toBe(true)
    expect(open.every((r) => r.settled_at !== null && r.settled_event_id === null)).toBe(true)
    const tenant = (await tl.app.services.tenants.authenticate(tl.tenant.apiKey))!
    const [budget] = await tl.app.services.budgets.budgets(tenant, 'cust-lease')
    expect(budget).toMatchObject({ reserved: '0' })
    const spent = events.reduce((sum, e) => sum.plus(e.amount!), new Decimal(0))
    expect(new Decimal(budget!.spent).equals(spent)).toBe(true)
  })

  it('concurrent calls cannot jointly overshoot a limit on leases either', async () => {
    const N = 24
    const room = 10.5 // estimates
    const estimate = new Decimal(
      holdAmount(
        worstCaseAmount(
          boundCall('openai', body, {
            defaultMaxOutputTokens: tl.app.services.config.GATEWAY_DEFAULT_MAX_OUTPUT_TOKENS,
          }),
          tl.app.services.catalog.pricesAt('openai', 'gpt-4o', new Date(), tl.tenant.id),
          null,
        ),
      ),
    )
    await setHard('cust-lease-race', estimate.times(room).toFixed())
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    let n = 0
    script = async (_call, res) => {
      const id = `chatcmpl-lease-race-${n++}`
      await gate // every admitted call stays in flight until all refusals are in
      json(res, 200, openaiAnswer(id))
    }
    const statuses: number[] = []
    const all = Array.from({ length: N }, () =>
      call('/v1/chat/completions', body, as('cust-lease-race'), sl.url).then((r) => statuses.push(r.status)),
    )
    for (let i = 0; i < 1000 && calls.length + statuses.length < N; i++) await new Promise((r) => setTimeout(r, 10))
    const admitted = calls.length
    expect(admitted).toBeGreaterThanOrEqual(1)
    expect(admitted).toBeLessThanOrEqual(Math.floor(room))
    expect(statuses).toEqual(Array(N - admitted).fill(402))
    open()
    await Promise.all(all)
    expect(statuses.filter((s) => s === 200)).toHaveLength(admitted)
    expect(calls).toHaveLength(admitted)
  })
})

describe('SSE event splitting', () => {
  it('keeps every byte, whatever the line endings and chunk boundaries', () => {
    const text = 'event: a\r\ndata: {"x":1}\r\n\r\n: comment\n\ndata: 2\rdata: 3\r\r: end\n\n'
    const bytes = new TextEncoder().encode(text)
    for (const size of [1, 2, 5, 100]) {
      const splitter = new SseEventSplitter()
      const out: { raw: string; data: string | null }[] = []
      for (let i = 0; i < bytes.length; i += size) out.push(...splitter.push(bytes.slice(i, i + size)))
      expect(out.map((e) => e.raw).join('') + splitter.rest()).toBe(text)
      expect(out.map((e) => e.data)).toEqual(['{"x":1}', null, '2\n3', null])
    }
  })
})
