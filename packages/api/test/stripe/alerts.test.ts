import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createWebhookDispatcher } from '../../src/webhooks/dispatcher.ts'
import { verifySignature } from '../../src/webhooks/signing.ts'
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  RECORD_BATCH,
  SET_CREDENTIALS,
  SETUP,
  type StripeTestApp,
} from './stripe-support.ts'

/** Usage Stripe will not take (older than 35 days) and pushes it refused become tenant webhooks. */
const HOUR = 3_600_000
const T0 = new Date(Math.floor(Date.now() / HOUR) * HOUR - 2 * 24 * HOUR)
const clock = fixedClock(T0)
const SECRET_KEY = 'sk_test_stripeAlerts00001'
const WEBHOOK_SECRET = 'whsec_stripeAlertsSecret01'
const logger = createLogger('silent')

let t: StripeTestApp
let receiver: WebhookReceiver
let endpointSecret: string

const dispatch = () =>
  createWebhookDispatcher({
    db: t.database.db,
    clock,
    logger,
    options: {
      timeoutMs: 3_000,
      backoffBaseMs: 60_000,
      pollIntervalMs: 50,
      random: () => 0.5,
      allowPrivateTargets: true,
    },
  }).runOnce()

const event = (id: string, customerId: string, at: Date) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: at.toISOString(),
  inputTokens: 100_000,
  outputTokens: 2_000,
})

beforeAll(async () => {
  // The receiver is local: private targets are allowed here.
  t = await createStripeTestApp({ clock, config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: true, WEBHOOK_MAX_ATTEMPTS: 4 } })
  receiver = await startWebhookReceiver()
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET } }))
  expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "olga", name: "Olga" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  const created = expectNoErrors(
    await t.gql(
      `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret endpoint { eventTypes } } }`,
      {
        u: receiver.url,
        e: ['stripe.usage_expired', 'stripe.push_failed'],
      },
    ),
  )
  expect(created.createWebhookEndpoint.endpoint.eventTypes).toEqual(['stripe.usage_expired', 'stripe.push_failed'])
  endpointSecret = created.createWebhookEndpoint.secret
})

afterAll(async () => {
  await receiver?.close()
  await t?.close()
})

interface Body {
  id: string
  type: string
  data: Record<string, unknown>
}

describe('Stripe alerts as tenant webhooks', () => {
  it('40-day-old usage: an EXPIRED push, listed by stripeExpiredUsage, and a signed stripe.usage_expired delivery', async () => {
    const old = new Date(clock.now().getTime() - 40 * 24 * HOUR)
    expectNoErrors(await t.gql(RECORD_BATCH, { events: [event('old-1', 'olga', old)] }))
    const round = await t.app.services.stripePusher.runOnce()
    expect(round).toMatchObject({ expired: 1, sent: 0 })
    const expired = expectNoErrors(
      await t.gql(
        `{ stripeExpiredUsage { identifier customerId stripeCustomerId windowStart value status lastError } }`,
      ),
    ).stripeExpiredUsage
    expect(expired).toHaveLength(1)
    const push = expired[0]

    expect(await dispatch()).toBe(1)
    expect(receiver.received).toHaveLength(1)
    const delivery = receiver.received[0]!
    expect(
      verifySignature(
        endpointSecret,
        delivery.body,
        String(delivery.headers['burnrate-signature']),
        Math.floor(clock.now().getTime() / 1000),
      ),
    ).toBe(true)
    expect(delivery.headers['burnrate-event-type']).toBe('stripe.usage_expired')
    const body = JSON.parse(delivery.body) as Body
    expect(body.type).toBe('stripe.usage_expired')
    expect(body.data).toEqual({
      identifier: push.identifier,
      customerId: 'olga',
      stripeCustomerId: push.stripeCustomerId,
      windowStart: push.windowStart,
      windowEnd: new Date(new Date(push.windowStart).getTime() + HOUR).toISOString(),
      units: push.value,
      reason: push.lastError,
    })
    expect(BigInt(push.value) > 0n).toBe(true)

    // Nothing new to plan: no second alert.
    await t.app.services.stripePusher.runOnce()
    expect(await dispatch()).toBe(0)
    const deliveries = expectNoErrors(
      await t.gql(`{ webhookDeliveries { eventType status attempts } }`),
    ).webhookDeliveries
    expect(deliveries).toEqual([{ eventType: 'stripe.usage_expired', status: 'SUCCEEDED', attempts: 1 }])
  })

  it('a meter event Stripe refuses: a FAILED push and a stripe.push_failed delivery', async () => {
    let refused = false
    t.fake.fault = ({ path }) =>
      path === '/v1/billing/meter_events' && !refused ? ((refused = true), 'invalid') : null
    expectNoErrors(
      await t.gql(RECORD_BATCH, { events: [event('new-1', 'olga', new Date(clock.now().getTime() - 2 * HOUR))] }),
    )
    expect(await t.app.services.stripePusher.runOnce()).toMatchObject({ failed: 1, sent: 0 })
    t.fake.fault = () => null
    const failed = expectNoErrors(
      await t.gql(`{ stripePushes(status: FAILED) { identifier value lastError } }`),
    ).stripePushes
    expect(failed).toHaveLength(1)
    expect(await dispatch()).toBe(1)
    const body = JSON.parse(receiver.received.at(-1)!.body) as Body
    expect(body.type).toBe('stripe.push_failed')
    expect(body.data).toMatchObject({
      identifier: failed[0].identifier,
      customerId: 'olga',
      units: failed[0].value,
      reason: expect.stringContaining('400 parameter_invalid_integer'),
    })
  })

  it('a meter error report from the Stripe webhook: FAILED and alerted once, even when redelivered', async () => {
    const pushes = expectNoErrors(await t.gql(`{ stripePushes(status: FAILED) { identifier } }`)).stripePushes
    const retried = expectNoErrors(
      await t.gql(`mutation ($ids: [String!]!) { retryStripePushes(identifiers: $ids) { identifier } }`, {
        ids: [pushes[0].identifier],
      }),
    ).retryStripePushes
    expect(await t.app.services.stripePusher.runOnce()).toMatchObject({ sent: 1 })
    const server: RunningServer = await startServer(t.app, { ...t.app.services.config, PORT: 0 }, logger)
    try {
      const report = JSON.stringify({
        id: 'evt_err_alert',
        object: 'v2.core.event',
        type: 'v1.billing.meter.error_report_triggered',
        created: clock.now().toISOString(),
        data: {
          reason: {
            error_count: 1,
            error_types: [
              {
                code: 'meter_event_customer_not_found',
                error_count: 1,
                sample_errors: [{ error_message: 'no such customer', request: { identifier: retried[0].identifier } }],
              },
            ],
          },
        },
      })
      const post = () =>
        fetch(`${server.url}/webhooks/stripe?tenant=${encodeURIComponent(t.tenant.id)}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'stripe-signature': Stripe.webhooks.generateTestHeaderString({
              payload: report,
              secret: WEBHOOK_SECRET,
              timestamp: Math.floor(clock.now().getTime() / 1000),
            }),
          },
          body: report,
        })
      expect((await post()).status).toBe(200)
      expect((await post()).status).toBe(200)
    } finally {
      await server.close()
    }
    expect(await dispatch()).toBe(1)
    expect(await dispatch()).toBe(0)
    const body = JSON.parse(receiver.received.at(-1)!.body) as Body
    expect(body.type).toBe('stripe.push_failed')
    expect(body.data).toMatchObject({
      identifier: retried[0].identifier,
      reason: expect.stringContaining('meter_event_customer_not_found'),
    })
  })
})
