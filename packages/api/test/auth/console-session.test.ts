/**
 * Console sessions over real HTTP: sign in with a key for an HttpOnly SameSite=Strict cookie, use
 * it on /graphql (queries freely, mutations only with the CSRF token), in subscriptions over SSE and
 * graphql-ws (same origin only), sign out; a revoked key's sessions die at once.
 */
import { createClient as createWsClient } from 'graphql-ws'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

let t: TestApp
let server: RunningServer

beforeAll(async () => {
  t = await createTestApp({ loadCatalog: false, config: { PORT: 0 } })
  server = await startServer(t.app, t.app.services.config, createLogger('silent'))
})
afterAll(async () => {
  await server?.close()
  await t?.close()
})

const SESSION = '/console/api/session'

async function signIn(key: string, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + SESSION, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ key }),
  })
  const body = (await res.json()) as Record<string, any>
  const setCookie = res.headers.get('set-cookie') ?? ''
  const cookie = /^br_console=([^;]+)/.exec(setCookie)?.[1]
  return { status: res.status, body, setCookie, cookie: cookie ? `br_console=${cookie}` : '' }
}

async function graphql(
  query: string,
  headers: Record<string, string>,
  variables: Record<string, unknown> = {},
): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(server.url + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  })
  return { status: res.status, body: (await res.json()) as Record<string, any> }
}

async function readOnlyKey(): Promise<string> {
  const res = await t.gql('mutation { createApiKey(input: { name: "viewer", role: READ_ONLY }) { secret } }')
  return res.data!.createApiKey.secret as string
}

describe('sign in', () => {
  it('exchanges a key for an HttpOnly SameSite=Strict cookie and a CSRF token', async () => {
    const s = await signIn(t.tenant.apiKey)
    expect(s.status).toBe(200)
    expect(s.body).toMatchObject({
      role: 'ADMIN',
      keyName: 'default',
      tenant: { id: t.tenant.id, name: 'Test tenant' },
    })
    expect(s.body.csrfToken).toMatch(/^[\w-]{20,}$/)
    expect(s.setCookie).toMatch(/^br_console=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/)
    expect(s.setCookie).not.toContain('Secure')
    expect(s.setCookie).not.toContain(t.tenant.apiKey)
    // The session is stored hashed: the cookie's value is nowhere in the database.
    const rows = await t.database.db.selectFrom('console_sessions').select('id_hash').execute()
    expect(rows.map((r) => r.id_hash)).not.toContain(s.cookie.slice('br_console='.length))

    const me = await fetch(server.url + SESSION, { headers: { cookie: s.cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toEqual(s.body)
  })

  it('marks the cookie Secure behind https', async () => {
    const s = await signIn(t.tenant.apiKey, { 'x-forwarded-proto': 'https' })
    expect(s.setCookie).toMatch(/; Secure$/)
  })

  it('refuses a bad key with 401 and a malformed body with 400', async () => {
    const bad = await signIn('br_sk_nope')
    expect(bad.status).toBe(401)
    expect(bad.body.error).toMatchObject({ code: 'UNAUTHENTICATED', field: 'key' })
    expect(bad.body.error.message).toMatch(/not valid/)
    expect(bad.setCookie).toBe('')
    const res = await fetch(server.url + SESSION, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error).toMatchObject({ code: 'BAD_USER_INPUT', field: 'key' })
  })

  it('answers 401 without a valid cookie', async () => {
    for (const cookie of [undefined, 'br_console=forged', 'other=1']) {
      const res = await fetch(server.url + SESSION, { headers: cookie ? { cookie } : {} })
      expect(res.status).toBe(401)
      expect(((await res.json()) as any).error.code).toBe('UNAUTHENTICATED')
    }
  })
})

describe('/graphql with the cookie', () => {
  it('runs queries; mutations need x-csrf-token (403 otherwise) and are audited as the session', async () => {
    const s = await signIn(t.tenant.apiKey)
    const q = await graphql('{ viewer { role authMethod tenant { id } } }', { cookie: s.cookie })
    expect(q.status).toBe(200)
    expect(q.body.data.viewer).toEqual({ role: 'ADMIN', authMethod: 'SESSION', tenant: { id: t.tenant.id } })

    const SET = 'mutation { setPricingPlan(input: { kind: MARKUP, percent: "25" }) { percent } }'
    const refused = await graphql(SET, { cookie: s.cookie })
    expect(refused.status).toBe(403)
    expect(refused.body.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'CSRF' })
    expect(refused.body.errors[0].message).toMatch(/x-csrf-token/)
    const wrong = await graphql(SET, { cookie: s.cookie, 'x-csrf-token': 'not-it' })
    expect(wrong.status).toBe(403)
    expect((await t.gql('{ pricingPlan { percent } }')).data!.pricingPlan.percent).toBe('0')

    const ok = await graphql(SET, {
      cookie: s.cookie,
      'x-csrf-token': s.body.csrfToken,
      'x-request-id': 'console-req-1',
    })
    expect(ok.status).toBe(200)
    expect(ok.body.data.setPricingPlan.percent).toBe('25')
    const log = await t.gql(
      '{ auditLog(filter: { action: "pricingPlan.set" }, first: 1) { edges { node { actorAuthMethod actorKeyName requestId after } } } }',
    )
    expect(log.data!.auditLog.edges[0].node).toMatchObject({
      actorAuthMethod: 'SESSION',
      actorKeyName: 'default',
      requestId: 'console-req-1',
    })
  })

  it('ignores the cookie from another origin', async () => {
    const s = await signIn(t.tenant.apiKey)
    const q = await graphql('{ viewer { role } }', { cookie: s.cookie, origin: 'https://evil.example' })
    expect(q.status).toBe(401)
    expect(q.body.errors[0].extensions.code).toBe('UNAUTHENTICATED')
    const signin = await fetch(server.url + SESSION, { headers: { cookie: s.cookie, origin: 'https://evil.example' } })
    expect(signin.status).toBe(403)
  })

  it('a READ_ONLY session reads and is refused mutations even with its token', async () => {
    const s = await signIn(await readOnlyKey())
    expect(s.body.role).toBe('READ_ONLY')
    const q = await graphql('{ viewer { role } apiKeys { name } }', { cookie: s.cookie })
    expect(q.body.data.viewer.role).toBe('READ_ONLY')
    const m = await graphql('mutation { setPricingPlan(input: { kind: MARKUP, percent: "99" }) { percent } }', {
      cookie: s.cookie,
      'x-csrf-token': s.body.csrfToken,
    })
    expect(m.body.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'READ_ONLY' })
  })
})

describe('ending sessions', () => {
  it('signs out with the CSRF token only', async () => {
    const s = await signIn(t.tenant.apiKey)
    const noToken = await fetch(server.url + SESSION, { method: 'DELETE', headers: { cookie: s.cookie } })
    expect(noToken.status).toBe(403)
    expect(((await noToken.json()) as any).error).toMatchObject({ code: 'FORBIDDEN', reason: 'CSRF' })
    const out = await fetch(server.url + SESSION, {
      method: 'DELETE',
      headers: { cookie: s.cookie, 'x-csrf-token': s.body.csrfToken },
    })
    expect(out.status).toBe(204)
    expect(out.headers.get('set-cookie')).toMatch(/^br_console=; HttpOnly; SameSite=Strict; Path=\/; Max-Age=0/)
    expect((await fetch(server.url + SESSION, { headers: { cookie: s.cookie } })).status).toBe(401)
    expect((await graphql('{ viewer { role } }', { cookie: s.cookie })).status).toBe(401)
  })

  it('revoking the key ends its sessions at once', async () => {
    const created = await t.gql(
      'mutation { createApiKey(input: { name: "temp", role: ADMIN }) { secret apiKey { id } } }',
    )
    const { secret, apiKey } = created.data!.createApiKey
    const s = await signIn(secret)
    expect((await graphql('{ viewer { keyName } }', { cookie: s.cookie })).body.data.viewer.keyName).toBe('temp')
    await t.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: apiKey.id })
    expect((await fetch(server.url + SESSION, { headers: { cookie: s.cookie } })).status).toBe(401)
    expect((await graphql('{ viewer { keyName } }', { cookie: s.cookie })).status).toBe(401)
    expect((await signIn(secret)).status).toBe(401)
  })

  it('expires after CONSOLE_SESSION_TTL_SECONDS', async () => {
    const s = await signIn(t.tenant.apiKey)
    await t.database.db
      .updateTable('console_sessions')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .execute()
    expect((await fetch(server.url + SESSION, { headers: { cookie: s.cookie } })).status).toBe(401)
  })
})

describe('subscriptions with the cookie', () => {
  const SUB = 'subscription { budgetAlerts(customerId: "c-live") { threshold customerId } }'

  it('over SSE (yoga, same origin)', async () => {
    const s = await signIn(t.tenant.apiKey)
    const controller = new AbortController()
    const res = await fetch(server.url + '/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', cookie: s.cookie },
      body: JSON.stringify({ query: 'subscription { usageUpdates(customerId: "c-sse") { customerId } }' }),
      signal: controller.signal,
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = res.body!.getReader()
    await t.gql(
      `mutation { recordUsage(event: { id: "sse-1", customerId: "c-sse", model: "gpt-4o", timestamp: "${new Date().toISOString()}", inputTokens: 10 }) { status } }`,
    )
    let text = ''
    while (!text.includes('"usageUpdates"')) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    controller.abort()
    expect(text).toContain('"customerId":"c-sse"')
  })

  it('over graphql-ws from the same origin, not from another', async () => {
    const s = await signIn(t.tenant.apiKey)
    const wsUrl = server.url.replace(/^http/, 'ws') + '/graphql'
    const host = new URL(server.url).host
    const clientWith = (origin: string) =>
      createWsClient({
        url: wsUrl,
        webSocketImpl: class extends WebSocket {
          constructor(address: string, protocols?: string | string[]) {
            super(address, protocols, { headers: { cookie: s.cookie, origin } })
          }
        },
        retryAttempts: 0,
        lazy: true,
      })
    const first = <T>(client: ReturnType<typeof createWsClient>, query: string) =>
      new Promise<T>((resolve, reject) => {
        client.subscribe({ query }, { next: (v) => resolve(v as T), error: reject, complete: () => {} })
      })

    const same = clientWith(`http://${host}`)
    const got = first<{ data?: any; errors?: any[] }>(
      same,
      'subscription { usageUpdates(customerId: "c-ws") { customerId } }',
    )
    let received: { data?: any; errors?: any[] } | undefined
    void got.then((r) => (received = r))
    // Until the subscription is live, an event may pass unseen: record until one arrives.
    for (let i = 0; i < 50 && !received; i++) {
      await t.gql(
        `mutation { recordUsage(event: { id: "ws-${i}", customerId: "c-ws", model: "gpt-4o", timestamp: "${new Date().toISOString()}", inputTokens: 10 }) { status } }`,
      )
      await Promise.race([got, new Promise((r) => setTimeout(r, 200))])
    }
    expect(received?.data?.usageUpdates).toEqual({ customerId: 'c-ws' })
    await same.dispose()

    const evil = clientWith('https://evil.example')
    const refused = await first<{ data?: any; errors?: any[] }>(evil, SUB).catch((e: unknown) => ({ errors: [e] }))
    expect(JSON.stringify(refused.errors)).toMatch(/UNAUTHENTICATED|valid API key/)
    await evil.dispose()
  })
})
