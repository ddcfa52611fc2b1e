import Stripe from 'stripe'
import { createApp, type App } from '../../src/app.ts'
import type { Clock } from '../../src/clock.ts'
import { defaultConfig, type Config } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import { createStripePusher, type PusherOptions } from '../../src/stripe/pusher.ts'
import type { GqlResponse } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.ts'

export const MASTER_KEY = 'a'.repeat(16) + '0123456789abcdef'.repeat(3)

export interface StripeTestApp {
  app: App
  database: TestDatabase
  fake: FakeStripe
  tenant: { id: string; apiKey: string }
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    key?: string,
  ): Promise<GqlResponse<T>>
  pusher(options?: Partial<PusherOptions>): ReturnType<typeof createStripePusher>
  /** Most meter event calls our clients ever had in flight at once for one customer and meter. */
  maxCallsInFlightPerCustomer(): number
  /** The request timeout of Stripe clients built from now on (a client is built per use). */
  setClientTimeout(ms: number): void
  close(): Promise<void>
}

/** An app on a fresh database whose Stripe clients (the real SDK) talk to a local fake Stripe. */
export async function createStripeTestApp(options: {
  clock: Clock
  timeoutMs?: number
  config?: Partial<Config>
}): Promise<StripeTestApp> {
  const fake = await startFakeStripe()
  const database = await createTestDatabase()
  const config = defaultConfig({ LOG_LEVEL: 'silent', STRIPE_ENCRYPTION_KEY: MASTER_KEY, ...options.config })
  const logger = createLogger('silent')
  // Every client's meter event calls are counted per Stripe customer while in flight, so tests
  // can check we never make two at once for one customer and meter.
  const open = new Map<string, number>()
  let maxOpen = 0
  // Tests that exercise timeouts set their own; the default is generous because a busy CI box can
  // take seconds to answer a set-up call, and a slow answer is not what those tests are about.
  let clientTimeoutMs = options.timeoutMs ?? 15_000
  const stripeClient = (secretKey: string) => {
    const client = new Stripe(secretKey, {
      host: fake.host,
      port: fake.port,
      protocol: 'http',
      maxNetworkRetries: 0,
      timeout: clientTimeoutMs,
      telemetry: false,
    })
    const create = client.billing.meterEvents.create.bind(client.billing.meterEvents)
    client.billing.meterEvents.create = (async (
      params: Stripe.Billing.MeterEventCreateParams,
      requestOptions?: Stripe.RequestOptions,
    ) => {
      const key = `${params.event_name}|${params.payload.stripe_customer_id}`
      open.set(key, (open.get(key) ?? 0) + 1)
      maxOpen = Math.max(maxOpen, open.get(key)!)
      try {
        return await create(params, requestOptions)
      } finally {
        open.set(key, open.get(key)! - 1)
      }
    }) as typeof client.billing.meterEvents.create
    return client
  }
  const app = createApp({ db: database.db, clock: options.clock, config, logger, stripeClient })
  await app.services.catalog.syncBundled()
  const created = await app.services.tenants.create({ name: 'Stripe tenant' })
  const tenant = { id: created.tenant.id, apiKey: created.apiKey }
  return {
    app,
    database,
    fake,
    tenant,
    setClientTimeout(ms) {
      clientTimeoutMs = ms
    },
    async gql(query, variables, key) {
      const response = await app.yoga.fetch('http://burnrate.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key ?? tenant.apiKey}` },
        body: JSON.stringify({ query, variables }),
      })
      return (await response.json()) as GqlResponse<any>
    },
    maxCallsInFlightPerCustomer: () => maxOpen,
    pusher: (overrides = {}) =>
      createStripePusher({
        db: database.db,
        clock: options.clock,
        logger,
        stripe: app.services.stripe,
        trueUps: app.services.rating,
        options: { intervalMs: 50, leaseMs: 60_000, concurrency: 4, backoffBaseMs: 5, backoffMaxMs: 40, ...overrides },
      }),
    close: async () => {
      await fake.close()
      await database.destroy()
    },
  }
}

export const SET_CREDENTIALS = `mutation ($input: StripeCredentialsInput!) { setStripeCredentials(input: $input) { keyHint webhookSecretSet mode currency unitsPerCurrencyUnit } }`
export const SETUP = `mutation ($input: StripeSetupInput) { setupStripeBilling(input: $input) { createdCustomers account { mode eventName meterId productId priceId setupAt } } }`
export const RECORD_BATCH = `mutation ($events: [UsageEventInput!]!) { recordUsageBatch(events: $events) { recorded duplicates rejected results { error { code message } } } }`

export function expectNoErrors<T>(response: GqlResponse<T>): T {
  if (response.errors?.length) throw new Error(JSON.stringify(response.errors))
  return response.data as T
}
