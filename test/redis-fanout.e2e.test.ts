import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTenantService } from '../packages/api/src/auth/service.ts'
import { systemClock } from '../packages/api/src/clock.ts'
import { createLogger } from '../packages/api/src/logger.ts'
import type { PriceChangeEvent } from '../packages/api/src/pubsub.ts'
import { createRedisPubSub, type RedisPubSub } from '../packages/api/src/subscriptions/redis.ts'
import { createTestDatabase, type TestDatabase } from '../packages/api/test/support/db.ts'
import { sseSubscribe, wsSubscribe, type LiveSubscription } from '../packages/api/test/support/subscription-clients.ts'
import { postGraphQL, startApiProcess, type ApiProcess } from './support/api-process.ts'

// Two real API processes on one PostgreSQL and the local Redis. PGlite is in-process, so this runs
// only when DATABASE_URL points at a server (CI runs the suite both ways, with Redis).
const onPostgres = Boolean(process.env.DATABASE_URL)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const ALERTS = `subscription ($c: String) { budgetAlerts(customerId: $c) { id customerId budgetId threshold spent limit } }`
const PRICES = `subscription { priceChanges { provider model usageType newUnitPrice } }`

describe.runIf(onPostgres)('live events across API processes through Redis', () => {
  // A channel namespace of this run only: parallel runs on one Redis never hear each other.
  const prefix = `burnrate-test-${randomBytes(6).toString('hex')}:`
  let database: TestDatabase
  let apis: ApiProcess[] = []
  let tenant: { id: string; apiKey: string }
  let publisher: RedisPubSub
  const open: LiveSubscription[] = []

  beforeAll(async () => {
    database = await createTestDatabase()
    const created = await createTenantService({ db: database.db, clock: systemClock }).create({ name: 'Fan-out' })
    tenant = { id: created.tenant.id, apiKey: created.apiKey }
    const env = {
      DATABASE_URL: database.url!,
      REDIS_URL,
      REDIS_CHANNEL_PREFIX: prefix,
      DEV_TENANT: 'false',
      GRAPHIQL: 'false',
    }
    apis = await Promise.all([startApiProcess(env), startApiProcess({ ...env, CATALOG_SYNC_ON_START: 'false' })])
    publisher = await createRedisPubSub(REDIS_URL, prefix, createLogger('silent'))
  }, 180_000)

  afterAll(async () => {
    await Promise.all(open.map((s) => s.dispose()))
    await Promise.all(apis.map((api) => api.stop()))
    await publisher?.close()
    await database?.destroy()
  })

  /**
   * Publishes until the subscriber's first result arrives: a subscription gives no signal when its
   * Redis SUBSCRIBE is in place, so the first event may be sent before. Later events are not retried.
   */
  let n = 0
  const alert = (customerId: string) => ({
    id: `alert-${++n}`,
    tenantId: tenant.id,
    customerId,
    budgetId: 'bud-1',
    threshold: 80,
    spent: '8.5',
    limit: '10',
    periodStart: '2026-11-01T00:00:00.000Z',
    triggeredAt: '2026-11-23T10:00:00.000Z',
  })

  async function firstResult(sub: LiveSubscription, publish: () => void) {
    for (let attempt = 0; attempt < 100; attempt++) {
      publish()
      const got = await sub.next(300).catch(() => null)
      if (got) return got
    }
    const ended = await Promise.race([sub.ended, Promise.resolve('still open')])
    throw new Error(
      `no event reached the subscriber (${JSON.stringify(ended)}):\n${apis.map((api) => api.output()).join('\n')}`,
    )
  }

  it('an event published through Redis reaches subscribers on both processes, over SSE and WebSocket', async () => {
    const [a, b] = apis as [ApiProcess, ApiProcess]
    const pricesOnA = sseSubscribe(a.url, tenant.apiKey, PRICES)
    const alertsOnB = wsSubscribe(b.url, tenant.apiKey, ALERTS, { c: 'acme' })
    open.push(pricesOnA, alertsOnB)

    const change: PriceChangeEvent = {
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      oldUnitPrice: '0.0000025',
      newUnitPrice: '0.000002',
      effectiveFrom: '2026-11-23T12:00:00.000Z',
      source: 'test',
      tenantId: null,
    }
    const first = await firstResult(pricesOnA, () => publisher.pubsub.publish('priceChange', change))
    expect(first.data?.priceChanges).toEqual({
      provider: 'openai',
      model: 'gpt-4o',
      usageType: 'input',
      newUnitPrice: '0.000002',
    })

    const got = await firstResult(alertsOnB, () => {
      publisher.pubsub.publish('budgetAlert', tenant.id, alert('beta'))
      publisher.pubsub.publish('budgetAlert', tenant.id, alert('acme'))
    })
    expect(got.data?.budgetAlerts).toMatchObject({
      customerId: 'acme',
      budgetId: 'bud-1',
      threshold: 80,
      spent: '8.5',
      limit: '10',
    })
  })

  it('a budget alert raised by recordUsage on process A reaches a subscriber on process B', async (ctx) => {
    const [a, b] = apis as [ApiProcess, ApiProcess]
    const setBudget = await postGraphQL(
      a.url,
      tenant.apiKey,
      `mutation { setBudget(input: { customerId: "e2e", period: MONTH, limit: "0.000001", thresholds: [100] }) { id } }`,
    )
    // Budgets are another part of this issue; until they exist this end-to-end half has nothing to run.
    if (
      setBudget.errors?.some((e) => /setBudget/.test(e.message) && e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED')
    )
      return ctx.skip()
    expect(setBudget.errors).toBeUndefined()
    const budgetId = setBudget.data.setBudget.id as string

    const sub = wsSubscribe(b.url, tenant.apiKey, ALERTS, { c: 'e2e' })
    open.push(sub)
    // Warm-up: B's Redis subscription is in place once a published alert comes through.
    const warm = await firstResult(sub, () =>
      publisher.pubsub.publish('budgetAlert', tenant.id, { ...alert('e2e'), id: 'warm-up' }),
    )
    expect(warm.data?.budgetAlerts.id).toBe('warm-up')

    const recorded = await postGraphQL(
      a.url,
      tenant.apiKey,
      `mutation ($e: UsageEventInput!) { recordUsage(event: $e) { status } }`,
      {
        e: {
          id: 'e2e-1',
          customerId: 'e2e',
          model: 'gpt-4o',
          timestamp: new Date(Date.now() - 1000).toISOString(),
          inputTokens: 1000,
          outputTokens: 100,
        },
      },
    )
    expect(recorded.data?.recordUsage.status).toBe('RECORDED')
    let received = await sub.next()
    while (received.data?.budgetAlerts.id === 'warm-up') received = await sub.next()
    expect(received.data?.budgetAlerts).toMatchObject({
      customerId: 'e2e',
      budgetId,
      threshold: 100,
      limit: '0.000001',
    })
  })
})
