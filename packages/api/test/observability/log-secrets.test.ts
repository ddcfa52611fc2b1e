import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { systemClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger, withRequestId } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { MASTER_KEY, SET_CREDENTIALS } from '../stripe/stripe-support.ts'

/**
 * Every line the app and its server log while serving representative traffic, at debug level:
 * none may contain a credential or a prompt, and the lines written while serving a request carry its id.
 */
const lines: string[] = []
const logger = createLogger('debug', (line) => lines.push(line))

const PROMPT = 'Tell me the launch codes 7f3a9c please'
const OPENAI_KEY = 'sk-proj-logsecret-upstream-0001'
const STRIPE_KEY = 'sk_test_logsecretStripe0001'
const STRIPE_WEBHOOK_SECRET = 'whsec_logsecretStripeWebhook'

let database: TestDatabase
let app: App
let server: RunningServer
let upstream: Server
let upstreamMode: 'ok' | 'error' | 'no-usage' = 'ok'
const secrets: string[] = [OPENAI_KEY, STRIPE_KEY, STRIPE_WEBHOOK_SECRET, PROMPT]
let apiKey = ''

async function http(path: string, init: { method?: string; headers?: Record<string, string>; body?: string }) {
  return fetch(`${server.url}${path}`, { method: init.method ?? 'POST', headers: init.headers, body: init.body })
}

async function gql(query: string, variables: Record<string, unknown> = {}, key: string | null = apiKey) {
  const res = await http('/graphql', {
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query, variables }),
  })
  return { status: res.status, requestId: res.headers.get('x-request-id'), body: (await res.json()) as any }
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (upstreamMode === 'error') {
        // A provider error that echoes what it was sent: must not end up in our logs.
        res.writeHead(500, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ error: { message: `bad key ${OPENAI_KEY} for ${PROMPT}` } }))
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      const answer = { id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4o', choices: [] as unknown[] }
      res.end(
        JSON.stringify(
          upstreamMode === 'ok'
            ? { ...answer, usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }
            : { ...answer, echo: PROMPT },
        ),
      )
    })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  database = await createTestDatabase()
  const config = defaultConfig({
    LOG_LEVEL: 'debug',
    PORT: 0,
    STRIPE_ENCRYPTION_KEY: MASTER_KEY,
    GATEWAY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    GATEWAY_OPENAI_URL: upstreamUrl,
    STRIPE_PUSH_ENABLED: false,
  })
  app = createApp({ db: database.db, clock: systemClock, config, logger })
  await app.services.catalog.syncBundled()
  const created = await app.services.tenants.create({ name: 'Logs' })
  apiKey = created.apiKey
  secrets.push(created.apiKey, created.signingSecret)
  server = await startServer(app, config, logger)
})

afterAll(async () => {
  await server?.close()
  await database?.destroy()
  upstream?.closeAllConnections()
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()))
})

describe('logs', () => {
  it('never contain a credential or a prompt, and request lines carry the request id', async () => {
    const setup = lines.splice(0)
    expect(setup.join('\n')).not.toContain(apiKey)
    // A tenant key used.
    expect((await gql('{ tenant { id } }')).body.errors).toBeUndefined()
    // A widget session token issued and used.
    const session = await gql('mutation { createWidgetSession(customerId: "acme") { token } }')
    const widgetToken = session.body.data.createWidgetSession.token as string
    secrets.push(widgetToken)
    await gql('{ widgetSession { customerId } }', {}, widgetToken)
    // Stripe credentials.
    const stripe = await gql(SET_CREDENTIALS, {
      input: { secretKey: STRIPE_KEY, webhookSecret: STRIPE_WEBHOOK_SECRET },
    })
    expect(stripe.body.errors).toBeUndefined()
    // A webhook endpoint's signing secret.
    const endpoint = await gql(
      'mutation { createWebhookEndpoint(url: "https://example.com/hook", eventTypes: ["budget.alert"]) { secret } }',
    )
    expect(endpoint.body.errors).toBeUndefined()
    secrets.push(endpoint.body.data.createWebhookEndpoint.secret as string)
    // A provider key, then prompts through the gateway: answered, failed upstream, answered without usage.
    const providerKey = await gql('mutation($i: ProviderKeyInput!) { setProviderKey(input: $i) { hint } }', {
      i: { provider: 'OPENAI', apiKey: OPENAI_KEY },
    })
    expect(providerKey.body.errors).toBeUndefined()
    const gatewayCall = () =>
      http('/v1/chat/completions', {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'burnrate-customer': 'acme' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: PROMPT }] }),
      })
    for (const mode of ['ok', 'error', 'no-usage'] as const) {
      upstreamMode = mode
      await (await gatewayCall()).text()
    }
    // Bad requests: a wrong key (key-shaped), the gateway and OTLP without a valid key, unparseable bodies.
    const wrongKey = 'br_sk_' + 'x'.repeat(32)
    secrets.push(wrongKey)
    await gql('{ tenant { id } }', {}, wrongKey)
    for (const path of ['/v1/chat/completions', '/v1/traces', '/stripe/webhooks'])
      await (
        await http(path, {
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${wrongKey}`,
            'stripe-signature': 'v1=x',
          },
          body: `{"messages":[{"content":"${PROMPT}"}]`,
        })
      ).text()
    await (
      await http('/graphql', {
        headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
        body: `{"query": "${PROMPT}`,
      })
    ).text()
    // A request id given by the caller comes back on a plain HTTP route too.
    const metrics = await http('/metrics', { method: 'GET', headers: { 'x-request-id': 'req-logs-1' } })
    expect(metrics.headers.get('x-request-id')).toBe('req-logs-1')
    await metrics.text()

    // What the app itself would log carelessly, inside a request: the logger redacts it.
    withRequestId(logger, 'req-logs-direct', () =>
      logger.error('careless', {
        headers: { authorization: `Bearer ${apiKey}` },
        body: { messages: [{ content: PROMPT }] },
        detail: `provider said ${OPENAI_KEY}; stripe ${STRIPE_KEY} ${STRIPE_WEBHOOK_SECRET}; widget ${widgetToken}`,
        error: new Error(`failed for ${apiKey}`),
      }),
    )

    if (process.env.SHOW_LOGS) console.log(lines.join('\n'))
    expect(lines.length).toBeGreaterThanOrEqual(3)
    const all = lines.join('\n')
    for (const secret of secrets) expect(all, `logged: ${secret}`).not.toContain(secret)
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(entries.find((e) => e.msg === 'careless')).toMatchObject({
      requestId: 'req-logs-direct',
      headers: { authorization: '[redacted]' },
      body: '[redacted]',
    })
    // Every line written while serving an HTTP request (all of them here but the direct one) carries its id.
    const served = entries.filter((e) => e.msg !== 'careless')
    expect(served.length).toBeGreaterThan(0)
    for (const entry of served) expect(entry, JSON.stringify(entry)).toHaveProperty('requestId')
  })
})
