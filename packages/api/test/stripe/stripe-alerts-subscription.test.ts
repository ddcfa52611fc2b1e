import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import { createLogger } from '../../src/logger.ts'
import { createBurnratePubSub } from '../../src/pubsub.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { observableEventTarget, sseSubscribe, wsSubscribe, openSubscriptions } from '../support/subscription-clients.ts'
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  GRANT,
  RECORD_BATCH,
  SET_CREDENTIALS,
  SETUP,
  type StripeTestApp,
} from './stripe-support.ts'

/**
 * The stripeAlerts subscription over both real transports: a credit grant Stripe refuses (the fake
 * Stripe's 'invalid' fault), a meter event it refuses and usage too old for it reach a tenant key
 * once each, after the transaction that raised them committed, with the fields of their webhook
 * event. A transaction that rolls back (here: the webhook event's insert fails) publishes nothing.
 */
const SECRET_KEY = 'sk_test_stripeAlertsLive01'
const HOUR = 3_600_000
// The app's clock, moved on past a lease when a test needs a push due again.
let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
const logger = createLogger('silent')
const target = observableEventTarget()

const SUB = `subscription ($c: String) { stripeAlerts(customerId: $c) {
  id type at identifier customerId stripeCustomerId reason
  windowStart windowEnd units model tokenType
  kind category periodStart amountMinor gaveUp } }`
const CREDIT_PUSHES = `query ($c: String) { stripeCreditPushes(customerId: $c) { identifier status attempts lastError } }`

/** The GraphQL enum value of each webhook type. */
const TYPE_OF: Record<string, string> = {
  'stripe.usage_expired': 'USAGE_EXPIRED',
  'stripe.push_failed': 'PUSH_FAILED',
  'stripe.credit_push_failed': 'CREDIT_PUSH_FAILED',
}
const METER_FIELDS = ['windowStart', 'windowEnd', 'units', 'model', 'tokenType'] as const
const CREDIT_FIELDS = ['kind', 'category', 'periodStart', 'amountMinor', 'gaveUp'] as const

let t: StripeTestApp
let server: RunningServer
let receiver: WebhookReceiver
let url: string
let otherTenant: { id: string; apiKey: string }
const stripeIds = new Map<string, string>()
let n = 0

const PREFIXES = ['sse', 'ws']
const customersOf = (p: string) => [`${p}-grant`, `${p}-meter`, `${p}-old`]

beforeAll(async () => {
  t = await createStripeTestApp({
    clock,
    pubsub: createBurnratePubSub(target),
    config: { WEBHOOK_ALLOW_PRIVATE_TARGETS: true },
  })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (const id of PREFIXES.flatMap(customersOf))
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  for (const c of await t.database.db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  // An endpoint for the three types, so each alert is also a stored webhook event to compare with.
  receiver = await startWebhookReceiver()
  expectNoErrors(
    await t.gql(
      `mutation ($u: String!, $e: [String!]!) { createWebhookEndpoint(url: $u, eventTypes: $e) { secret } }`,
      {
        u: receiver.url,
        e: Object.keys(TYPE_OF),
      },
    ),
  )
  const other = await t.app.services.tenants.create({ name: 'Other tenant' })
  otherTenant = { id: other.tenant.id, apiKey: other.apiKey }
  server = await startServer(t.app, { ...t.app.services.config, PORT: 0 }, logger)
  url = `${server.url}/graphql`
}, 120_000)

afterAll(async () => {
  await server?.close()
  await receiver?.close()
  await t?.close()
})

const usage = (customerId: string, at: Date) => ({
  id: `${customerId}-${++n}`,
  customerId,
  model: 'gpt-4o',
  timestamp: at.toISOString(),
  inputTokens: 120_000,
  outputTokens: 3_000,
})

async function record(...events: ReturnType<typeof usage>[]) {
  expect(expectNoErrors(await t.gql(RECORD_BATCH, { events })).recordUsageBatch.rejected).toBe(0)
}

/** The stored webhook event of this type and push: what the subscription must match. */
async function webhookEvent(type: string, identifier: string) {
  const rows = await t.database.db.selectFrom('webhook_events').selectAll().where('type', '=', type).execute()
  const found = rows.filter((r) => (r.payload as { identifier: string }).identifier === identifier)
  expect(found).toHaveLength(1)
  return found[0]!
}

/** The subscription's event for a webhook event: its type, created and data, field for field. */
function asAlert(row: {
  type: string
  dedupe_key: string
  created_at: unknown
  payload: unknown
}): Record<string, unknown> {
  const data = row.payload as Record<string, unknown>
  return {
    id: row.dedupe_key,
    type: TYPE_OF[row.type],
    at: new Date(row.created_at as string).toISOString(),
    ...Object.fromEntries([...METER_FIELDS, ...CREDIT_FIELDS].map((k) => [k, null])),
    ...data,
  }
}

/**
 * Makes every transaction that stores this type of webhook event fail at COMMIT (a deferred
 * constraint trigger), after everything in it ran, the alert's raise included: it rolls back.
 */
async function failCommitsOf(type: string | null) {
  const db = t.database.db
  if (type === null) {
    await sql`drop trigger refuse_webhook_event on webhook_events`.execute(db)
    return
  }
  await sql`create or replace function refuse_webhook_event() returns trigger language plpgsql as $$
    begin raise exception 'webhook event refused by the test'; end $$`.execute(db)
  await sql`create constraint trigger refuse_webhook_event after insert on webhook_events
    deferrable initially deferred for each row
    when (new.type = ${sql.lit(type)}) execute function refuse_webhook_event()`.execute(db)
}

type Subscribe = typeof sseSubscribe
const transports: [string, Subscribe, string][] = [
  ['GraphQL over SSE (graphql-sse client)', sseSubscribe, 'sse'],
  ['GraphQL over WebSocket (graphql-ws client)', wsSubscribe, 'ws'],
]

describe.each(transports)('%s', (_name, subscribe, p) => {
  const [grantCustomer, meterCustomer, oldCustomer] = customersOf(p) as [string, string, string]
  const { live, dispose } = openSubscriptions(subscribe)
  afterAll(async () => {
    t.fake.fault = () => null
    await dispose()
  })

  it('a refused credit grant alerts once, after its transaction committed; the rolled-back attempt publishes nothing', async () => {
    const all = live(url, t.tenant.apiKey, SUB)
    const one = live(url, t.tenant.apiKey, SUB, { c: oldCustomer })
    const other = live(url, otherTenant.apiKey, SUB)
    await target.established(`stripeAlert:${t.tenant.id}`, 2)
    await target.established(`stripeAlert:${otherTenant.id}`)

    // Stripe refuses the customer's credit grant; the transaction that records it FAILED and raises
    // its alert fails at COMMIT: the push stays PENDING, nothing is stored, nothing is published.
    t.fake.fault = ({ method, path, params }) =>
      method === 'POST' && path === '/v1/billing/credit_grants' && params.customer === stripeIds.get(grantCustomer)
        ? 'invalid'
        : null
    expectNoErrors(
      await t.gql(GRANT, { i: { customerId: grantCustomer, idempotencyKey: `${grantCustomer}-g`, amount: '50' } }),
    )
    await record(usage(grantCustomer, new Date(clock.now().getTime() - 60_000)))
    await failCommitsOf('stripe.credit_push_failed')
    try {
      await t.pusher().runOnce()
    } finally {
      await failCommitsOf(null)
    }
    const [attempted] = expectNoErrors(await t.gql(CREDIT_PUSHES, { c: grantCustomer })).stripeCreditPushes
    expect(attempted).toMatchObject({ status: 'PENDING', attempts: 1, lastError: null })
    const events = await t.database.db.selectFrom('webhook_events').select('payload').execute()
    expect(events.filter((e) => (e.payload as { identifier: string }).identifier === attempted.identifier)).toEqual([])

    // Due again once its attempt's lease has passed: refused again, and this time it commits.
    offset += 61_000
    expect(await t.pusher().runOnce()).toMatchObject({ failed: 1 })
    const [failed] = expectNoErrors(await t.gql(CREDIT_PUSHES, { c: grantCustomer })).stripeCreditPushes
    expect(failed).toMatchObject({ identifier: attempted.identifier, status: 'FAILED', attempts: 2 })
    const stored = await webhookEvent('stripe.credit_push_failed', failed.identifier)
    // The first event is the committed one (the rolled-back attempt, had it been published, would
    // have come first): every field of the webhook event, and nothing of a meter event.
    const alert = (await all.next()).data!.stripeAlerts
    expect(alert).toEqual(asAlert(stored))
    expect(alert).toMatchObject({
      type: 'CREDIT_PUSH_FAILED',
      identifier: failed.identifier,
      customerId: grantCustomer,
      stripeCustomerId: stripeIds.get(grantCustomer),
      kind: 'GRANT',
      category: 'PAID',
      gaveUp: false,
      windowStart: null,
      units: null,
    })
    expect(alert.reason).toMatch(/^400 parameter_invalid_integer /)
    expect(alert.amountMinor).toMatch(/^[1-9]\d*$/)
    expect(alert.at).toBe(new Date(stored.created_at as unknown as string).toISOString())

    // More rounds change nothing and publish nothing: the next event anyone gets is the next alert,
    // usage too old for Stripe, which the subscription narrowed to that customer gets too.
    t.fake.fault = () => null
    await t.pusher().runOnce()
    await record(usage(oldCustomer, new Date(clock.now().getTime() - 40 * 24 * HOUR)))
    expect(await t.pusher().runOnce()).toMatchObject({ expired: 1 })
    const [expired] = expectNoErrors(
      await t.gql(`query ($c: String) { stripePushes(customerId: $c, status: EXPIRED) { identifier lastError } }`, {
        c: oldCustomer,
      }),
    ).stripePushes
    const expiredAlert = asAlert(await webhookEvent('stripe.usage_expired', expired.identifier))
    expect((await all.next()).data!.stripeAlerts).toEqual(expiredAlert)
    expect((await one.next()).data!.stripeAlerts).toEqual(expiredAlert)
    expect(expiredAlert).toMatchObject({
      type: 'USAGE_EXPIRED',
      customerId: oldCustomer,
      reason: expired.lastError,
      kind: null,
      amountMinor: null,
      gaveUp: null,
    })
    expect(BigInt(expiredAlert.units as string) > 0n).toBe(true)
    expect([all, one, other].flatMap((s) => s.pending())).toEqual([])
  })

  it('a meter event Stripe refuses alerts once, with its window and units', async () => {
    const all = live(url, t.tenant.apiKey, SUB, { c: meterCustomer })
    await target.established(`stripeAlert:${t.tenant.id}`)
    t.fake.fault = ({ method, path, params }) =>
      method === 'POST' &&
      path === '/v1/billing/meter_events' &&
      (params.payload as Record<string, unknown> | undefined)?.stripe_customer_id === stripeIds.get(meterCustomer)
        ? 'invalid'
        : null
    await record(usage(meterCustomer, new Date(clock.now().getTime() - 2 * HOUR)))
    await t.pusher().runOnce()
    const [failed] = expectNoErrors(
      await t.gql(`query ($c: String) { stripePushes(customerId: $c, status: FAILED) { identifier value } }`, {
        c: meterCustomer,
      }),
    ).stripePushes
    const alert = (await all.next()).data!.stripeAlerts
    expect(alert).toEqual(asAlert(await webhookEvent('stripe.push_failed', failed.identifier)))
    expect(alert).toMatchObject({ type: 'PUSH_FAILED', identifier: failed.identifier, units: failed.value, kind: null })
    expect(new Date(alert.windowEnd).getTime() - new Date(alert.windowStart).getTime()).toBe(HOUR)
    expect(alert.reason).toMatch(/^Stripe refused the meter event: 400 parameter_invalid_integer /)
    t.fake.fault = () => null
  })

  it('is for tenant keys: a widget session is FORBIDDEN, an empty customerId BAD_USER_INPUT', async () => {
    const token = expectNoErrors(
      await t.gql(`mutation ($c: String!) { createWidgetSession(customerId: $c) { token } }`, { c: grantCustomer }),
    ).createWidgetSession.token
    const refusals: [string, Record<string, unknown> | undefined, Record<string, unknown>][] = [
      [token, undefined, { code: 'FORBIDDEN' }],
      [token, { c: grantCustomer }, { code: 'FORBIDDEN' }],
      [t.tenant.apiKey, { c: '' }, { code: 'BAD_USER_INPUT', field: 'customerId' }],
    ]
    for (const [key, variables, extensions] of refusals) {
      const s = live(url, key, SUB, variables)
      const first = await Promise.race([s.next(), s.ended.then((e) => ({ ended: e }))])
      const errors =
        'ended' in first
          ? (first.ended.error as { message: string; extensions?: Record<string, unknown> }[] | undefined)
          : first.errors
      expect(errors?.[0]?.extensions).toMatchObject(extensions)
      expect(errors?.[0]?.message).toEqual(expect.any(String))
    }
  })
})
