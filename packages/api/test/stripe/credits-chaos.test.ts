import Stripe from 'stripe'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import { toMinor } from '../../src/stripe/credit-push.ts'
import type { Fault } from '../support/fake-stripe.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  RECORD_BATCH,
  SET_CREDENTIALS,
  SETUP,
  type StripeTestApp,
} from './stripe-support.ts'

/**
 * The chaos test (chaos.test.ts) with prepaid credits: 3,000 events across 24 customers with
 * grants of both categories, priorities, a scope and a top-up mid-way; 20 % of meter event and
 * credit grant calls fail (429, 500, hangs, drops before or after Stripe processed them, stored
 * 500s replayed for the key); the first pusher is killed mid-flight. For every customer, Stripe's
 * upcoming invoice (subtotal, credits applied, total) equals invoicePreview, exactly.
 */
const CUSTOMERS = 24
const EVENTS = 3_000
const SECRET_KEY = 'sk_test_creditChaos0001'
const HOUR = 3_600_000

let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
// All usage in the current billing period (UTC month), before now.
const now0 = Date.now()
const monthStart = Date.UTC(new Date(now0).getUTCFullYear(), new Date(now0).getUTCMonth(), 1)
const from = Math.max(monthStart, now0 - 6 * HOUR)
const span = Math.max(1, Math.floor((now0 - 60_000 - from) / 60_000))

const PREVIEW = `query ($c: String!, $p: DateTime) { invoicePreview(customerId: $c, periodStart: $p) { subtotal creditsApplied total } }`
const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created } }`

let t: StripeTestApp
let stripe: Stripe
const stripeIds = new Map<string, string>()

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (let i = 0; i < CUSTOMERS; i++)
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "k${i}", name: "Customer ${i}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  offset = from - 60_000 - Date.now()
  expectNoErrors(await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "37" }) { kind } }`))
  offset = 0
  const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  for (const c of await t.database.db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  stripe = new Stripe(SECRET_KEY, { host: t.fake.host, port: t.fake.port, protocol: 'http', telemetry: false })
  for (const id of stripeIds.values())
    await stripe.subscriptions.create({ customer: id, items: [{ price: account.price_id! }] })
  // k0, k4, …: no credits. k1: a small paid grant that runs out. k2: a promotional grant that pays
  // for everything. k3: a grant scoped to gpt-4o-mini first (priority 10), then a small paid one.
  for (let i = 0; i < CUSTOMERS; i++) {
    const grants: Record<string, unknown>[] = []
    if (i % 4 === 1) grants.push({ amount: '0.07' })
    if (i % 4 === 2) grants.push({ amount: '500', category: 'PROMOTIONAL' })
    if (i % 4 === 3)
      grants.push(
        { amount: '300', priority: 10, scope: { models: ['gpt-4o-mini*'] } },
        { amount: '0.03', priority: 60 },
      )
    for (const [j, g] of grants.entries())
      expectNoErrors(await t.gql(GRANT, { i: { customerId: `k${i}`, idempotencyKey: `k${i}-${j}`, ...g } }))
  }
}, 300_000)

afterAll(async () => {
  await t?.close()
})

function makeEvents(start: number, end: number) {
  const models = ['gpt-4o', 'gpt-4o-mini']
  const events = []
  for (let i = start; i < end; i++) {
    events.push({
      id: `cc-${i}`,
      customerId: `k${i % CUSTOMERS}`,
      model: models[(i >> 1) % 2]!,
      timestamp: new Date(from + ((i * 7919) % span) * 60_000).toISOString(),
      inputTokens: 100 + ((i * 31) % 5000),
      cacheReadTokens: (i * 17) % 100,
      outputTokens: 1 + ((i * 13) % 900),
    })
  }
  return events
}

async function ingest(start: number, end: number) {
  for (let i = start; i < end; i += 500) {
    const data = expectNoErrors(await t.gql(RECORD_BATCH, { events: makeEvents(i, Math.min(i + 500, end)) }))
    expect(data.recordUsageBatch.rejected).toBe(0)
  }
}

const creditCalls = () => t.fake.requests.filter((r) => r.path.startsWith('/v1/billing/credit_grants'))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function settled(): Promise<boolean> {
  const db = t.database.db
  const count = async (q: Promise<{ n: number | string | bigint }>) => Number((await q).n)
  const pending = await count(
    db
      .selectFrom('stripe_pushes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'PENDING')
      .executeTakeFirstOrThrow(),
  )
  const unplanned = await count(
    db
      .selectFrom('stripe_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('planned_at', 'is', null)
      .executeTakeFirstOrThrow(),
  )
  const credits = await count(
    db
      .selectFrom('stripe_credit_pushes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'PENDING')
      .executeTakeFirstOrThrow(),
  )
  const dirty = await count(
    db
      .selectFrom('stripe_credit_state')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('dirty', '=', true)
      .executeTakeFirstOrThrow(),
  )
  return pending + unplanned + credits + dirty === 0
}

it('Stripe invoices apply exactly the credits we applied, despite failures and a killed pusher', async () => {
  const faults: Fault[] = [
    'rate-limit',
    'server-error',
    'hang',
    'drop',
    'drop-after',
    'hang-after',
    'stored-server-error',
  ]
  let seed = 7
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  t.fake.fault = ({ path, method }) =>
    method === 'POST' &&
    (path === '/v1/billing/meter_events' || path.startsWith('/v1/billing/credit_grants')) &&
    random() < 0.2
      ? faults[Math.floor(random() * faults.length)]!
      : null
  // A short client timeout from here on, so hangs turn into retries quickly (set-up used the default).
  t.setClientTimeout(150)
  await ingest(0, EVENTS / 2)
  const maxAttempts = 100
  const first = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  await first.runOnce()
  let done = false
  const inFlight = first.runOnce().finally(() => (done = true))
  const calls = creditCalls().length + t.fake.requests.length
  while (!done && creditCalls().length + t.fake.requests.length < calls + 10) await sleep(2)
  first.kill()
  await inFlight
  // A top-up mid-way for the customers whose small grant ran out.
  for (let i = 1; i < CUSTOMERS; i += 4)
    expectNoErrors(await t.gql(GRANT, { i: { customerId: `k${i}`, idempotencyKey: `k${i}-top-up`, amount: '0.11' } }))
  const second = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  const ingesting = ingest(EVENTS / 2, EVENTS)
  let finished = false
  for (let round = 0; round < 3000 && !finished; round++) {
    const result = await second.runOnce()
    if (result.groups > 0) continue
    finished = (await settled()) && (await Promise.race([ingesting.then(() => true), sleep(0).then(() => false)]))
    if (!finished) await sleep(20)
  }
  await ingesting
  expect(finished).toBe(true)
  t.fake.fault = () => null
  t.setClientTimeout(10_000)

  const pushes = await t.database.db.selectFrom('stripe_credit_pushes').selectAll().execute()
  expect(pushes.every((p) => p.status === 'SENT' || p.status === 'CANCELLED')).toBe(true)
  let credited = 0
  for (let i = 0; i < CUSTOMERS; i++) {
    const invoice = await stripe.invoices.createPreview({ customer: stripeIds.get(`k${i}`)! })
    const preview = expectNoErrors(
      await t.gql(PREVIEW, { c: `k${i}`, p: new Date(invoice.period_start * 1000).toISOString() }),
    ).invoicePreview
    const subtotal = Number(toMinor(preview.subtotal, '100'))
    const credits = Number(toMinor(preview.creditsApplied, '100'))
    const applied = (invoice.total_pretax_credit_amounts ?? []).reduce((s, c) => s + c.amount, 0)
    expect({ customer: `k${i}`, subtotal: invoice.subtotal, credits: applied, total: invoice.total }).toEqual({
      customer: `k${i}`,
      subtotal,
      credits,
      total: subtotal - credits,
    })
    if (i % 4 === 0) expect(credits).toBe(0)
    if (i % 4 === 2) expect(invoice.total).toBe(0)
    credited += credits
  }
  expect(credited).toBeGreaterThan(0)
  // One Stripe grant per GRANT push that was not taken back, whatever the retries.
  const live = t.fake.account(SECRET_KEY).creditGrants.filter((g) => g.voided_at === null)
  const tags = live.map((g) => g.metadata.burnrate_push)
  expect(new Set(tags).size).toBe(tags.length)
  // The chaos really reached the credit grant calls, including answers lost after Stripe made the grant.
  const faulted = new Set(creditCalls().map((r) => r.fault))
  expect(faulted.size).toBeGreaterThan(3)
  expect(creditCalls().some((r) => r.fault === 'drop-after' || r.fault === 'hang-after')).toBe(true)
}, 480_000)
