import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
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
 * Stripe's idempotency layer stores a request's result, a 500 included, and replays it for 24 h to
 * every request with the same Idempotency-Key. A push must get past a stored error (new key, same
 * meter event identifier, which Stripe de-duplicates), and end FAILED within a bounded number of
 * attempts when Stripe keeps failing. Also: Stripe's snapshot and thin event destinations sign with
 * two different secrets, and both are accepted.
 */
const HOUR = 3_600_000
const T0 = new Date(Math.floor(Date.now() / HOUR) * HOUR - 2 * 24 * HOUR)
const clock = fixedClock(T0)
const SECRET_KEY = 'sk_test_idempotencyTenant1'
const SNAPSHOT_SECRET = 'whsec_snapshotDestination01'
const THIN_SECRET = 'whsec_thinDestination000001'
const MAX_ATTEMPTS = 4

let t: StripeTestApp
let eventName: string

const usage = (id: string, customerId: string, at: Date) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: at.toISOString(),
  inputTokens: 100_000,
  outputTokens: 2_000,
})

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (const id of ['stored', 'counted', 'stuck'])
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id}" }) { id } }`))
  const setup = expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  eventName = setup.setupStripeBilling.account.eventName
  // Where a stripe.push_failed alert would go (not delivered here: the event row is what is checked).
  expectNoErrors(
    await t.gql(
      `mutation { createWebhookEndpoint(url: "https://example.com/hooks", eventTypes: ["stripe.push_failed"]) { secret } }`,
    ),
  )
  // The usage below happens in the hours after T0, a day before "now".
  clock.set(new Date(T0.getTime() + 24 * HOUR))
})
afterAll(async () => {
  await t?.close()
})

const meterCalls = (customerStripeId: string) =>
  t.fake.requests.filter(
    (r) =>
      r.path === '/v1/billing/meter_events' &&
      (r.params.payload as Record<string, string>).stripe_customer_id === customerStripeId,
  )

async function stripeIdOf(customerId: string): Promise<string> {
  const row = await t.database.db
    .selectFrom('customers')
    .select('stripe_customer_id')
    .where('tenant_id', '=', t.tenant.id)
    .where('id', '=', customerId)
    .executeTakeFirstOrThrow()
  return row.stripe_customer_id!
}

/** Faults for one Stripe customer's meter events, in order; then it behaves. */
function faultsFor(customerStripeId: string, faults: (Fault | null)[] | 'always-stored-500') {
  let n = 0
  t.fake.fault = ({ path, params }) => {
    if (
      path !== '/v1/billing/meter_events' ||
      (params.payload as Record<string, string>).stripe_customer_id !== customerStripeId
    )
      return null
    if (faults === 'always-stored-500') return 'stored-server-error'
    return faults[n++] ?? null
  }
}

/** Push rounds, past each backoff, until nothing is PENDING (bounded: the test fails if it never settles). */
async function pushUntilSettled(customerId: string) {
  const pusher = t.pusher({ maxAttempts: MAX_ATTEMPTS })
  for (let i = 0; i < 30; i++) {
    await pusher.runOnce()
    const pending = await t.database.db
      .selectFrom('stripe_pushes')
      .select('identifier')
      .where('customer_id', '=', customerId)
      .where('status', '=', 'PENDING')
      .execute()
    if (pending.length === 0) return
    clock.advance(60_000)
  }
  throw new Error(`pushes of ${customerId} still PENDING after 30 rounds`)
}

describe("a stored 500 from Stripe's idempotency layer", () => {
  it('is replayed for the same key: the next attempt uses a new Idempotency-Key with the same identifier, and it counts once', async () => {
    const stripeId = await stripeIdOf('stored')
    faultsFor(stripeId, ['stored-server-error'])
    expectNoErrors(await t.gql(RECORD_BATCH, { events: [usage('s1', 'stored', new Date(T0.getTime() + 10 * 60_000))] }))
    await pushUntilSettled('stored')
    t.fake.fault = () => null
    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'stored')
      .executeTakeFirstOrThrow()
    expect(push.status).toBe('SENT')
    const calls = meterCalls(stripeId)
    expect(calls.map((r) => [r.status, r.replayed, r.headers['idempotency-key'], r.params.identifier])).toEqual([
      [500, false, push.identifier, push.identifier],
      // Stripe's stored answer for that key, again: retrying under it could never succeed.
      [500, true, push.identifier, push.identifier],
      [200, false, `${push.identifier}-r2`, push.identifier],
    ])
    expect(t.fake.account(SECRET_KEY).meterEvents.filter((e) => e.identifier === push.identifier)).toHaveLength(1)
    expect(t.fake.totals(SECRET_KEY, eventName).get(stripeId)).toBe(BigInt(push.value))
  })

  it('after Stripe counted the event: the retry under a new key is de-duplicated on the identifier, and the push is SENT', async () => {
    const stripeId = await stripeIdOf('counted')
    faultsFor(stripeId, ['server-error-after'])
    expectNoErrors(
      await t.gql(RECORD_BATCH, { events: [usage('c1', 'counted', new Date(T0.getTime() + 20 * 60_000))] }),
    )
    await pushUntilSettled('counted')
    t.fake.fault = () => null
    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'counted')
      .executeTakeFirstOrThrow()
    expect(push.status).toBe('SENT')
    const calls = meterCalls(stripeId)
    expect(calls.map((r) => [r.status, r.replayed, r.headers['idempotency-key']])).toEqual([
      [500, false, push.identifier],
      [500, true, push.identifier],
      [400, false, `${push.identifier}-r2`],
    ])
    expect(t.fake.account(SECRET_KEY).meterEvents.filter((e) => e.identifier === push.identifier)).toHaveLength(1)
    expect(t.fake.totals(SECRET_KEY, eventName).get(stripeId)).toBe(BigInt(push.value))
  })

  it(`when Stripe keeps failing, the push ends FAILED after ${MAX_ATTEMPTS} attempts, alerts, and retryStripePushes re-sends it under its own identifier`, async () => {
    const stripeId = await stripeIdOf('stuck')
    faultsFor(stripeId, 'always-stored-500')
    expectNoErrors(await t.gql(RECORD_BATCH, { events: [usage('k1', 'stuck', new Date(T0.getTime() + 30 * 60_000))] }))
    await pushUntilSettled('stuck')
    const failed = expectNoErrors(
      await t.gql(
        `{ stripePushes(status: FAILED, customerId: "stuck") { identifier status attempts gaveUp lastError retryOf } }`,
      ),
    ).stripePushes
    expect(failed).toEqual([
      {
        identifier: expect.any(String),
        status: 'FAILED',
        attempts: MAX_ATTEMPTS,
        gaveUp: true,
        lastError: expect.stringMatching(/^gave up after 4 attempts: 500/),
        retryOf: null,
      },
    ])
    const identifier = failed[0].identifier as string
    expect(meterCalls(stripeId)).toHaveLength(MAX_ATTEMPTS)
    const alerts = await t.database.db
      .selectFrom('webhook_events')
      .select(['type', 'payload'])
      .where('tenant_id', '=', t.tenant.id)
      .where('type', '=', 'stripe.push_failed')
      .execute()
    expect(alerts.map((a) => (a.payload as Record<string, unknown>).identifier)).toEqual([identifier])

    // Stripe is back. The retry keeps the identifier (Stripe may hold the event) and takes a new key.
    t.fake.fault = () => null
    const retried = expectNoErrors(
      await t.gql(
        `mutation ($ids: [String!]!) { retryStripePushes(identifiers: $ids) { identifier status attempts gaveUp retryOf } }`,
        { ids: [identifier] },
      ),
    )
    expect(retried.retryStripePushes).toEqual([
      { identifier, status: 'PENDING', attempts: 0, gaveUp: false, retryOf: null },
    ])
    await pushUntilSettled('stuck')
    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('identifier', '=', identifier)
      .executeTakeFirstOrThrow()
    expect(push.status).toBe('SENT')
    const last = meterCalls(stripeId).at(-1)!
    expect([last.status, last.params.identifier, last.headers['idempotency-key']]).toEqual([
      200,
      identifier,
      `${identifier}-m1`,
    ])
    expect(t.fake.totals(SECRET_KEY, eventName).get(stripeId)).toBe(BigInt(push.value))
  })
})

describe('Stripe webhook destinations: snapshot and thin, two secrets', () => {
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer(t.app, { ...t.app.services.config, PORT: 0 }, createLogger('silent'))
  })
  afterAll(async () => {
    await server?.close()
  })
  const post = (payload: string, header: string) =>
    fetch(`${server.url}/webhooks/stripe?tenant=${encodeURIComponent(t.tenant.id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': header },
      body: payload,
    })
  // Real Stripe signatures, made by the Stripe SDK.
  const sign = (payload: string, secret: string) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Math.floor(clock.now().getTime() / 1000) })

  it('stores both secrets and accepts an event signed by either destination, and nothing else', async () => {
    const account = expectNoErrors(
      await t.gql(
        `mutation ($input: StripeCredentialsInput!) { setStripeCredentials(input: $input) { webhookSecretSet thinWebhookSecretSet } }`,
        {
          input: { secretKey: SECRET_KEY, webhookSecret: SNAPSHOT_SECRET, thinWebhookSecret: THIN_SECRET },
        },
      ),
    )
    expect(account.setStripeCredentials).toEqual({ webhookSecretSet: true, thinWebhookSecretSet: true })
    const stored = await t.database.db
      .selectFrom('stripe_accounts')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .executeTakeFirstOrThrow()
    expect(stored.thin_webhook_secret_enc).not.toContain('thinDestination')

    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'stored')
      .executeTakeFirstOrThrow()
    const thin = JSON.stringify({
      id: 'evt_thin_dest_1',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
      related_object: { id: 'mtr_x', type: 'billing.meter' },
    })
    t.fake.addV2Event(SECRET_KEY, {
      id: 'evt_thin_dest_1',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
      data: {
        reason: {
          error_count: 1,
          error_types: [
            {
              code: 'meter_event_invalid_value',
              error_count: 1,
              sample_errors: [{ error_message: 'bad', request: { identifier: push.identifier } }],
            },
          ],
        },
      },
    })
    const snapshot = JSON.stringify({
      id: 'evt_snap_dest_1',
      object: 'event',
      type: 'invoice.finalized',
      created: 100,
      data: {
        object: {
          id: 'in_dest_1',
          object: 'invoice',
          customer: push.stripe_customer_id,
          status: 'open',
          currency: 'usd',
          total: 5,
        },
      },
    })

    expect((await post(thin, sign(thin, 'whsec_someOtherSecret0001'))).status).toBe(400)
    expect((await post(snapshot, sign(snapshot, 'whsec_someOtherSecret0001'))).status).toBe(400)
    expect((await post(thin, sign(thin, THIN_SECRET))).status).toBe(200)
    expect((await post(snapshot, sign(snapshot, SNAPSHOT_SECRET))).status).toBe(200)
    const after = await t.database.db
      .selectFrom('stripe_pushes')
      .select('status')
      .where('identifier', '=', push.identifier)
      .executeTakeFirstOrThrow()
    expect(after.status).toBe('FAILED')
    const invoices = expectNoErrors(
      await t.gql(`{ stripeInvoices(customerId: "stored") { id status } }`),
    ).stripeInvoices
    expect(invoices).toEqual([{ id: 'in_dest_1', status: 'open' }])

    // Clearing one secret leaves the other destination working.
    expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY, thinWebhookSecret: null } }))
    const again = JSON.stringify({
      id: 'evt_thin_dest_2',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
    })
    expect((await post(again, sign(again, THIN_SECRET))).status).toBe(400)
    const snapshot2 = JSON.stringify({
      id: 'evt_snap_dest_2',
      object: 'event',
      type: 'invoice.paid',
      created: 200,
      data: { object: { id: 'in_dest_1', object: 'invoice', customer: push.stripe_customer_id, status: 'paid' } },
    })
    expect((await post(snapshot2, sign(snapshot2, SNAPSHOT_SECRET))).status).toBe(200)
  })

  it('refuses a secret that is not whsec_… with the field at fault', async () => {
    const res = await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY, thinWebhookSecret: 'not-a-secret' } })
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.thinWebhookSecret' })
  })
})
