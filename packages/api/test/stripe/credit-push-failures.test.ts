import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import { toMinor } from '../../src/stripe/credit-push.ts'
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  RECORD_BATCH,
  SET_CREDENTIALS,
  SETUP,
  type StripeTestApp,
} from './stripe-support.ts'

/**
 * A credit grant call Stripe refuses, or that gives up after its attempts, is FAILED with Stripe's
 * reason (stripeCreditPushes), raises one stripe.credit_push_failed webhook event, and is retried by
 * retryStripeCreditPushes (audited): Stripe's invoice then applies the credits we applied, once.
 */
const SECRET_KEY = 'sk_test_creditFailures01'
const clock: Clock = { now: () => new Date() }

const PUSHES = `query ($s: StripeCreditPushStatus, $c: String, $f: Int) { stripeCreditPushes(status: $s, customerId: $c, first: $f) {
  identifier customerId kind category amountMinor status attempts lastError gaveUp manualRetries stripeObjectId } }`
const RETRY = `mutation ($ids: [String!]!) { retryStripeCreditPushes(identifiers: $ids) { identifier status manualRetries } }`
const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created } }`
const PREVIEW = `query ($c: String!) { invoicePreview(customerId: $c) { subtotal creditsApplied total } }`
const AUDIT = `query ($f: AuditLogFilter) { auditLog(filter: $f, first: 5) { edges { node { action entityType entityId before after } } } }`

let t: StripeTestApp
let stripe: Stripe
let receiver: WebhookReceiver
const stripeIds = new Map<string, string>()
let n = 0

beforeAll(async () => {
  t = await createStripeTestApp({ clock, config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: true } })
  receiver = await startWebhookReceiver()
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (const id of ['refused', 'lost'])
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  expectNoErrors(
    await t.gql(
      `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret } }`,
      {
        u: receiver.url,
        e: ['stripe.credit_push_failed'],
      },
    ),
  )
  const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  for (const c of await t.database.db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  stripe = new Stripe(SECRET_KEY, { host: t.fake.host, port: t.fake.port, protocol: 'http', telemetry: false })
  for (const id of stripeIds.values())
    await stripe.subscriptions.create({ customer: id, items: [{ price: account.price_id! }] })
}, 120_000)

afterAll(async () => {
  await receiver?.close()
  await t?.close()
})

async function useCredits(customerId: string) {
  expectNoErrors(await t.gql(GRANT, { i: { customerId, idempotencyKey: `${customerId}-grant`, amount: '50' } }))
  const events = [0, 1].map((i) => ({
    id: `${customerId}-${++n}`,
    customerId,
    model: 'gpt-4o',
    timestamp: new Date(Date.now() - 60_000 * (i + 1)).toISOString(),
    inputTokens: 120_000,
    outputTokens: 3_000,
  }))
  expect(expectNoErrors(await t.gql(RECORD_BATCH, { events })).recordUsageBatch.rejected).toBe(0)
}

/** Pusher rounds until nothing is due (a FAILED push is not due). */
async function drain(maxAttempts = 16) {
  const pusher = t.pusher({ maxAttempts })
  for (let round = 0; round < 200; round++) {
    await pusher.runOnce()
    const due = await t.database.db
      .selectFrom('stripe_credit_pushes')
      .select('identifier')
      .where('status', '=', 'PENDING')
      .execute()
    const dirty = await t.database.db
      .selectFrom('stripe_credit_state')
      .select('dirty')
      .where('dirty', '=', true)
      .execute()
    if (due.length + dirty.length === 0) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error('credit pushes did not settle')
}

const pushesOf = async (customerId: string, status?: string) =>
  expectNoErrors(await t.gql(PUSHES, { c: customerId, s: status ?? null })).stripeCreditPushes as Record<string, any>[]

const alerts = () =>
  t.database.db.selectFrom('webhook_events').selectAll().where('type', '=', 'stripe.credit_push_failed').execute()

async function expectInvoiceEqualsPreview(customerId: string) {
  const invoice = await stripe.invoices.createPreview({ customer: stripeIds.get(customerId)! })
  const preview = expectNoErrors(await t.gql(PREVIEW, { c: customerId })).invoicePreview
  const applied = (invoice.total_pretax_credit_amounts ?? []).reduce((s, c) => s + c.amount, 0)
  expect({ subtotal: invoice.subtotal, credits: applied, total: invoice.total }).toEqual({
    subtotal: Number(toMinor(preview.subtotal, '100')),
    credits: Number(toMinor(preview.creditsApplied, '100')),
    total: Number(toMinor(preview.total, '100')),
  })
  expect(applied).toBeGreaterThan(0)
}

describe('a credit grant Stripe refuses', () => {
  it('is FAILED with the reason, alerts once, and is retried by retryStripeCreditPushes', async () => {
    t.fake.fault = ({ path, method }) => (method === 'POST' && path === '/v1/billing/credit_grants' ? 'invalid' : null)
    await useCredits('refused')
    await drain()
    const [failed] = await pushesOf('refused', 'FAILED')
    expect(failed).toMatchObject({ kind: 'GRANT', category: 'PAID', status: 'FAILED', gaveUp: false })
    expect(failed!.lastError).toMatch(/^400 parameter_invalid_integer /)
    // More rounds: no second call, no second alert.
    t.fake.fault = () => null
    const calls = t.fake.requests.length
    await drain()
    expect(t.fake.requests.length).toBe(calls)
    const raised = await alerts()
    expect(raised).toHaveLength(1)
    expect(raised[0]!.payload).toMatchObject({
      identifier: failed!.identifier,
      kind: 'GRANT',
      customerId: 'refused',
      amountMinor: failed!.amountMinor,
      gaveUp: false,
    })

    const retried = expectNoErrors(await t.gql(RETRY, { ids: [failed!.identifier] })).retryStripeCreditPushes
    expect(retried).toEqual([{ identifier: failed!.identifier, status: 'SUPERSEDED', manualRetries: 0 }])
    await drain()
    const sent = await pushesOf('refused', 'SENT')
    expect(sent).toHaveLength(1)
    expect(sent[0]!.amountMinor).toBe(failed!.amountMinor)
    expect(sent[0]!.stripeObjectId).toMatch(/^credgr_/)
    await expectInvoiceEqualsPreview('refused')

    const audit = expectNoErrors(await t.gql(AUDIT, { f: { action: 'stripeCreditPush.retry' } })).auditLog.edges
    expect(audit[0].node).toMatchObject({ entityType: 'StripeCreditPush', entityId: failed!.identifier })
    expect(audit[0].node.before[0]).toMatchObject({ identifier: failed!.identifier, status: 'FAILED' })
    expect(audit[0].node.after[0]).toMatchObject({ identifier: failed!.identifier, status: 'SUPERSEDED' })

    // Only FAILED pushes of this tenant can be retried; nothing changes when one is not.
    for (const ids of [[failed!.identifier], [sent[0]!.identifier], ['brc_nope'], []]) {
      const refused = await t.gql(RETRY, { ids })
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'identifiers' })
      expect(refused.errors?.[0]?.message).toMatch(/identifiers? must/)
    }
    const bad = await t.gql(PUSHES, { f: 0 })
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' })
  })
})

describe('a credit grant whose attempts run out', () => {
  it('is FAILED (gave up), alerts, and its retry adopts the grant Stripe made for a lost answer', async () => {
    // The first call is processed but its answer is lost; every later credit grant call (the
    // look-up included) fails with a 500 until the attempts run out.
    let calls = 0
    t.fake.fault = ({ path }) =>
      path.startsWith('/v1/billing/credit_grants') ? (calls++ === 0 ? 'drop-after' : 'server-error') : null
    await useCredits('lost')
    await drain(3)
    const [failed] = await pushesOf('lost', 'FAILED')
    expect(failed).toMatchObject({ kind: 'GRANT', gaveUp: true, attempts: 3 })
    expect(failed!.lastError).toMatch(/^gave up after 3 attempts: 500/)
    expect(t.fake.account(SECRET_KEY).creditGrants.filter((g) => g.customer === stripeIds.get('lost'))).toHaveLength(1)
    expect((await alerts()).filter((a) => (a.payload as { customerId: string }).customerId === 'lost')).toHaveLength(1)

    t.fake.fault = () => null
    const retried = expectNoErrors(await t.gql(RETRY, { ids: [failed!.identifier] })).retryStripeCreditPushes
    expect(retried).toEqual([{ identifier: failed!.identifier, status: 'PENDING', manualRetries: 1 }])
    await drain()
    const [sent] = await pushesOf('lost', 'SENT')
    expect(sent).toMatchObject({ identifier: failed!.identifier, gaveUp: true })
    // Adopted, not made again: Stripe holds one grant of the customer.
    const grants = t.fake.account(SECRET_KEY).creditGrants.filter((g) => g.customer === stripeIds.get('lost'))
    expect(grants).toHaveLength(1)
    expect(sent!.stripeObjectId).toBe(grants[0]!.id)
    await expectInvoiceEqualsPreview('lost')
  })
})
