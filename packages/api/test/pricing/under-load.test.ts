/**
 * Ingest, late pricing, overrides and re-pricing at the same time on real PostgreSQL: every
 * transaction that touches usage events, rollups, budget spend and the Stripe outbox must take
 * its locks in one order, so none of them ever dies in a deadlock (40P01), and the ledger's totals
 * must agree exactly afterwards. PGlite has one connection, so nothing runs concurrently there:
 * this file needs DATABASE_URL.
 *
 * LOAD_TEST_SECONDS sets how long the mix runs (default 60, CI's value; shorter for a quick local run).
 */
import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type App } from '../../src/app.ts'
import { fixedClock } from '../../src/clock.ts'
import { defaultConfig } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { MASTER_KEY, SET_CREDENTIALS } from '../stripe/stripe-support.ts'
import type { GqlResponse } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts'

const SECONDS = Number(process.env.LOAD_TEST_SECONDS ?? 60)
const INGEST_WORKERS = 4
const BATCH = 40
const CUSTOMERS = ['c-01', 'c-02', 'c-03', 'c-04', 'c-05', 'c-06']
const DAY_START = new Date('2026-11-20T00:00:00Z')
const NOW = new Date('2026-11-20T12:00:00Z')

const RECORD_BATCH = `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { results { status error { code message } } } }`
const OVERRIDE = `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`
const REPRICE = `mutation ($from: DateTime!, $to: DateTime!, $model: String!) { repriceUsage(from: $from, to: $to, model: $model, reason: "load") { corrected } }`

const onPostgres = !!process.env.DATABASE_URL

describe.skipIf(!onPostgres)('ingest, late pricing, overrides and re-pricing under load (PostgreSQL)', () => {
  let database: TestDatabase
  let app: App
  let fake: FakeStripe
  const loggedErrors: string[] = []
  const tenants: { id: string; apiKey: string }[] = []

  async function gql(apiKey: string, query: string, variables: Record<string, unknown>): Promise<GqlResponse<any>> {
    const response = await app.yoga.fetch('http://burnrate.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ query, variables }),
    })
    return (await response.json()) as GqlResponse<any>
  }

  beforeAll(async () => {
    fake = await startFakeStripe()
    database = await createTestDatabase()
    const config = defaultConfig({ LOG_LEVEL: 'error', STRIPE_ENCRYPTION_KEY: MASTER_KEY })
    const logger = createLogger('error', (line) => loggedErrors.push(line))
    const stripeClient = (secretKey: string) =>
      new Stripe(secretKey, {
        host: fake.host,
        port: fake.port,
        protocol: 'http',
        maxNetworkRetries: 0,
        telemetry: false,
      })
    app = createApp({ db: database.db, clock: fixedClock(NOW), config, logger, stripeClient })
    await app.services.catalog.syncBundled()
    for (const name of ['load-a', 'load-b']) {
      const created = await app.services.tenants.create({ name })
      const tenant = { id: created.tenant.id, apiKey: created.apiKey }
      tenants.push(tenant)
      const ok = (r: GqlResponse) => expect(r.errors).toBeUndefined()
      ok(await gql(tenant.apiKey, `mutation { setPricingPlan(input: { kind: MARGIN, percent: "30" }) { kind } }`, {}))
      for (const customer of CUSTOMERS) {
        ok(
          await gql(
            tenant.apiKey,
            `mutation { upsertCustomer(input: { id: "${customer}", name: "${customer}" }) { id } }`,
            {},
          ),
        )
        ok(
          await gql(
            tenant.apiKey,
            `mutation { setBudget(input: { customerId: "${customer}", period: MONTH, limit: "1000000" }) { spent } }`,
            {},
          ),
        )
      }
      ok(
        await gql(tenant.apiKey, SET_CREDENTIALS, {
          input: { secretKey: `sk_test_${name.replace('-', '')}Load000001` },
        }),
      )
      ok(
        await gql(
          tenant.apiKey,
          `mutation { setupStripeBilling(input: { createCustomers: true }) { createdCustomers } }`,
          {},
        ),
      )
    }
  }, 120_000)

  afterAll(async () => {
    await fake?.close()
    await database?.destroy()
  })

  it(
    `runs the mix for ${SECONDS} s with no failed request, and every total agrees exactly`,
    async () => {
      const deadline = Date.now() + SECONDS * 1000
      const failures: string[] = []
      let recorded = 0
      let batches = 0
      let overrides = 0
      let reprices = 0
      // The generation of the model only an override prices: ingest sends the next one, which stays
      // UNPRICED until the override loop prices it (late pricing of events committed meanwhile).
      const generation = new Map(tenants.map((t) => [t.id, 0]))
      let sequence = 0

      const event = (tenantId: string, i: number) => {
        const n = ++sequence
        const customerId = CUSTOMERS[n % CUSTOMERS.length]!
        const timestamp = new Date(DAY_START.getTime() + ((n * 7919) % (11 * 3_600_000))).toISOString()
        const rocket = n % 3 === 0
        return {
          id: `e-${n}`,
          customerId,
          timestamp,
          ...(rocket
            ? { provider: 'acme', model: `rocket-${generation.get(tenantId)! + (i % 2)}` }
            : { model: n % 2 ? 'gpt-4o' : 'gpt-4o-mini' }),
          feature: n % 4 ? 'chat' : null,
          inputTokens: 1000 + (n % 977),
          outputTokens: 10 + (n % 313),
        }
      }

      async function ingest(worker: number) {
        for (let round = 0; Date.now() < deadline; round++) {
          const tenant = tenants[(worker + round) % tenants.length]!
          const events = Array.from({ length: BATCH }, (_, i) => event(tenant.id, i))
          try {
            const response = await gql(tenant.apiKey, RECORD_BATCH, { events })
            batches++
            if (response.errors) failures.push(`recordUsageBatch: ${JSON.stringify(response.errors)}`)
            for (const result of response.data?.recordUsageBatch.results ?? []) {
              if (result.status === 'RECORDED') recorded++
              else failures.push(`event ${result.status}: ${JSON.stringify(result.error)}`)
            }
          } catch (error) {
            failures.push(`recordUsageBatch threw: ${String(error)}`)
          }
        }
      }

      async function overrideAndReprice(tenant: { id: string; apiKey: string }) {
        for (let round = 0; Date.now() < deadline; round++) {
          const price = new Decimal('0.0000020').plus(new Decimal(round % 7).times('0.0000001')).toFixed()
          const requests: [string, Record<string, unknown>][] = [
            [
              OVERRIDE,
              {
                i: {
                  provider: 'openai',
                  model: 'gpt-4o',
                  usageType: 'input',
                  unitPrice: price,
                  effectiveFrom: DAY_START.toISOString(),
                },
              },
            ],
            [
              OVERRIDE,
              {
                i: {
                  provider: 'acme',
                  model: `rocket-${generation.get(tenant.id)}`,
                  usageType: 'input',
                  unitPrice: '0.000001',
                  effectiveFrom: DAY_START.toISOString(),
                },
              },
            ],
            [
              OVERRIDE,
              {
                i: {
                  provider: 'acme',
                  model: `rocket-${generation.get(tenant.id)}`,
                  usageType: 'output',
                  unitPrice: '0.000004',
                  effectiveFrom: DAY_START.toISOString(),
                },
              },
            ],
            [REPRICE, { from: DAY_START.toISOString(), to: NOW.toISOString(), model: 'gpt-4o' }],
          ]
          for (const [query, variables] of requests) {
            try {
              const response = await gql(tenant.apiKey, query, variables)
              if (response.errors) failures.push(`${query.slice(0, 30)}: ${JSON.stringify(response.errors)}`)
              if (query === OVERRIDE) overrides++
              else reprices++
            } catch (error) {
              failures.push(`${query.slice(0, 30)} threw: ${String(error)}`)
            }
          }
          generation.set(tenant.id, generation.get(tenant.id)! + 1)
        }
      }

      await Promise.all([
        ...Array.from({ length: INGEST_WORKERS }, (_, w) => ingest(w)),
        ...tenants.map(overrideAndReprice),
      ])
      // Ingest has stopped: the generations it may have used last get their price too. Events of
      // earlier generations must have been priced by then, however they raced with their override.
      for (const tenant of tenants) {
        for (const model of [`rocket-${generation.get(tenant.id)}`, `rocket-${generation.get(tenant.id)! + 1}`]) {
          for (const usageType of ['input', 'output']) {
            const variables = {
              i: { provider: 'acme', model, usageType, unitPrice: '0.000001', effectiveFrom: DAY_START.toISOString() },
            }
            const response = await gql(tenant.apiKey, OVERRIDE, variables)
            if (response.errors) failures.push(`final override: ${JSON.stringify(response.errors)}`)
          }
        }
      }

      expect(failures.slice(0, 5)).toEqual([])
      expect(loggedErrors.slice(0, 5)).toEqual([])
      expect(batches).toBeGreaterThan(0)
      expect(overrides).toBeGreaterThan(0)
      expect(reprices).toBeGreaterThan(0)

      const db = database.db
      const count = await db
        .selectFrom('usage_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
      expect(Number(count.n)).toBe(recorded)
      // Every rocket generation has its price now: nothing may be left UNPRICED.
      const unpriced = await db
        .selectFrom('usage_events')
        .select(['tenant_id', 'id', 'model'])
        .where('status', '=', 'UNPRICED')
        .limit(5)
        .execute()
      expect(unpriced).toEqual([])

      for (const tenant of tenants) {
        // What each event is billed now: its latest correction, else its own amount.
        const events = await db
          .selectFrom('usage_events')
          .select(['id', 'customer_id', 'amount', 'cost', 'lines'])
          .where('tenant_id', '=', tenant.id)
          .execute()
        const corrections = await db
          .selectFrom('usage_corrections')
          .select(['event_id', 'new_amount', 'new_cost'])
          .where('tenant_id', '=', tenant.id)
          .orderBy('id')
          .execute()
        const latest = new Map(corrections.map((c) => [c.event_id, c]))
        const billed = new Map<string, Decimal>()
        let amount = new Decimal(0)
        let cost = new Decimal(0)
        for (const e of events) {
          const a = new Decimal(latest.get(e.id)?.new_amount ?? e.amount ?? 0)
          amount = amount.plus(a)
          cost = cost.plus(latest.get(e.id)?.new_cost ?? e.cost ?? 0)
          billed.set(e.customer_id, (billed.get(e.customer_id) ?? new Decimal(0)).plus(a))
        }
        const rollup = await db
          .selectFrom('usage_rollups')
          .select((eb) => [
            eb.fn.sum<string>('events').as('events'),
            eb.fn.sum<string>('unpriced_events').as('unpriced'),
            eb.fn.sum<string>('amount').as('amount'),
            eb.fn.sum<string>('cost').as('cost'),
          ])
          .where('tenant_id', '=', tenant.id)
          .executeTakeFirstOrThrow()
        expect({
          events: Number(rollup.events),
          unpriced: Number(rollup.unpriced),
          amount: new Decimal(rollup.amount).toFixed(),
          cost: new Decimal(rollup.cost).toFixed(),
        }).toEqual({
          events: events.length,
          unpriced: 0,
          amount: amount.toFixed(),
          cost: cost.toFixed(),
        })
        const lines = await db
          .selectFrom('usage_line_rollups')
          .select((eb) => eb.fn.sum<string>('amount').as('amount'))
          .where('tenant_id', '=', tenant.id)
          .executeTakeFirstOrThrow()
        expect(new Decimal(lines.amount).toFixed()).toBe(amount.toFixed())
        const outbox = await db
          .selectFrom('stripe_outbox')
          .select((eb) => eb.fn.sum<string>('amount').as('amount'))
          .where('tenant_id', '=', tenant.id)
          .executeTakeFirstOrThrow()
        expect(new Decimal(outbox.amount ?? 0).toFixed()).toBe(amount.toFixed())
        const spend = await db
          .selectFrom('budget_spend')
          .innerJoin('budgets', 'budgets.id', 'budget_spend.budget_id')
          .select(['budgets.customer_id', 'budget_spend.spent'])
          .where('budgets.tenant_id', '=', tenant.id)
          .execute()
        const spent = Object.fromEntries(spend.map((s) => [s.customer_id, new Decimal(s.spent).toFixed()]))
        expect(spent).toEqual(
          Object.fromEntries(CUSTOMERS.map((c) => [c, (billed.get(c) ?? new Decimal(0)).toFixed()])),
        )
      }
      console.log(
        `load mix: ${SECONDS} s, ${batches} batches, ${recorded} events, ${overrides} overrides, ${reprices} re-pricings, 0 failures`,
      )
    },
    (SECONDS + 240) * 1000,
  )
})
