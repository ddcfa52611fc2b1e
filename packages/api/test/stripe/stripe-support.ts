import Stripe from 'stripe'
import { createApp, type App } from '../../src/app.ts'
import type { Clock } from '../../src/clock.ts'
import { defaultConfig, type Config } from '../../src/config.ts'
import { createLogger } from '../../src/logger.ts'
import type { BurnratePubSub } from '../../src/pubsub.ts'
import { toMinor } from '../../src/stripe/credit-push.ts'
import { createStripePusher, type PusherOptions } from '../../src/stripe/pusher.ts'
import type { GqlResponse } from '../support/app.ts'
import { createTestDatabase, type TestDatabase } from '../support/db.ts'
import { startFakeStripe, type Fault, type FakeStripe } from '../support/fake-stripe.ts'

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
  /** The app's pubsub (default: its own in-process one); a test passes one to watch subscriptions. */
  pubsub?: BurnratePubSub
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
  const app = createApp({
    db: database.db,
    clock: options.clock,
    config,
    logger,
    stripeClient,
    ...(options.pubsub ? { pubsub: options.pubsub } : {}),
  })
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

export const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created } }`
export const PREVIEW = `query ($c: String!, $p: DateTime) { invoicePreview(customerId: $c, periodStart: $p) { subtotal creditsApplied total lines { kind amount } } }`

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Usage times in the current billing period (UTC month) as of `now`: from at most 6 hours back to a
 * minute before now; `timestampOf(i)` spreads event i over that range in whole minutes.
 */
export function currentPeriodUsage(now: number) {
  const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1)
  const nextMonth = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() + 1, 1)
  const from = Math.max(monthStart, now - 6 * 3_600_000)
  const span = Math.max(1, Math.floor((now - 60_000 - from) / 60_000))
  return {
    monthStart,
    nextMonth,
    from,
    timestampOf: (i: number) => new Date(from + ((i * 7919) % span) * 60_000).toISOString(),
  }
}

/** Connects the tenant to Stripe: its credentials, customers `${prefix}0`… and setup creating them in Stripe. */
export async function connectCustomers(t: StripeTestApp, secretKey: string, prefix: string, count: number) {
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey } }))
  for (let i = 0; i < count; i++)
    expectNoErrors(
      await t.gql(`mutation { upsertCustomer(input: { id: "${prefix}${i}", name: "Customer ${i}" }) { id } }`),
    )
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
}

/**
 * Subscribes every customer to the account's metered price, so Stripe has an upcoming invoice for
 * each; returns a Stripe client (the real SDK) on the fake and each customer's Stripe id.
 */
export async function subscribeCustomers(t: StripeTestApp, secretKey: string) {
  const db = t.database.db
  const account = await db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  const stripeIds = new Map<string, string>()
  for (const c of await db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  const stripe = new Stripe(secretKey, { host: t.fake.host, port: t.fake.port, protocol: 'http', telemetry: false })
  for (const id of stripeIds.values())
    await stripe.subscriptions.create({ customer: id, items: [{ price: account.price_id! }] })
  return { stripe, stripeIds }
}

/** What the chaos tests inject: every fault a call can meet that a retry gets past. */
export const CHAOS_FAULTS: readonly Fault[] = [
  'rate-limit',
  'server-error',
  'hang',
  'drop',
  'drop-after',
  'hang-after',
  'stored-server-error',
]

/** The same numbers in [0, 1) for the same seed, run after run. */
export function seededRandom(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
}

/** Nothing left to push: no unplanned outbox row, no dirty credit state, no PENDING meter event or credit push. */
async function nothingToPush(t: StripeTestApp): Promise<boolean> {
  const db = t.database.db
  const pending = async (table: 'stripe_pushes' | 'stripe_credit_pushes') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', '=', 'PENDING')
          .executeTakeFirstOrThrow()
      ).n,
    )
  const unplanned = await db.selectFrom('stripe_outbox').select('event_id').where('planned_at', 'is', null).execute()
  const dirty = await db.selectFrom('stripe_credit_state').select('customer_id').where('dirty', '=', true).execute()
  return (
    (await pending('stripe_pushes')) + (await pending('stripe_credit_pushes')) + unplanned.length + dirty.length === 0
  )
}

/**
 * Runs the pusher's rounds until nothing is left to push and `also()` holds, at most 3,000 rounds
 * (20 ms apart once a round finds no work); whether it got there.
 */
export async function pushUntilSettled(
  t: StripeTestApp,
  pusher: ReturnType<StripeTestApp['pusher']>,
  also: () => Promise<boolean> = async () => true,
): Promise<boolean> {
  for (let round = 0; round < 3000; round++) {
    const result = await pusher.runOnce()
    if (result.groups > 0) continue
    if ((await nothingToPush(t)) && (await also())) return true
    await sleep(20)
  }
  return false
}

/** A crash mid-round: starts one of the pusher's rounds and kills it once `reached()` (or when the round ends first). */
export async function killMidRound(pusher: ReturnType<StripeTestApp['pusher']>, reached: () => boolean) {
  let done = false
  const inFlight = pusher.runOnce().finally(() => (done = true))
  while (!done && !reached()) await sleep(2)
  pusher.kill()
  await inFlight
}

/**
 * Stripe's upcoming invoice for a customer beside our invoicePreview of the period (`periodStart`,
 * or the invoice's), both in minor units: subtotal, credits applied and total.
 */
export async function invoiceBesidePreview(
  t: StripeTestApp,
  stripe: Stripe,
  stripeCustomerId: string,
  customerId: string,
  periodStart?: string,
) {
  const invoice = await stripe.invoices.createPreview({ customer: stripeCustomerId })
  const p = periodStart ?? new Date(invoice.period_start * 1000).toISOString()
  const preview = expectNoErrors(await t.gql(PREVIEW, { c: customerId, p })).invoicePreview
  const minor = (amount: string) => Number(toMinor(amount, '100'))
  return {
    preview,
    theirs: {
      subtotal: invoice.subtotal,
      credits: (invoice.total_pretax_credit_amounts ?? []).reduce((sum, c) => sum + c.amount, 0),
      total: invoice.total,
    },
    ours: { subtotal: minor(preview.subtotal), credits: minor(preview.creditsApplied), total: minor(preview.total) },
  }
}
