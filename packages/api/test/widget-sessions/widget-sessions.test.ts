import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { isWidgetOriginAllowed, normalizeWidgetOrigins } from '../../src/widget-sessions/origins.ts'
import { createTestApp, type TestApp } from '../support/app.ts'

const clock = fixedClock('2026-11-20T12:00:00Z')
let t: TestApp

const RECORD = `mutation ($event: UsageEventInput!) { recordUsage(event: $event) { status } }`
const SESSION = `mutation ($c: String!, $ttl: Int) { createWidgetSession(customerId: $c, ttlSeconds: $ttl) { token customerId expiresAt } }`
const event = (id: string, customerId: string) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: '2026-11-20T11:00:00Z',
  inputTokens: 1000,
  outputTokens: 100,
})

async function session(customerId: string, ttl?: number): Promise<string> {
  const r = await t.gql(SESSION, { c: customerId, ttl })
  expect(r.errors).toBeUndefined()
  return r.data!.createWidgetSession.token
}

async function withOrigin(token: string, origin: string, query: string) {
  const response = await t.app.yoga.fetch('http://burnrate.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, origin },
    body: JSON.stringify({ query }),
  })
  return { response, body: (await response.json()) as any }
}

beforeAll(async () => {
  t = await createTestApp({ clock })
  await t.gql(RECORD, { event: event('a-1', 'alice') })
  await t.gql(RECORD, { event: event('b-1', 'bob') })
  await t.gql(`mutation { upsertCustomer(input: { id: "alice", name: "Alice" }) { id } }`)
})
afterAll(() => t.close())

describe('createWidgetSession', () => {
  it('issues an opaque token for one customer, 15 minutes by default', async () => {
    const r = await t.gql(SESSION, { c: 'alice' })
    expect(r.data!.createWidgetSession).toEqual({
      token: expect.stringMatching(/^br_ws_[A-Za-z0-9_-]{43}$/),
      customerId: 'alice',
      expiresAt: '2026-11-20T12:15:00.000Z',
    })
  })

  it('stores only a hash of the token', async () => {
    const token = await session('alice')
    const rows = await t.database.db.selectFrom('widget_sessions').selectAll().execute()
    expect(rows.some((r) => r.token_hash.includes(token) || token.includes(r.token_hash))).toBe(false)
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.token_hash))).toBe(true)
  })

  it('refuses bad ttlSeconds and customer ids', async () => {
    for (const ttl of [0, 59, 86_401, -5]) {
      const r = await t.gql(SESSION, { c: 'alice', ttl })
      expect(r.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ttlSeconds' })
    }
    const long = await t.gql(SESSION, { c: 'x'.repeat(256) })
    expect(long.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'customerId' })
    const ok = await t.gql(SESSION, { c: 'alice', ttl: 86_400 })
    expect(ok.data!.createWidgetSession.expiresAt).toBe('2026-11-21T12:00:00.000Z')
  })

  it('cannot be created with a widget token or without a key', async () => {
    const token = await session('alice')
    const r = await t.gql(SESSION, { c: 'alice' }, token)
    expect(r.errors![0]!.extensions!.code).toBe('FORBIDDEN')
    const anonymous = await t.gql(SESSION, { c: 'alice' }, null)
    expect(anonymous.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED')
  })
})

describe('a widget token', () => {
  it("reads its own customer's summary, events and customer record", async () => {
    const token = await session('alice')
    const r = await t.gql(
      `{ usageSummary(customerId: "alice", from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z") { events amount }
         usageEvents(customerId: "alice") { edges { node { id amount customerId } } }
         customer(id: "alice") { id name } }`,
      {},
      token,
    )
    expect(r.errors).toBeUndefined()
    expect(r.data).toEqual({
      usageSummary: { events: 1, amount: '0.0035' },
      usageEvents: { edges: [{ node: { id: 'a-1', amount: '0.0035', customerId: 'alice' } }] },
      customer: { id: 'alice', name: 'Alice' },
    })
  })

  it('cannot read another customer, the whole tenant, or tenant settings', async () => {
    const token = await session('alice')
    const queries = [
      `{ usageSummary(customerId: "bob", from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z") { events } }`,
      `{ usageSummary(from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z") { events } }`,
      `{ usageEvents(customerId: "bob") { edges { node { id } } } }`,
      `{ customer(id: "bob") { id } }`,
      `{ tenant { id } }`,
      `{ pricingPlan(customerId: "alice") { kind } }`,
      `{ providerPrices(provider: "openai", model: "gpt-4o") { unitPrice } }`,
    ]
    for (const query of queries) {
      const r = await t.gql(query, {}, token)
      expect(r.errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN')
      expect(JSON.stringify(r.data ?? {})).not.toContain('b-1')
    }
  })

  it('cannot record usage or change anything', async () => {
    const token = await session('alice')
    const mutations: [string, Record<string, unknown>][] = [
      [RECORD, { event: event('a-2', 'alice') }],
      [
        `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }`,
        { e: [event('a-3', 'alice')] },
      ],
      [`mutation { upsertCustomer(input: { id: "alice", name: "Mallory" }) { id } }`, {}],
      [`mutation { setPricingPlan(input: { customerId: "alice", kind: MARKUP, percent: "0" }) { kind } }`, {}],
      [`mutation { updateTenantSettings(input: { widgetOrigins: [] }) { id } }`, {}],
    ]
    for (const [query, variables] of mutations) {
      const r = await t.gql(query, variables, token)
      expect(r.errors?.[0]?.extensions?.code, query).toBe('FORBIDDEN')
    }
    const events = await t.gql(
      `{ usageEvents(customerId: "alice") { edges { node { id } } } customer(id: "alice") { name } }`,
    )
    expect(events.data!.usageEvents.edges.map((e: any) => e.node.id)).toEqual(['a-1'])
    expect(events.data!.customer.name).toBe('Alice')
  })

  it("is worthless for another tenant's data", async () => {
    const other = await t.createTenant('Other')
    const r = await t.gql(SESSION, { c: 'alice' }, other.apiKey)
    const foreign = r.data!.createWidgetSession.token
    const summary = await t.gql(
      `{ usageSummary(customerId: "alice", from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z") { events } }`,
      {},
      foreign,
    )
    expect(summary.data!.usageSummary.events).toBe(0)
  })

  it('expires: UNAUTHENTICATED with reason WIDGET_SESSION_EXPIRED, so the widget fetches a new token', async () => {
    const token = await session('alice', 60)
    const q = `{ usageSummary(customerId: "alice", from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z") { events } }`
    clock.advance(59_000)
    expect((await t.gql(q, {}, token)).data!.usageSummary.events).toBe(1)
    clock.advance(1_000)
    const r = await t.gql(q, {}, token)
    expect(r.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'WIDGET_SESSION_EXPIRED' })
    expect(r.errors![0]!.message).toMatch(/expired at 2026-11-20T12:01:00.000Z.*fetch a new token/)
    clock.set('2026-11-20T12:00:00Z')
  })

  it('an unknown widget token is simply not a credential', async () => {
    const r = await t.gql(`{ customer(id: "alice") { id } }`, {}, 'br_ws_' + 'A'.repeat(43))
    expect(r.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED')
    expect(r.errors![0]!.extensions!.reason).toBeUndefined()
  })
})

describe('widget origins', () => {
  it('normalizes and validates origins', () => {
    expect(
      normalizeWidgetOrigins(['https://app.example.com', 'http://localhost:5173', 'https://APP.example.com']),
    ).toEqual(['https://app.example.com', 'http://localhost:5173'])
    for (const bad of [
      'app.example.com',
      'https://app.example.com/',
      'https://app.example.com/widget',
      'ftp://x.example',
      '*',
      'https://*.example.com',
    ]) {
      expect(() => normalizeWidgetOrigins([bad]), bad).toThrow()
    }
    expect(isWidgetOriginAllowed(null, 'https://anything.example')).toBe(true)
    expect(isWidgetOriginAllowed([], 'https://app.example.com')).toBe(false)
    expect(isWidgetOriginAllowed(['https://app.example.com'], 'https://app.example.com')).toBe(true)
    expect(isWidgetOriginAllowed(['https://app.example.com'], 'https://evil.example.com')).toBe(false)
  })

  it('are enforced for widget tokens sent from a browser, with CORS headers only for allowed origins', async () => {
    const token = await session('alice')
    const q = `{ customer(id: "alice") { id } }`
    // Not restricted yet: any origin.
    const open = await withOrigin(token, 'https://anywhere.example', q)
    expect(open.body.data.customer.id).toBe('alice')

    const set = await t.gql(
      `mutation { updateTenantSettings(input: { widgetOrigins: ["https://app.example.com"] }) { widgetOrigins } }`,
    )
    expect(set.data!.updateTenantSettings.widgetOrigins).toEqual(['https://app.example.com'])

    const allowed = await withOrigin(token, 'https://app.example.com', q)
    expect(allowed.body.data.customer.id).toBe('alice')
    expect(allowed.response.headers.get('access-control-allow-origin')).toBe('https://app.example.com')

    const denied = await withOrigin(token, 'https://evil.example.com', q)
    expect(denied.body.errors[0].extensions).toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'WIDGET_ORIGIN_NOT_ALLOWED',
    })
    expect(denied.response.headers.get('access-control-allow-origin')).toBeNull()

    // Server-to-server calls (no Origin) and tenant keys are not affected.
    expect((await t.gql(q, {}, token)).data!.customer.id).toBe('alice')
    const tenantFromBrowser = await withOrigin(t.tenant.apiKey, 'https://evil.example.com', q)
    expect(tenantFromBrowser.body.data.customer.id).toBe('alice')

    // Preflights carry no token: answered for any origin; the real request is what gets checked.
    const preflight = await t.app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')

    const bad = await t.gql(
      `mutation { updateTenantSettings(input: { widgetOrigins: ["https://app.example.com/path"] }) { widgetOrigins } }`,
    )
    expect(bad.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.widgetOrigins[0]' })
    const lifted = await t.gql(`mutation { updateTenantSettings(input: { widgetOrigins: null }) { widgetOrigins } }`)
    expect(lifted.data!.updateTenantSettings.widgetOrigins).toBeNull()
  })
})
