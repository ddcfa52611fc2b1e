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
 * Minimum commitments on Stripe's invoice: once the period closes, each customer's true-up reaches
 * Stripe as one invoice item, so Stripe's invoice (metered usage, credit grants applied, the item)
 * equals invoicePreview exactly — subtotal, credits and total — with a minimum in force. 20 % of
 * meter event, credit grant and invoice item calls fail (429, 500, hangs, answers lost after Stripe
 * made the item, stored 500s replayed for the key) and the first pusher after the close is killed
 * mid-flight; no true-up is made twice.
 */
const SECRET_KEY = 'sk_test_trueUp00000001'
const HOUR = 3_600_000
const CUSTOMERS = 9
const WITH_USAGE = 8
const EVENTS = 480

let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
const now0 = Date.now()
const monthStart = Date.UTC(new Date(now0).getUTCFullYear(), new Date(now0).getUTCMonth(), 1)
const nextMonth = Date.UTC(new Date(now0).getUTCFullYear(), new Date(now0).getUTCMonth() + 1, 1)
const from = Math.max(monthStart, now0 - 6 * HOUR)
const span = Math.max(1, Math.floor((now0 - 60_000 - from) / 60_000))

const PREVIEW = `query ($c: String!, $p: DateTime) { invoicePreview(customerId: $c, periodStart: $p) { subtotal creditsApplied total lines { kind amount } } }`
const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created } }`
const SET_PLAN = `mutation ($i: RatingPlanInput!) { setRatingPlan(input: $i) { id } }`
const MARGIN = { type: 'COST_BASED', kind: 'MARGIN', percent: '37' }

/** The minimum commitment per customer (null: none); t8 records no usage at all. */
const minimumOf = (i: number): string | null =>
  i <= 3 ? '5' : i <= 5 ? '0.01' : i === 6 ? null : i === 7 ? '3.3333' : '2'

let t: StripeTestApp
let stripe: Stripe
const stripeIds = new Map<string, string>()

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (let i = 0; i < CUSTOMERS; i++)
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "t${i}", name: "Customer ${i}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  // Plans in force from before the first event: the tenant default has a $5 minimum; t4 and t5 a
  // minimum below their usage, t6 none, t7 one with sub-cent digits, t8 one and no usage.
  offset = from - 60_000 - Date.now()
  expectNoErrors(await t.gql(SET_PLAN, { i: { rules: [MARGIN, { type: 'MINIMUM', amount: '5' }] } }))
  for (let i = 4; i < CUSTOMERS; i++) {
    const minimum = minimumOf(i)
    expectNoErrors(
      await t.gql(SET_PLAN, {
        i: { customerId: `t${i}`, rules: minimum ? [MARGIN, { type: 'MINIMUM', amount: minimum }] : [MARGIN] },
      }),
    )
  }
  offset = 0
  const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  for (const c of await t.database.db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  stripe = new Stripe(SECRET_KEY, { host: t.fake.host, port: t.fake.port, protocol: 'http', telemetry: false })
  for (const id of stripeIds.values())
    await stripe.subscriptions.create({ customer: id, items: [{ price: account.price_id! }] })
  // Credits: t1 a small grant that runs out, t2 one that pays for all its usage (not the true-up).
  expectNoErrors(await t.gql(GRANT, { i: { customerId: 't1', idempotencyKey: 't1-0', amount: '0.2' } }))
  expectNoErrors(
    await t.gql(GRANT, { i: { customerId: 't2', idempotencyKey: 't2-0', amount: '500', category: 'PROMOTIONAL' } }),
  )
}, 300_000)

afterAll(async () => {
  await t?.close()
})

function makeEvents(start: number, end: number) {
  const events = []
  for (let i = start; i < end; i++)
    events.push({
      id: `tu-${i}`,
      customerId: `t${i % WITH_USAGE}`,
      model: i % 3 === 0 ? 'gpt-4o-mini' : 'gpt-4o',
      timestamp: new Date(from + ((i * 7919) % span) * 60_000).toISOString(),
      inputTokens: 100 + ((i * 31) % 5000),
      outputTokens: 1 + ((i * 13) % 900),
    })
  return events
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const itemCalls = () => t.fake.requests.filter((r) => r.path === '/v1/invoiceitems' && r.method === 'POST')

async function settled(): Promise<boolean> {
  const db = t.database.db
  const count = async (table: 'stripe_pushes' | 'stripe_credit_pushes') =>
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
  return (await count('stripe_pushes')) + (await count('stripe_credit_pushes')) + unplanned.length + dirty.length === 0
}

async function drain(pusher: ReturnType<StripeTestApp['pusher']>) {
  for (let round = 0; round < 3000; round++) {
    const result = await pusher.runOnce()
    if (result.groups > 0) continue
    if (await settled()) return
    await sleep(20)
  }
  throw new Error('the pusher did not settle')
}

it("Stripe's invoice equals invoicePreview with a minimum commitment in force, despite failures", async () => {
  const faults: Fault[] = [
    'rate-limit',
    'server-error',
    'hang',
    'drop',
    'drop-after',
    'hang-after',
    'stored-server-error',
  ]
  let seed = 11
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  // Only 6 true-ups: their first calls get the faults that matter most, in turn; then 20 % at random.
  const itemFaults: Fault[] = ['drop-after', 'hang-after', 'stored-server-error', 'rate-limit', 'drop-after']
  t.fake.fault = ({ path, method }) => {
    if (method !== 'POST') return null
    if (path === '/v1/invoiceitems' && itemFaults.length > 0) return itemFaults.shift()!
    return (path === '/v1/billing/meter_events' ||
      path.startsWith('/v1/billing/credit_grants') ||
      path === '/v1/invoiceitems') &&
      random() < 0.2
      ? faults[Math.floor(random() * faults.length)]!
      : null
  }
  t.setClientTimeout(150)
  for (let i = 0; i < EVENTS; i += 240) {
    const data = expectNoErrors(await t.gql(RECORD_BATCH, { events: makeEvents(i, i + 240) }))
    expect(data.recordUsageBatch.rejected).toBe(0)
  }
  const options = { leaseMs: 500, concurrency: 4, maxAttempts: 100 }
  await drain(t.pusher(options))
  // The period is open: no true-up is sent yet.
  expect(itemCalls()).toHaveLength(0)

  // The period closes. The first pusher is killed once it has made a few invoice item calls.
  offset = nextMonth + 60_000 - Date.now()
  const first = t.pusher(options)
  let done = false
  const inFlight = first.runOnce().finally(() => (done = true))
  while (!done && itemCalls().length < 3) await sleep(2)
  first.kill()
  await inFlight
  await drain(t.pusher(options))
  t.fake.fault = () => null
  t.setClientTimeout(10_000)

  const period = new Date(monthStart).toISOString()
  for (let i = 0; i < CUSTOMERS; i++) {
    const customer = `t${i}`
    const invoice = await stripe.invoices.createPreview({ customer: stripeIds.get(customer)! })
    const preview = expectNoErrors(await t.gql(PREVIEW, { c: customer, p: period })).invoicePreview
    const subtotal = Number(toMinor(preview.subtotal, '100'))
    const credits = Number(toMinor(preview.creditsApplied, '100'))
    const applied = (invoice.total_pretax_credit_amounts ?? []).reduce((s, c) => s + c.amount, 0)
    expect({ customer, subtotal: invoice.subtotal, credits: applied, total: invoice.total }).toEqual({
      customer,
      subtotal,
      credits,
      total: Number(toMinor(preview.total, '100')),
    })
    const trueUp = preview.lines.find((l: { kind: string }) => l.kind === 'MINIMUM_TRUE_UP')
    const items = t.fake.account(SECRET_KEY).invoiceItems.filter((ii) => ii.customer === stripeIds.get(customer))
    if (i <= 3 || i >= 7) {
      // The true-up is what lifts the subtotal to the minimum: exactly one invoice item carries it.
      expect(preview.subtotal).toBe(minimumOf(i))
      expect(trueUp).toBeDefined()
      expect(items).toHaveLength(1)
      expect(items[0]!.period.start).toBe(monthStart / 1000)
    } else {
      expect(trueUp).toBeUndefined()
      expect(items).toHaveLength(0)
    }
  }
  // t2's credits pay for its usage, not for the true-up: Stripe bills the true-up alone.
  const t2 = expectNoErrors(await t.gql(PREVIEW, { c: 't2', p: period })).invoicePreview
  expect(t2.total).toBe(t2.lines.find((l: { kind: string; amount: string }) => l.kind === 'MINIMUM_TRUE_UP').amount)
  // Answers lost after Stripe made the item were retried and the item adopted, not made again.
  expect(itemCalls().filter((r) => r.fault === 'drop-after' || r.fault === 'hang-after')).toHaveLength(3)
  const pushes = await t.database.db
    .selectFrom('stripe_credit_pushes')
    .selectAll()
    .where('kind', '=', 'TRUE_UP')
    .execute()
  expect(pushes.map((p) => p.status)).toEqual(Array(6).fill('SENT'))
}, 480_000)
