import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { systemClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { createBurnratePubSub, type BudgetAlertEvent, type PriceChangeEvent } from '../../src/pubsub.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { observableEventTarget, sseSubscribe, wsSubscribe, openSubscriptions } from '../support/subscription-clients.ts'

const ALERTS = `subscription ($c: String) { budgetAlerts(customerId: $c) { id customerId budgetId threshold spent limit periodStart triggeredAt } }`
const PRICES = `subscription ($p: String) { priceChanges(provider: $p) { provider model usageType oldUnitPrice newUnitPrice effectiveFrom } }`

let database: TestDatabase
let app: App
let server: RunningServer
let url: string
const target = observableEventTarget()
let tenantA: { id: string; apiKey: string }
let tenantB: { id: string; apiKey: string }

beforeAll(async () => {
  database = await createTestDatabase()
  const config = defaultConfig({ LOG_LEVEL: 'silent', PORT: 0, CATALOG_SYNC_ON_START: false })
  app = createApp({
    db: database.db,
    clock: systemClock,
    config,
    logger: createLogger('silent'),
    pubsub: createBurnratePubSub(target),
  })
  server = await startServer(app, config, createLogger('silent'))
  url = `${server.url}/graphql`
  const make = async (name: string) => {
    const created = await app.services.tenants.create({ name })
    return { id: created.tenant.id, apiKey: created.apiKey }
  }
  tenantA = await make('A')
  tenantB = await make('B')
})

afterAll(async () => {
  await server?.close()
  await database?.destroy()
})

let seq = 0
function alert(tenantId: string, customerId: string, threshold = 80): BudgetAlertEvent {
  seq += 1
  return {
    id: String(seq),
    tenantId,
    customerId,
    budgetId: `bud-${customerId}`,
    threshold,
    spent: '80.000000000000000001',
    limit: '100',
    periodStart: '2026-11-01T00:00:00.000Z',
    triggeredAt: '2026-11-23T10:00:00.000Z',
  }
}

function priceChange(provider: string, tenantId: string | null, newUnitPrice = '0.0000025'): PriceChangeEvent {
  return {
    provider,
    model: 'gpt-4o',
    usageType: 'input',
    oldUnitPrice: '0.000005',
    newUnitPrice,
    effectiveFrom: '2026-11-23T12:00:00.000Z',
    source: 'test',
    tenantId,
  }
}

async function widgetToken(apiKey: string, customerId: string, ttlSeconds?: number): Promise<string> {
  const response = await app.yoga.fetch('http://burnrate.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      query: `mutation ($c: String!, $t: Int) { createWidgetSession(customerId: $c, ttlSeconds: $t) { token } }`,
      variables: { c: customerId, t: ttlSeconds },
    }),
  })
  const body = (await response.json()) as { data: { createWidgetSession: { token: string } } }
  return body.data.createWidgetSession.token
}

type Subscribe = typeof sseSubscribe
const transports: [string, Subscribe][] = [
  ['GraphQL over SSE (graphql-sse client)', sseSubscribe],
  ['GraphQL over WebSocket (graphql-ws client)', wsSubscribe],
]

describe.each(transports)('%s', (_name, subscribe) => {
  const { live, dispose } = openSubscriptions(subscribe)
  afterAll(async () => {
    await dispose()
  })

  it("a tenant key receives its own tenant's budget alerts, every customer or one, and never another tenant's", async () => {
    const all = live(url, tenantA.apiKey, ALERTS)
    const acme = live(url, tenantA.apiKey, ALERTS, { c: 'acme' })
    const other = live(url, tenantB.apiKey, ALERTS)
    await target.established(`budgetAlert:${tenantA.id}`, 2)
    await target.established(`budgetAlert:${tenantB.id}`)

    const forBeta = alert(tenantA.id, 'beta')
    const forAcme = alert(tenantA.id, 'acme', 100)
    app.services.pubsub.publish('budgetAlert', tenantA.id, forBeta)
    app.services.pubsub.publish('budgetAlert', tenantA.id, forAcme)
    // A mislabelled event on tenant A's channel (should never happen) is still not shown to A.
    app.services.pubsub.publish('budgetAlert', tenantA.id, { ...alert(tenantB.id, 'acme'), id: 'foreign' })
    const tenantBAlert = alert(tenantB.id, 'acme')
    app.services.pubsub.publish('budgetAlert', tenantB.id, tenantBAlert)

    const first = await all.next()
    expect(first.errors).toBeUndefined()
    expect(first.data?.budgetAlerts).toEqual({
      id: forBeta.id,
      customerId: 'beta',
      budgetId: 'bud-beta',
      threshold: 80,
      spent: '80.000000000000000001',
      limit: '100',
      periodStart: '2026-11-01T00:00:00.000Z',
      triggeredAt: '2026-11-23T10:00:00.000Z',
    })
    expect((await all.next()).data?.budgetAlerts.id).toBe(forAcme.id)
    expect((await acme.next()).data?.budgetAlerts).toMatchObject({ id: forAcme.id, customerId: 'acme', threshold: 100 })
    expect((await other.next()).data?.budgetAlerts.id).toBe(tenantBAlert.id)

    // A marker published last proves nothing else was queued before it.
    const marker = alert(tenantA.id, 'acme', 50)
    app.services.pubsub.publish('budgetAlert', tenantA.id, marker)
    expect((await acme.next()).data?.budgetAlerts.id).toBe(marker.id)
    expect((await all.next()).data?.budgetAlerts.id).toBe(marker.id)
    expect(all.pending()).toEqual([])
    expect(acme.pending()).toEqual([])
    expect(other.pending()).toEqual([])
  })

  it("a widget token receives only its own customer's alerts, and is refused another customer's", async () => {
    const token = await widgetToken(tenantA.apiKey, 'acme')
    const own = live(url, token, ALERTS)
    const explicit = live(url, token, ALERTS, { c: 'acme' })
    await target.established(`budgetAlert:${tenantA.id}`, 2)

    const refused = live(url, token, ALERTS, { c: 'beta' })
    const reply = await Promise.race([refused.next(), refused.ended.then((e) => ({ ended: e }))])
    const errors = 'errors' in reply ? reply.errors : undefined
    const ended = 'ended' in reply ? reply.ended : undefined
    // graphql-sse delivers the error as a result; graphql-ws as an error event with the GraphQL errors.
    const codes = (errors ?? (ended?.error as { extensions?: Record<string, unknown> }[] | undefined) ?? []).map(
      (e) => e.extensions?.code,
    )
    expect(codes).toEqual(['FORBIDDEN'])

    app.services.pubsub.publish('budgetAlert', tenantA.id, alert(tenantA.id, 'beta'))
    const mine = alert(tenantA.id, 'acme')
    app.services.pubsub.publish('budgetAlert', tenantA.id, mine)
    expect((await own.next()).data?.budgetAlerts).toMatchObject({ id: mine.id, customerId: 'acme' })
    expect((await explicit.next()).data?.budgetAlerts.id).toBe(mine.id)
    expect(own.pending()).toEqual([])
  })

  it("usage updates: recorded usage reaches its customer's widget and the tenant, coalesced, never another customer or tenant", async () => {
    const USAGE = `subscription ($c: String) { usageUpdates(customerId: $c) { customerId events at } }`
    const customer = `live-${seq++}`
    const widget = live(url, await widgetToken(tenantA.apiKey, customer), USAGE)
    const tenant = live(url, tenantA.apiKey, USAGE)
    const otherWidget = live(url, await widgetToken(tenantA.apiKey, `${customer}-other`), USAGE)
    const otherTenant = live(url, tenantB.apiKey, USAGE)
    await target.established(`usageUpdate:${tenantA.id}`, 3)
    await target.established(`usageUpdate:${tenantB.id}`)
    const record = async (ids: string[], customerId = customer) => {
      const response = await app.yoga.fetch('http://burnrate.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tenantA.apiKey}` },
        body: JSON.stringify({
          query: 'mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded } }',
          variables: {
            e: ids.map((id) => ({
              id,
              customerId,
              model: 'gpt-4o',
              timestamp: new Date().toISOString(),
              inputTokens: 100,
              outputTokens: 10,
            })),
          },
        }),
      })
      expect(
        ((await response.json()) as { data: { recordUsageBatch: { recorded: number } } }).data.recordUsageBatch
          .recorded,
      ).toBe(ids.length)
    }
    // Three events in two requests: updates (coalesced when within one window) that count all three.
    await Promise.all([record([`${customer}-1`, `${customer}-2`]), record([`${customer}-3`])])
    for (const sub of [widget, tenant]) {
      let total = 0
      while (total < 3) {
        const update = (await sub.next()).data?.usageUpdates
        expect(update.customerId).toBe(customer)
        expect(Number.isNaN(Date.parse(update.at))).toBe(false)
        total += update.events
      }
      expect(total).toBe(3)
    }
    // A replay stores nothing and tells nobody.
    await record([`${customer}-1`]).catch(() => undefined)
    await record([`${customer}-4`])
    expect((await widget.next()).data?.usageUpdates).toMatchObject({ customerId: customer, events: 1 })
    expect((await tenant.next()).data?.usageUpdates).toMatchObject({ customerId: customer, events: 1 })
    expect([widget, tenant, otherWidget, otherTenant].flatMap((s) => s.pending())).toEqual([])
  })

  it('refuses a subscription without a valid key', async () => {
    for (const key of [null, 'br_sk_not-a-real-key']) {
      const sub = live(url, key, PRICES)
      const reply = await Promise.race([sub.next(), sub.ended.then((e) => ({ ended: e }))])
      let errors =
        'errors' in reply
          ? reply.errors
          : ((reply as { ended: { error?: unknown } }).ended.error as { extensions?: Record<string, unknown> }[])
      // Over SSE the request is refused on its headers, before its body: HTTP 401 (graphql-sse's NetworkError) with the errors in the body.
      const refusedResponse = (errors as unknown as { response?: Response }).response
      if (refusedResponse) {
        expect(refusedResponse.status).toBe(401)
        errors = ((await refusedResponse.json()) as { errors: { extensions?: Record<string, unknown> }[] }).errors
      }
      expect((errors ?? []).map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED'])
    }
  })

  it("price changes: public ones reach every tenant, a tenant's own only that tenant, filtered by provider; widget sessions are refused", async () => {
    const a = live(url, tenantA.apiKey, PRICES)
    const aAnthropic = live(url, tenantA.apiKey, PRICES, { p: 'anthropic' })
    const b = live(url, tenantB.apiKey, PRICES)
    const widget = live(url, await widgetToken(tenantB.apiKey, 'acme'), PRICES)
    const refusal = await Promise.race([widget.next(), widget.ended.then((e) => ({ ended: e }))])
    const refusalErrors =
      'errors' in refusal
        ? refusal.errors
        : ((refusal as { ended: { error?: unknown } }).ended.error as { extensions?: Record<string, unknown> }[])
    expect((refusalErrors ?? []).map((e) => e.extensions?.code)).toEqual(['FORBIDDEN'])
    await target.established('priceChange', 3)
    await target.established(`tenantPriceChange:${tenantA.id}`, 2)
    await target.established(`tenantPriceChange:${tenantB.id}`, 1)

    app.services.pubsub.publish('tenantPriceChange', tenantA.id, priceChange('openai', tenantA.id, '0.000001'))
    app.services.pubsub.publish('priceChange', priceChange('openai', null))
    app.services.pubsub.publish('priceChange', { ...priceChange('anthropic', null), model: 'claude-sonnet-4' })

    expect((await a.next()).data?.priceChanges).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      oldUnitPrice: '0.000005',
      newUnitPrice: '0.000001',
      effectiveFrom: '2026-11-23T12:00:00.000Z',
    })
    expect((await a.next()).data?.priceChanges.newUnitPrice).toBe('0.0000025')
    expect((await a.next()).data?.priceChanges.provider).toBe('anthropic')
    expect((await aAnthropic.next()).data?.priceChanges.model).toBe('claude-sonnet-4')
    expect((await b.next()).data?.priceChanges).toMatchObject({ provider: 'openai', newUnitPrice: '0.0000025' })
    expect((await b.next()).data?.priceChanges.provider).toBe('anthropic')
    expect([a, aAnthropic, b].flatMap((s) => s.pending())).toEqual([])
  })
})

describe('shutdown', () => {
  it('closes WebSocket and SSE subscriptions instead of waiting for them', async () => {
    const config = defaultConfig({ LOG_LEVEL: 'silent', PORT: 0, SHUTDOWN_TIMEOUT_MS: 120_000 })
    const own = await startServer(app, config, createLogger('silent'))
    const ws = wsSubscribe(`${own.url}/graphql`, tenantA.apiKey, PRICES)
    const sse = sseSubscribe(`${own.url}/graphql`, tenantA.apiKey, PRICES)
    await target.established('priceChange', 2)
    // SHUTDOWN_TIMEOUT_MS is past the test timeout: close() returns only if no subscription holds it.
    await own.close()
    expect(await ws.ended).toHaveProperty('error')
    expect(await sse.ended).toHaveProperty('error')
  })
})
