import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createStripeTestApp, expectNoErrors, SET_CREDENTIALS, type StripeTestApp } from '../stripe/stripe-support.ts'

// A Stripe Checkout Session paid for credits (metadata.burnrate_customer_id) becomes a PAID grant,
// exactly once per session, through the real Stripe webhook route and signature scheme.

const clock = fixedClock('2026-11-20T12:00:00Z')
const WEBHOOK_SECRET = 'whsec_testSecretForCredits'
let t: StripeTestApp
let server: RunningServer

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  expectNoErrors(
    await t.gql(SET_CREDENTIALS, { input: { secretKey: 'sk_test_burnrateCredits01', webhookSecret: WEBHOOK_SECRET } }),
  )
  server = await startServer(t.app, { ...t.app.services.config, PORT: 0 }, createLogger('silent'))
})
afterAll(async () => {
  await server?.close()
  await t?.close()
})

const post = (body: Record<string, unknown>) => {
  const payload = JSON.stringify(body)
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: WEBHOOK_SECRET,
    timestamp: Math.floor(clock.now().getTime() / 1000),
  })
  return fetch(`${server.url}/webhooks/stripe?tenant=${encodeURIComponent(t.tenant.id)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: payload,
  })
}

const session = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  object: 'checkout.session',
  amount_total: 2550,
  currency: 'usd',
  payment_status: 'paid',
  metadata: { burnrate_customer_id: 'c-checkout' },
  ...extra,
})
const checkoutEvent = (eventId: string, type: string, object: Record<string, unknown>) => ({
  id: eventId,
  object: 'event',
  type,
  created: Math.floor(clock.now().getTime() / 1000),
  data: { object },
})

const BALANCE = `query ($c: String!) { creditBalance(customerId: $c) { balance grants { amount category source status } } }`

describe('Stripe Checkout top-ups', () => {
  it('a paid session grants its amount once, whatever the redeliveries and events', async () => {
    expect((await post(checkoutEvent('evt_cs_1', 'checkout.session.completed', session('cs_1')))).status).toBe(200)
    // The same event again (Stripe retries), and another event for the same session.
    expect(await (await post(checkoutEvent('evt_cs_1', 'checkout.session.completed', session('cs_1')))).json()).toEqual(
      { received: true, duplicate: true },
    )
    expect(
      (await post(checkoutEvent('evt_cs_1b', 'checkout.session.async_payment_succeeded', session('cs_1')))).status,
    ).toBe(200)
    const b = expectNoErrors(await t.gql(BALANCE, { c: 'c-checkout' })).creditBalance
    expect(b).toEqual({
      balance: '25.5',
      grants: [{ amount: '25.5', category: 'PAID', source: 'STRIPE_CHECKOUT', status: 'ACTIVE' }],
    })
  })

  it('an asynchronous payment grants when it succeeds, not when the session completes unpaid', async () => {
    const unpaid = session('cs_2', { payment_status: 'unpaid', metadata: { burnrate_customer_id: 'c-async' } })
    expect((await post(checkoutEvent('evt_cs_2', 'checkout.session.completed', unpaid))).status).toBe(200)
    expect(expectNoErrors(await t.gql(BALANCE, { c: 'c-async' })).creditBalance.balance).toBe('0')
    const paid = { ...unpaid, payment_status: 'paid' }
    expect((await post(checkoutEvent('evt_cs_2b', 'checkout.session.async_payment_succeeded', paid))).status).toBe(200)
    expect(expectNoErrors(await t.gql(BALANCE, { c: 'c-async' })).creditBalance.balance).toBe('25.5')
  })

  it('sessions without the customer metadata, or in another currency, grant nothing and are not retried', async () => {
    const none = session('cs_3', { metadata: {} })
    expect((await post(checkoutEvent('evt_cs_3', 'checkout.session.completed', none))).status).toBe(200)
    const eur = session('cs_4', { currency: 'eur', metadata: { burnrate_customer_id: 'c-eur' } })
    expect((await post(checkoutEvent('evt_cs_4', 'checkout.session.completed', eur))).status).toBe(200)
    expect(expectNoErrors(await t.gql(BALANCE, { c: 'c-eur' })).creditBalance.grants).toEqual([])
  })
})
