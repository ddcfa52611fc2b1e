import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/logger.ts'
import { backoffDelay, createWebhookDispatcher, type DispatcherOptions } from '../../src/webhooks/dispatcher.ts'
import { enqueueWebhookEvent } from '../../src/webhooks/events.ts'
import { signPayload, verifySignature } from '../../src/webhooks/signing.ts'
import { createTestApp, fixedClock, type TestApp } from '../support/app.ts'
import { receiverVerifies, startWebhookReceiver as receiver } from '../support/webhook-receiver.ts'

const START = '2026-11-23T10:00:00Z'
const clock = fixedClock(START)
const logger = createLogger('silent')
const OPTIONS: DispatcherOptions = {
  timeoutMs: 3_000,
  backoffBaseMs: 60_000,
  pollIntervalMs: 50,
  random: () => 0.5,
  allowPrivateTargets: true,
}
let t: TestApp

const nowSeconds = () => Math.floor(clock.now().getTime() / 1000)

async function createEndpoint(url: string, eventTypes: string[], key?: string) {
  const reply = await t.gql(
    `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret endpoint { id url eventTypes enabled } } }`,
    { u: url, e: eventTypes },
    key,
  )
  expect(reply.errors).toBeUndefined()
  return reply.data!.createWebhookEndpoint as { secret: string; endpoint: { id: string } }
}

const DELIVERIES = `query ($s: WebhookDeliveryStatus, $e: ID) { webhookDeliveries(status: $s, endpointId: $e) {
  id eventId eventType status attempts lastStatusCode lastError deliveredAt attemptLog { attempt statusCode error durationMs } } }`

let n = 0
async function enqueue(tenantId: string) {
  n += 1
  return enqueueWebhookEvent(
    t.app.services.db,
    {
      tenantId,
      type: 'budget.alert',
      dedupeKey: `test:${n}`,
      payload: { id: String(n), customerId: 'acme', threshold: 80 },
    },
    clock.now(),
    t.app.services.config.WEBHOOK_MAX_ATTEMPTS,
  )
}

beforeAll(async () => {
  // The receivers are local: private targets are allowed here, and refused in the test that says so.
  t = await createTestApp({ clock, config: { WEBHOOK_MAX_ATTEMPTS: 3, WEBHOOK_ALLOW_PRIVATE_TARGETS: true } })
})

afterAll(async () => {
  await t?.close()
})

describe('webhook endpoints', () => {
  it('registers an endpoint and shows its signing secret once; refuses bad input with the field at fault', async () => {
    const created = await createEndpoint('https://example.com/burnrate', ['budget.alert', 'price.change'])
    expect(created.secret).toMatch(/^whsec_/)
    const listed = await t.gql(`{ webhookEndpoints { id url eventTypes enabled } }`)
    expect(listed.data?.webhookEndpoints).toContainEqual({
      id: created.endpoint.id,
      url: 'https://example.com/burnrate',
      eventTypes: ['budget.alert', 'price.change'],
      enabled: true,
    })

    const bad = async (url: string, types: string[]) => {
      const reply = await t.gql(
        `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret } }`,
        { u: url, e: types },
      )
      return reply.errors?.[0]?.extensions
    }
    expect(await bad('not a url', ['budget.alert'])).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' })
    expect(await bad('ftp://example.com/x', ['budget.alert'])).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' })
    expect(await bad('https://example.com/x', ['budget.alerts'])).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'eventTypes',
    })
    expect(await bad('https://example.com/x', [])).toMatchObject({ code: 'BAD_USER_INPUT', field: 'eventTypes' })

    const disabled = await t.gql(`mutation ($id: ID!) { disableWebhookEndpoint(id: $id) { enabled } }`, {
      id: created.endpoint.id,
    })
    expect(disabled.data?.disableWebhookEndpoint.enabled).toBe(false)
  })

  it('signs like Stripe: the documented verification accepts it, a changed body or old timestamp does not', () => {
    const body = '{"id":"evt_1"}'
    const header = signPayload('whsec_test', body, 1_700_000_000)
    expect(verifySignature('whsec_test', body, header, 1_700_000_100)).toBe(true)
    expect(verifySignature('whsec_test', body + ' ', header, 1_700_000_100)).toBe(false)
    expect(verifySignature('whsec_other', body, header, 1_700_000_100)).toBe(false)
    expect(verifySignature('whsec_test', body, header, 1_700_001_000)).toBe(false)
    expect(receiverVerifies('whsec_test', { headers: { 'burnrate-signature': header }, body }, 1_700_000_000)).toBe(
      true,
    )
  })

  it('refuses loopback, private and metadata addresses by default (SSRF), at registration and at each delivery', async () => {
    const strict = await createTestApp({ clock, loadCatalog: false })
    try {
      for (const url of [
        'http://127.0.0.1:8080/x',
        'http://localhost/x',
        'http://169.254.169.254/latest',
        'http://[::1]/x',
        'http://10.1.2.3/x',
      ]) {
        const reply = await strict.gql(
          `mutation ($u: String!) { createWebhookEndpoint(url: $u, eventTypes: ["budget.alert"]) { secret } }`,
          { u: url },
        )
        expect(reply.errors?.[0]?.extensions, url).toMatchObject({ code: 'BAD_USER_INPUT', field: 'url' })
      }
    } finally {
      await strict.close()
    }
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('SSRF')
      const { endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      await enqueue(tenant.id)
      await createWebhookDispatcher({
        db: t.app.services.db,
        clock,
        logger,
        options: { ...OPTIONS, allowPrivateTargets: false },
      }).runOnce()
      expect(hooks.received).toEqual([])
      const log = (await t.gql(DELIVERIES, { e: endpoint.id }, tenant.apiKey)).data!.webhookDeliveries
      expect(log[0]).toMatchObject({
        status: 'PENDING',
        attempts: 1,
        lastError: expect.stringMatching(/^refused: 127\.0\.0\.1 resolves to a private address/),
      })
      await t.gql(`mutation ($id: ID!) { disableWebhookEndpoint(id: $id) { id } }`, { id: endpoint.id }, tenant.apiKey)
    } finally {
      await hooks.close()
    }
  })

  it('backs off exponentially with jitter, within bounds', () => {
    expect(backoffDelay(1, 1000, 3_600_000, () => 0)).toBe(500)
    expect(backoffDelay(1, 1000, 3_600_000, () => 0.999999)).toBe(1000)
    expect(backoffDelay(4, 1000, 3_600_000, () => 0)).toBe(4000)
    expect(backoffDelay(40, 1000, 3_600_000, () => 1)).toBe(3_600_000)
  })
})

describe('webhook delivery', () => {
  it('delivers a budget alert raised by recordUsage, signed, with the event id to dedupe on; other tenants get nothing', async () => {
    const hooks = await receiver()
    const other = await receiver()
    try {
      const tenantA = await t.createTenant('A')
      const { secret, endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenantA.apiKey)
      const tenantB = await t.createTenant('B')
      await createEndpoint(other.url, ['budget.alert'], tenantB.apiKey)
      const budget = await t.gql(
        `mutation { setBudget(input: { customerId: "hooked", period: MONTH, limit: "0.001", thresholds: [50, 100] }) { id } }`,
        {},
        tenantA.apiKey,
      )
      expect(budget.errors).toBeUndefined()
      const recorded = await t.gql(
        `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }`,
        {
          e: {
            id: 'hook-1',
            customerId: 'hooked',
            model: 'gpt-4o',
            timestamp: new Date(clock.now().getTime() - 60_000).toISOString(),
            inputTokens: 1000,
            outputTokens: 100,
          },
        },
        tenantA.apiKey,
      )
      expect(recorded.data?.recordUsage.status).toBe('RECORDED')

      const dispatcher = createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })
      expect(await dispatcher.runOnce()).toBe(2)
      expect(other.received).toEqual([])
      expect(hooks.received).toHaveLength(2)
      const bodies = hooks.received.map(
        (d) => JSON.parse(d.body) as { id: string; type: string; data: Record<string, unknown> },
      )
      expect(bodies.map((b) => b.data.threshold).sort()).toEqual([100, 50])
      for (const [i, delivery] of hooks.received.entries()) {
        expect(receiverVerifies(secret, delivery, nowSeconds())).toBe(true)
        expect(delivery.headers['burnrate-event-id']).toBe(bodies[i]!.id)
        expect(delivery.headers['burnrate-event-type']).toBe('budget.alert')
        expect(bodies[i]).toMatchObject({
          type: 'budget.alert',
          data: { customerId: 'hooked', budgetId: budget.data!.setBudget.id, limit: '0.001', kind: 'THRESHOLD' },
        })
        expect(bodies[i]!.data).not.toHaveProperty('tenantId')
      }

      const log = await t.gql(DELIVERIES, { e: endpoint.id }, tenantA.apiKey)
      expect(log.data?.webhookDeliveries).toHaveLength(2)
      for (const d of log.data!.webhookDeliveries) {
        expect(d).toMatchObject({
          eventType: 'budget.alert',
          status: 'SUCCEEDED',
          attempts: 1,
          lastStatusCode: 204,
          lastError: null,
        })
        expect(d.attemptLog).toMatchObject([{ attempt: 1, statusCode: 204, error: null }])
      }
      // Nothing is due any more: a second round delivers nothing again.
      expect(await dispatcher.runOnce()).toBe(0)
    } finally {
      await Promise.all([hooks.close(), other.close()])
    }
  })

  it('delivers the alerts setBudget raises (a new budget already below current spend), and forecast alerts with their kind', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Set budget')
      const { secret } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      const usage = (id: string, customerId: string) =>
        t.gql(
          `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }`,
          {
            e: {
              id,
              customerId,
              model: 'gpt-4o',
              timestamp: new Date(clock.now().getTime() - 60_000).toISOString(),
              inputTokens: 1000,
              outputTokens: 100,
            },
          },
          tenant.apiKey,
        )
      // Spent 0.0035 before any budget exists; a limit of 0.001 is passed the moment it is set.
      expect((await usage('late-budget-1', 'over')).data?.recordUsage.status).toBe('RECORDED')
      const set = await t.gql(
        `mutation { setBudget(input: { customerId: "over", period: MONTH, limit: "0.001", thresholds: [50, 100] }) { id } }`,
        {},
        tenant.apiKey,
      )
      expect(set.errors).toBeUndefined()
      const dispatcher = createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })
      expect(await dispatcher.runOnce()).toBe(2)
      const bodies = hooks.received.map((d) => JSON.parse(d.body) as { type: string; data: Record<string, unknown> })
      expect(bodies.map((b) => [b.type, b.data.kind, b.data.threshold, b.data.spent]).sort()).toEqual([
        ['budget.alert', 'THRESHOLD', 100, '0.0035'],
        ['budget.alert', 'THRESHOLD', 50, '0.0035'],
      ])
      expect(hooks.received.every((d) => receiverVerifies(secret, d, nowSeconds()))).toBe(true)

      // 10:00 on a UTC day: 0.0035 spent projects 0.0084, past a 0.005 limit, for a budget that opted in.
      const forecast = await t.gql(
        `mutation { setBudget(input: { customerId: "fast", period: DAY, limit: "0.005", thresholds: [100], forecastAlerts: true }) { id } }`,
        {},
        tenant.apiKey,
      )
      expect(forecast.errors).toBeUndefined()
      expect((await usage('late-budget-2', 'fast')).data?.recordUsage.status).toBe('RECORDED')
      expect(await dispatcher.runOnce()).toBe(1)
      const last = JSON.parse(hooks.received.at(-1)!.body) as { data: Record<string, unknown> }
      expect(last.data).toMatchObject({
        customerId: 'fast',
        kind: 'FORECAST',
        threshold: 100,
        spent: '0.0035',
        forecast: '0.0084',
      })
    } finally {
      await hooks.close()
    }
  })

  it('retries on 500, timeout and connection errors with backoff, dead-letters after the last attempt, and replays', async () => {
    const hooks = await receiver(['fail', 'hang', 'reset'], 'ok')
    try {
      const tenant = await t.createTenant('Retries')
      const { secret, endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      const eventId = await enqueue(tenant.id)
      const dispatcher = createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })
      const log = async () => (await t.gql(DELIVERIES, { e: endpoint.id }, tenant.apiKey)).data!.webhookDeliveries[0]

      expect(await dispatcher.runOnce()).toBe(1)
      expect(await log()).toMatchObject({ status: 'PENDING', attempts: 1, lastStatusCode: 500, lastError: 'HTTP 500' })
      // Not due before its backoff (first retry: base × 2⁰ with half jitter = 45 s here).
      expect(await dispatcher.runOnce()).toBe(0)
      clock.advance(44_000)
      expect(await dispatcher.runOnce()).toBe(0)
      clock.advance(1_000)
      expect(await dispatcher.runOnce()).toBe(1)
      expect(await log()).toMatchObject({
        status: 'PENDING',
        attempts: 2,
        lastStatusCode: null,
        lastError: expect.stringMatching(/timed out after 3000 ms/),
      })
      clock.advance(90_000)
      expect(await dispatcher.runOnce()).toBe(1)
      const dead = await log()
      expect(dead).toMatchObject({ status: 'DEAD', attempts: 3, lastStatusCode: null, deliveredAt: null })
      expect(dead.attemptLog.map((a: { statusCode: number | null }) => a.statusCode)).toEqual([500, null, null])
      clock.advance(3_600_000)
      expect(await dispatcher.runOnce()).toBe(0)

      const listedDead = await t.gql(DELIVERIES, { s: 'DEAD', e: endpoint.id }, tenant.apiKey)
      expect(listedDead.data?.webhookDeliveries.map((d: { id: string }) => d.id)).toEqual([dead.id])
      const replayed = await t.gql(
        `mutation ($id: ID!) { replayWebhookDelivery(id: $id) { status attempts } }`,
        { id: dead.id },
        tenant.apiKey,
      )
      expect(replayed.data?.replayWebhookDelivery).toEqual({ status: 'PENDING', attempts: 3 })
      expect(await dispatcher.runOnce()).toBe(1)
      expect(await log()).toMatchObject({ status: 'SUCCEEDED', attempts: 4, lastStatusCode: 204 })

      const again = await t.gql(
        `mutation ($id: ID!) { replayWebhookDelivery(id: $id) { status } }`,
        { id: dead.id },
        tenant.apiKey,
      )
      // Another tenant cannot see or replay it.
      const foreign = await t.gql(`mutation ($id: ID!) { replayWebhookDelivery(id: $id) { status } }`, { id: dead.id })
      expect(foreign.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' })
      expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' })
      const unknown = await t.gql(`mutation { replayWebhookDelivery(id: "whd_nope") { status } }`)
      expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' })

      // Every attempt carried the same event: same id, same bytes, each validly signed when sent.
      expect(hooks.received).toHaveLength(4)
      expect(new Set(hooks.received.map((d) => d.body)).size).toBe(1)
      expect(hooks.received.every((d) => d.headers['burnrate-event-id'] === eventId)).toBe(true)
      expect(hooks.received.map((d) => d.headers['burnrate-attempt'])).toEqual(['1', '2', '3', '4'])
      expect(receiverVerifies(secret, hooks.received[3]!, nowSeconds())).toBe(true)
    } finally {
      await hooks.close()
    }
  })

  it('a restart in the middle loses nothing: work claimed by a dead process is taken over after its lease', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Restart')
      const { endpoint } = await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      const ids = [await enqueue(tenant.id), await enqueue(tenant.id), await enqueue(tenant.id)]
      // Process A claims the work, then "dies" mid-attempt: its requests never finish.
      const crashed = createWebhookDispatcher({
        db: t.app.services.db,
        clock,
        logger,
        fetch: () => new Promise<Response>(() => {}),
        options: OPTIONS,
      })
      void crashed.runOnce()
      await expect
        .poll(
          async () =>
            (await t.gql(DELIVERIES, { e: endpoint.id }, tenant.apiKey)).data!.webhookDeliveries.map(
              (d: { attempts: number }) => d.attempts,
            ),
          { timeout: 20_000 },
        )
        .toEqual([1, 1, 1])

      // Process B starts (same database, nothing else shared): the leased work is not taken early...
      const restarted = createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })
      expect(await restarted.runOnce()).toBe(0)
      // ...and is delivered once the lease (timeout + 30 s) ends.
      clock.advance(OPTIONS.timeoutMs + 30_001)
      expect(await restarted.runOnce()).toBe(3)
      expect(hooks.received.map((d) => d.headers['burnrate-event-id']).sort()).toEqual([...ids].sort())
      const log = (await t.gql(DELIVERIES, { e: endpoint.id }, tenant.apiKey)).data!.webhookDeliveries
      expect(log.map((d: { status: string; attempts: number }) => [d.status, d.attempts])).toEqual([
        ['SUCCEEDED', 2],
        ['SUCCEEDED', 2],
        ['SUCCEEDED', 2],
      ])
    } finally {
      await hooks.close()
    }
  })

  it('several workers at once never make the same attempt twice', async () => {
    const hooks = await receiver()
    try {
      const tenant = await t.createTenant('Concurrent')
      await createEndpoint(hooks.url, ['budget.alert'], tenant.apiKey)
      const ids = new Set<string | null>()
      for (let i = 0; i < 30; i++) ids.add(await enqueue(tenant.id))
      const workers = Array.from({ length: 4 }, () =>
        createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: { ...OPTIONS, batchSize: 5 } }),
      )
      let total = 0
      for (;;) {
        const counts = await Promise.all(workers.map((w) => w.runOnce()))
        total += counts.reduce((a, b) => a + b, 0)
        if (counts.every((c) => c === 0)) break
      }
      expect(total).toBe(30)
      const seen = hooks.received.map((d) => String(d.headers['burnrate-event-id']))
      expect(seen).toHaveLength(30)
      expect(new Set(seen)).toEqual(ids)
    } finally {
      await hooks.close()
    }
  })

  it("turns applied price changes into price.change events: public ones for every listening tenant, a tenant's own for it alone, once", async () => {
    const hooks = await receiver()
    try {
      const tenantC = await t.createTenant('C')
      const tenantD = await t.createTenant('D')
      await createEndpoint(hooks.url, ['price.change'], tenantC.apiKey)
      await createEndpoint(hooks.url, ['price.change'], tenantD.apiKey)
      const base = {
        provider: 'openai',
        model: 'gpt-4o',
        usageType: 'input',
        oldUnitPrice: '0.0000025',
        newUnitPrice: '0.000002',
        effectiveFrom: new Date('2026-11-24T00:00:00Z'),
        source: 'test',
        sourceVersion: '1',
        priceId: 1,
      }
      const changes = [
        { ...base, tenantId: null },
        { ...base, newUnitPrice: '0.0000015', tenantId: tenantD.id, source: 'override' },
      ]
      // The same changes reported twice (a listener re-run) still make one event each.
      await t.app.services.webhooks.enqueuePriceChanges(changes)
      await t.app.services.webhooks.enqueuePriceChanges(changes)
      const dispatcher = createWebhookDispatcher({ db: t.app.services.db, clock, logger, options: OPTIONS })
      expect(await dispatcher.runOnce()).toBe(3)
      const bodies = hooks.received.map((d) => JSON.parse(d.body) as { type: string; data: { newUnitPrice: string } })
      expect(bodies.every((b) => b.type === 'price.change')).toBe(true)
      expect(bodies.map((b) => b.data.newUnitPrice).sort()).toEqual(['0.0000015', '0.000002', '0.000002'])
      expect(bodies.every((b) => !('tenantId' in b.data))).toBe(true)
    } finally {
      await hooks.close()
    }
  })
})
