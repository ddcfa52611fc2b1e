import type Stripe from 'stripe'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import {
  CHAOS_FAULTS,
  connectCustomers,
  createStripeTestApp,
  currentPeriodUsage,
  expectNoErrors,
  GRANT,
  invoiceBesidePreview,
  killMidRound,
  pushUntilSettled,
  RECORD_BATCH,
  seededRandom,
  sleep,
  subscribeCustomers,
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

let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
// All usage in the current billing period (UTC month), before now.
const { from, timestampOf } = currentPeriodUsage(Date.now())

let t: StripeTestApp
let stripe: Stripe
let stripeIds: Map<string, string>

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  await connectCustomers(t, SECRET_KEY, 'k', CUSTOMERS)
  offset = from - 60_000 - Date.now()
  expectNoErrors(await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "37" }) { kind } }`))
  offset = 0
  ;({ stripe, stripeIds } = await subscribeCustomers(t, SECRET_KEY))
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
      timestamp: timestampOf(i),
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

it('Stripe invoices apply exactly the credits we applied, despite failures and a killed pusher', async () => {
  const random = seededRandom(7)
  t.fake.fault = ({ path, method }) =>
    method === 'POST' &&
    (path === '/v1/billing/meter_events' || path.startsWith('/v1/billing/credit_grants')) &&
    random() < 0.2
      ? CHAOS_FAULTS[Math.floor(random() * CHAOS_FAULTS.length)]!
      : null
  // A short client timeout from here on, so hangs turn into retries quickly (set-up used the default).
  t.setClientTimeout(150)
  await ingest(0, EVENTS / 2)
  const maxAttempts = 100
  const first = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  await first.runOnce()
  const calls = creditCalls().length + t.fake.requests.length
  await killMidRound(first, () => creditCalls().length + t.fake.requests.length >= calls + 10)
  // A top-up mid-way for the customers whose small grant ran out.
  for (let i = 1; i < CUSTOMERS; i += 4)
    expectNoErrors(await t.gql(GRANT, { i: { customerId: `k${i}`, idempotencyKey: `k${i}-top-up`, amount: '0.11' } }))
  const second = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  const ingesting = ingest(EVENTS / 2, EVENTS)
  const finished = await pushUntilSettled(t, second, () =>
    Promise.race([ingesting.then(() => true), sleep(0).then(() => false)]),
  )
  await ingesting
  expect(finished).toBe(true)
  t.fake.fault = () => null
  t.setClientTimeout(10_000)

  const pushes = await t.database.db.selectFrom('stripe_credit_pushes').selectAll().execute()
  expect(pushes.every((p) => p.status === 'SENT' || p.status === 'CANCELLED')).toBe(true)
  let credited = 0
  for (let i = 0; i < CUSTOMERS; i++) {
    const { theirs, ours } = await invoiceBesidePreview(t, stripe, stripeIds.get(`k${i}`)!, `k${i}`)
    const { subtotal, credits } = ours
    expect({ customer: `k${i}`, ...theirs }).toEqual({
      customer: `k${i}`,
      subtotal,
      credits,
      total: subtotal - credits,
    })
    if (i % 4 === 0) expect(credits).toBe(0)
    if (i % 4 === 2) expect(theirs.total).toBe(0)
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
