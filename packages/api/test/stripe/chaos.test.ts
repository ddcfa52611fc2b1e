import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
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
 * 10,000 events across 50 customers; 20 % of meter event calls fail (429, 500, hangs past the
 * client timeout, connections dropped before or after Stripe processed the call); the first
 * pusher is killed mid-flight and a new one takes over after its claims expire, while ingest
 * continues. Stripe's totals must equal ours exactly, each identifier accepted once.
 */
const HOUR = 3_600_000
const CUSTOMERS = 50
const EVENTS = 10_000
const SECRET_KEY = 'sk_test_chaosChaosChaos01'

// Real time shifted by `offset`: leases and backoff need time to pass; the plan is set "in the past".
let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
const start = new Date(Math.floor(Date.now() / HOUR) * HOUR - 30 * HOUR)

let t: StripeTestApp

beforeAll(async () => {
  t = await createStripeTestApp({ clock, timeoutMs: 150 })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (let i = 0; i < CUSTOMERS; i++)
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "c${i}", name: "Customer ${i}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  offset = start.getTime() - 60_000 - Date.now()
  // A 37 % margin: every amount has 18 decimals, nothing is a whole unit.
  expectNoErrors(await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "37" }) { kind } }`))
  offset = 0
}, 120_000)

afterAll(async () => {
  await t?.close()
})

function makeEvents(from: number, to: number) {
  const models = ['gpt-4o', 'gpt-4o-mini']
  const events = []
  for (let i = from; i < to; i++) {
    events.push({
      id: `chaos-${i}`,
      customerId: `c${i % CUSTOMERS}`,
      model: models[i % 2]!,
      // Spread over 6 hours: each customer has several hourly windows, each pushed more than once.
      timestamp: new Date(start.getTime() + ((i * 7919) % (6 * 60)) * 60_000).toISOString(),
      inputTokens: 100 + ((i * 31) % 5000),
      cacheReadTokens: (i * 17) % 100,
      outputTokens: 1 + ((i * 13) % 900),
    })
  }
  return events
}

async function ingest(from: number, to: number) {
  for (let i = from; i < to; i += 1000) {
    const data = expectNoErrors(await t.gql(RECORD_BATCH, { events: makeEvents(i, Math.min(i + 1000, to)) }))
    expect(data.recordUsageBatch.rejected).toBe(0)
  }
}

const meterCalls = () => t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

it('pushes 10,000 events for 50 customers exactly despite failures and a killed pusher', async () => {
  const faults: Fault[] = ['rate-limit', 'server-error', 'hang', 'drop', 'drop-after', 'hang-after']
  let seed = 42
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  t.fake.fault = ({ path }) =>
    path === '/v1/billing/meter_events' && random() < 0.2 ? faults[Math.floor(random() * faults.length)]! : null
  await ingest(0, 5000)
  // Backoff here is milliseconds and the client timeout 150 ms on a busy machine: production's bound
  // on attempts (STRIPE_PUSH_MAX_ATTEMPTS, about 45 minutes of backoff) would be used up in a second.
  // Giving up is tested in stripe-idempotency.test.ts; this test is about retrying until it works.
  const maxAttempts = 100
  const first = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  await first.runOnce()
  // Kill the first pusher while calls are in flight: their outcomes are never recorded.
  let settled = false
  const inFlight = first.runOnce().finally(() => (settled = true))
  const calls = meterCalls().length
  while (!settled && meterCalls().length < calls + 20) await sleep(2)
  expect(settled).toBe(false)
  first.kill()
  await inFlight
  const second = t.pusher({ leaseMs: 500, concurrency: 8, maxAttempts })
  const ingesting = ingest(5000, EVENTS)
  let done = false
  for (let round = 0; round < 2000 && !done; round++) {
    const result = await second.runOnce()
    if (result.groups > 0) continue
    const pending = await t.database.db
      .selectFrom('stripe_pushes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'PENDING')
      .executeTakeFirstOrThrow()
    const unplanned = await t.database.db
      .selectFrom('stripe_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('planned_at', 'is', null)
      .executeTakeFirstOrThrow()
    done =
      Number(pending.n) === 0 &&
      Number(unplanned.n) === 0 &&
      (await Promise.race([ingesting.then(() => true), sleep(0).then(() => false)]))
    if (!done) await sleep(20)
  }
  await ingesting
  expect(done).toBe(true)

  const db = t.database.db
  const account = await db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  const stripeTotals = t.fake.totals(SECRET_KEY, account.event_name!)
  const customers = await db
    .selectFrom('customers')
    .select(['id', 'stripe_customer_id'])
    .where('tenant_id', '=', t.tenant.id)
    .execute()
  const billed = await db
    .selectFrom('usage_events')
    .select(['customer_id', 'amount'])
    .where('tenant_id', '=', t.tenant.id)
    .execute()
  const states = await db.selectFrom('stripe_push_state').select(['customer_id', 'residue']).execute()
  expect(billed).toHaveLength(EVENTS)
  for (const customer of customers) {
    const total = billed
      .filter((b) => b.customer_id === customer.id)
      .reduce((s, b) => s.plus(b.amount!), new Decimal(0))
    const residue = new Decimal(states.find((s) => s.customer_id === customer.id)!.residue)
    const reported = stripeTotals.get(customer.stripe_customer_id!) ?? 0n
    // Stripe's total + carried residue = our billed total in units, exactly; the residue is below one unit.
    expect(new Decimal(reported.toString()).plus(residue.times(100_000)).eq(total.times(100_000))).toBe(true)
    expect(residue.times(100_000).lt(1)).toBe(true)
    expect(reported).toBeGreaterThan(0n)
  }

  // Never more than one call at a time per customer and meter (Stripe's rule).
  expect(t.maxCallsInFlightPerCustomer()).toBe(1)

  const accepted = t.fake.account(SECRET_KEY).meterEvents.map((e) => e.identifier)
  expect(new Set(accepted).size).toBe(accepted.length)
  const sent = await db.selectFrom('stripe_pushes').select(['identifier', 'status']).execute()
  expect(sent.every((p) => p.status === 'SENT')).toBe(true)
  expect(new Set(accepted)).toEqual(new Set(sent.map((p) => p.identifier)))
  // The chaos really happened: faults of every kind, and re-sends Stripe had already processed.
  const faulted = new Set(meterCalls().map((r) => r.fault))
  expect([...faulted].sort()).toEqual([null, ...faults].sort())
  expect(meterCalls().filter((r) => r.replayed).length).toBeGreaterThan(0)

  // And reconciliation agrees: no customer shows a difference.
  const from = new Date(start.getTime() - HOUR).toISOString()
  const to = new Date(start.getTime() + 30 * HOUR).toISOString()
  t.fake.fault = () => null
  // The chaos is over: a reconciliation on a busy machine must not fail on the 150 ms chaos timeout.
  t.setClientTimeout(10_000)
  const rec = expectNoErrors(
    await t.gql(
      `query ($from: DateTime!, $to: DateTime!) { stripeReconciliation(from: $from, to: $to) { customerId reportedUnits stripeUnits differences } }`,
      { from, to },
    ),
  )
  expect(rec.stripeReconciliation).toHaveLength(CUSTOMERS)
  for (const row of rec.stripeReconciliation as {
    reportedUnits: string
    stripeUnits: string
    differences: string[]
  }[]) {
    expect(row.differences).toEqual([])
    expect(row.stripeUnits).toBe(row.reportedUnits)
  }
}, 120_000)
