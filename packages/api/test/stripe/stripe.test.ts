import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Decimal } from '../../src/money/decimal.ts'
import { createSecretBox, parseStripeKey } from '../../src/stripe/crypto.ts'
import { queueForStripe } from '../../src/stripe/outbox.ts'
import { pushIdentifier } from '../../src/stripe/units.ts'
import { startServer, type RunningServer } from '../../src/server.ts'
import { createLogger } from '../../src/logger.ts'
import { fixedClock } from '../../src/clock.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  MASTER_KEY,
  RECORD_BATCH,
  SET_CREDENTIALS,
  SETUP,
  type StripeTestApp,
} from './stripe-support.ts'

const HOUR = 3_600_000
// A recent, hour-aligned start so every window is within Stripe's 35 days.
const T0 = new Date(Math.floor(Date.now() / HOUR) * HOUR - 3 * 24 * HOUR)
const clock = fixedClock(T0)
const SECRET_KEY = 'sk_test_burnrateFake0001'
const WEBHOOK_SECRET = 'whsec_testSecretForBurnrate'

let t: StripeTestApp

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
})
afterAll(async () => {
  await t?.close()
})

const event = (id: string, customerId: string, at: Date, inputTokens = 1234, outputTokens = 567) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: at.toISOString(),
  inputTokens,
  outputTokens,
})

describe('Stripe credentials', () => {
  it('refuses a key that is not a Stripe secret key', async () => {
    const res = await t.gql(SET_CREDENTIALS, { input: { secretKey: 'pk_test_nope' } })
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.secretKey' })
  })

  it('stores the key encrypted (AES-256-GCM bound to the tenant) and returns only a hint', async () => {
    const data = expectNoErrors(
      await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET } }),
    )
    expect(data.setStripeCredentials).toEqual({
      keyHint: 'sk_test_…0001',
      webhookSecretSet: true,
      mode: 'AMOUNT',
      currency: 'usd',
      unitsPerCurrencyUnit: '100000',
    })
    const row = await t.database.db
      .selectFrom('stripe_accounts')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .executeTakeFirstOrThrow()
    expect(row.secret_key_enc).not.toContain('burnrateFake')
    // Stamped with the app's clock, not the database's.
    expect(new Date(row.updated_at).toISOString()).toBe(clock.now().toISOString())
    const box = createSecretBox(parseStripeKey(MASTER_KEY))
    expect(box.open(row.secret_key_enc, t.tenant.id)).toBe(SECRET_KEY)
    // Copied to another tenant's row, the ciphertext does not decrypt.
    expect(() => box.open(row.secret_key_enc, 'another-tenant')).toThrow()
    const introspection = await t.gql(`{ __type(name: "StripeAccount") { fields { name } } }`)
    expect(JSON.stringify(introspection.data)).not.toMatch(/secret"/i)
  })
})

describe('setupStripeBilling', () => {
  it('creates a sum meter, a product and a metered price with exactly these parameters', async () => {
    const data = expectNoErrors(await t.gql(SETUP, {}))
    const account = data.setupStripeBilling.account
    expect(account.meterId).toMatch(/^mtr_/)
    expect(account.priceId).toMatch(/^price_/)
    const posts = t.fake.requests.filter((r) => r.method === 'POST')
    const meter = posts.find((r) => r.path === '/v1/billing/meters')!
    expect(meter.params).toEqual({
      display_name: 'Burnrate billed usage',
      event_name: account.eventName,
      default_aggregation: { formula: 'sum' },
      customer_mapping: { event_payload_key: 'stripe_customer_id', type: 'by_id' },
      value_settings: { event_payload_key: 'value' },
    })
    expect(meter.headers['idempotency-key']).toMatch(/^burnrate-[0-9a-f]{24}-meter-/)
    const price = posts.find((r) => r.path === '/v1/prices')!
    expect(price.params).toEqual({
      currency: 'usd',
      product: account.productId,
      billing_scheme: 'per_unit',
      unit_amount_decimal: '0.001',
      recurring: { interval: 'month', usage_type: 'metered', meter: account.meterId },
      nickname: 'Billed usage, 1 unit = 1/1000 of the minor unit of USD',
      metadata: { burnrate_tenant_id: t.tenant.id, burnrate_units_per_major: '100000' },
    })
    expect(posts.find((r) => r.path === '/v1/products')!.params).toEqual({
      name: 'AI usage',
      metadata: { burnrate_tenant_id: t.tenant.id },
    })
  })

  it('running it again creates nothing new', async () => {
    const before = t.fake.requests.filter((r) => r.method === 'POST').length
    const first = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
    const data = expectNoErrors(await t.gql(SETUP, {}))
    expect(data.setupStripeBilling.account.meterId).toBe(first.meter_id)
    expect(t.fake.requests.filter((r) => r.method === 'POST').length).toBe(before)
    const account = t.fake.account(SECRET_KEY)
    expect([account.meters.length, account.products.length, account.prices.length]).toEqual([1, 1, 1])
  })

  it('creates Stripe customers for customers without one, once', async () => {
    for (const id of ['alice', 'bob'])
      expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id} inc" }) { id } }`))
    expectNoErrors(
      await t.gql(`mutation { upsertCustomer(input: { id: "carol", stripeCustomerId: "cus_existing1" }) { id } }`),
    )
    const data = expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
    expect(data.setupStripeBilling.createdCustomers).toBe(2)
    const again = expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
    expect(again.setupStripeBilling.createdCustomers).toBe(0)
    const created = t.fake.requests.filter((r) => r.path === '/v1/customers')
    expect(created.map((r) => r.params)).toEqual([
      { name: 'alice inc', metadata: { burnrate_customer_id: 'alice', burnrate_tenant_id: t.tenant.id } },
      { name: 'bob inc', metadata: { burnrate_customer_id: 'bob', burnrate_tenant_id: t.tenant.id } },
    ])
  })

  it('refuses to change the mode once the meter exists', async () => {
    const res = await t.gql(SETUP, { input: { mode: 'ITEMIZED' } })
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.mode' })
  })
})

describe('pushing usage', () => {
  let aliceStripe: string

  it('sends each hourly delta as a meter event with a deterministic identifier and carries the residue', async () => {
    // A 30 % margin bills cost / 0.7: amounts with 18 decimals, never whole units.
    expectNoErrors(await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "30" }) { kind } }`))
    clock.set(new Date(T0.getTime() + 2 * 24 * HOUR))
    const events = [
      event('e1', 'alice', new Date(T0.getTime() + 10 * 60_000)),
      event('e2', 'alice', new Date(T0.getTime() + 20 * 60_000), 777, 3),
      event('e3', 'alice', new Date(T0.getTime() + HOUR + 5 * 60_000), 10, 1),
    ]
    expect(expectNoErrors(await t.gql(RECORD_BATCH, { events })).recordUsageBatch.recorded).toBe(3)
    const round = await t.pusher().runOnce()
    expect(round).toMatchObject({ sent: 2, failed: 0 })

    const alice = await t.database.db
      .selectFrom('customers')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .where('id', '=', 'alice')
      .executeTakeFirstOrThrow()
    aliceStripe = alice.stripe_customer_id!
    const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
    const sent = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events')
    const amounts = await t.database.db
      .selectFrom('usage_events')
      .select(['id', 'amount'])
      .where('customer_id', '=', 'alice')
      .orderBy('id')
      .execute()
    const firstWindow = new Decimal(amounts[0]!.amount!).plus(amounts[1]!.amount!).times(100_000)
    const firstUnits = firstWindow.floor()
    const secondUnits = firstWindow.minus(firstUnits).plus(new Decimal(amounts[2]!.amount!).times(100_000)).floor()
    expect(sent.map((r) => r.params)).toEqual([
      {
        event_name: account.event_name,
        identifier: pushIdentifier(t.tenant.id, 'alice', '', T0, 0),
        timestamp: String(T0.getTime() / 1000),
        payload: { stripe_customer_id: aliceStripe, value: firstUnits.toFixed() },
      },
      {
        event_name: account.event_name,
        identifier: pushIdentifier(t.tenant.id, 'alice', '', new Date(T0.getTime() + HOUR), 1),
        timestamp: String(T0.getTime() / 1000 + 3600),
        payload: { stripe_customer_id: aliceStripe, value: secondUnits.toFixed() },
      },
    ])
    expect(sent[0]!.headers['idempotency-key']).toBe(sent[0]!.params.identifier)
    // Σ values + residue = Σ amounts × 100,000, exactly.
    const state = await t.database.db
      .selectFrom('stripe_push_state')
      .selectAll()
      .where('customer_id', '=', 'alice')
      .executeTakeFirstOrThrow()
    const total = amounts.reduce((s, a) => s.plus(a.amount!), new Decimal(0))
    expect(firstUnits.plus(secondUnits).plus(new Decimal(state.residue).times(100_000)).eq(total.times(100_000))).toBe(
      true,
    )
    expect(new Decimal(state.residue).times(100_000).lt(1)).toBe(true)
  })

  it('sends a late event for an already pushed window as a new delta', async () => {
    expectNoErrors(
      await t.gql(RECORD_BATCH, {
        events: [event('late-1', 'alice', new Date(T0.getTime() + 30 * 60_000), 50_000, 2_000)],
      }),
    )
    const before = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events').length
    expect(await t.pusher().runOnce()).toMatchObject({ sent: 1 })
    const late = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events')[before]!
    expect(late.params.identifier).toBe(pushIdentifier(t.tenant.id, 'alice', '', T0, 2))
    expect(late.params.timestamp).toBe(String(T0.getTime() / 1000))
  })

  it('retries 429, 500, timeouts and dropped connections; a re-sent identifier Stripe already has counts once', async () => {
    const faults = ['rate-limit', 'server-error', 'drop', 'drop-after'] as const
    let n = 0
    t.fake.fault = ({ path }) => (path === '/v1/billing/meter_events' && n < faults.length ? faults[n++]! : null)
    expectNoErrors(
      await t.gql(RECORD_BATCH, { events: [event('r1', 'bob', new Date(T0.getTime() + 3 * HOUR), 90_000, 9_000)] }),
    )
    const pusher = t.pusher()
    for (let i = 0; i < 50; i++) {
      await pusher.runOnce()
      const pending = await t.database.db
        .selectFrom('stripe_pushes')
        .select('identifier')
        .where('status', '=', 'PENDING')
        .execute()
      if (pending.length === 0) break
      clock.advance(1_000) // past the backoff
    }
    t.fake.fault = () => null
    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'bob')
      .executeTakeFirstOrThrow()
    expect(push.status).toBe('SENT')
    const calls = t.fake.requests.filter((r) => r.params.identifier === push.identifier)
    expect(calls.map((r) => [r.fault, r.status])).toEqual([
      ['rate-limit', 429],
      ['server-error', 500],
      ['drop', 'dropped'],
      ['drop-after', 'dropped'],
      [null, 200],
    ])
    // The last one is Stripe's idempotent replay of the call whose answer was lost.
    expect(calls.every((r) => r.headers['idempotency-key'] === push.identifier)).toBe(true)
    const bobStripe = (
      await t.database.db
        .selectFrom('customers')
        .select('stripe_customer_id')
        .where('id', '=', 'bob')
        .executeTakeFirstOrThrow()
    ).stripe_customer_id!
    const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
    expect(t.fake.totals(SECRET_KEY, account.event_name!).get(bobStripe)).toBe(BigInt(push.value))
    expect(t.fake.account(SECRET_KEY).meterEvents.filter((e) => e.identifier === push.identifier)).toHaveLength(1)
  })

  it('sends a correction that lowers a bill as a negative delta, exactly', async () => {
    const before = await t.database.db
      .selectFrom('stripe_push_state')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .where('customer_id', '=', 'alice')
      .executeTakeFirstOrThrow()
    await t.database.db.transaction().execute((trx) =>
      queueForStripe(trx, t.tenant.id, [
        {
          key: 'e1#correction-1',
          customerId: 'alice',
          ts: new Date(T0.getTime() - 2 * HOUR),
          amount: '-0.0012345678901234567',
          lines: [{ usageType: 'input', amount: '-0.0012345678901234567' }],
          model: 'gpt-4o',
        },
      ]),
    )
    expect(await t.pusher().runOnce()).toMatchObject({ sent: 1 })
    const last = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events').at(-1)!
    const total = new Decimal(before.residue).plus('-0.0012345678901234567').times(100_000)
    expect((last.params.payload as Record<string, string>).value).toBe(total.floor().toFixed())
    const after = await t.database.db
      .selectFrom('stripe_push_state')
      .selectAll()
      .where('tenant_id', '=', t.tenant.id)
      .where('customer_id', '=', 'alice')
      .executeTakeFirstOrThrow()
    expect(new Decimal(after.residue).times(100_000).eq(total.minus(total.floor()))).toBe(true)
  })

  it('surfaces usage older than 35 days instead of sending it', async () => {
    expectNoErrors(
      await t.gql(RECORD_BATCH, {
        events: [event('old-1', 'alice', new Date(clock.now().getTime() - 40 * 24 * HOUR), 100_000, 100)],
      }),
    )
    const before = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events').length
    expect(await t.pusher().runOnce()).toMatchObject({ expired: 1, sent: 0 })
    expect(t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events').length).toBe(before)
    const data = expectNoErrors(await t.gql(`{ stripeExpiredUsage { customerId status value lastError } }`))
    expect(data.stripeExpiredUsage).toEqual([
      {
        customerId: 'alice',
        status: 'EXPIRED',
        value: expect.any(String),
        lastError: expect.stringContaining('35 days'),
      },
    ])
  })

  it('waits for customers without a Stripe customer id and reconciliation says so', async () => {
    expectNoErrors(await t.gql(RECORD_BATCH, { events: [event('d1', 'dave', new Date(T0.getTime() + 4 * HOUR))] }))
    expect(await t.pusher().runOnce()).toMatchObject({ sent: 0 })
    const from = T0.toISOString()
    const to = new Date(T0.getTime() + 24 * HOUR).toISOString()
    const data = expectNoErrors(
      await t.gql(
        `query ($from: DateTime!, $to: DateTime!) { stripeReconciliation(from: $from, to: $to) { customerId billedUnits reportedUnits stripeUnits unplannedUnits residueUnits differences } }`,
        { from, to },
      ),
    )
    const rows = data.stripeReconciliation as {
      customerId: string
      billedUnits: string
      reportedUnits: string
      stripeUnits: string | null
      residueUnits: string
      differences: string[]
    }[]
    const dave = rows.find((r) => r.customerId === 'dave')!
    expect(dave.differences.join(' ')).toMatch(/no stripeCustomerId/)
    const alice = rows.find((r) => r.customerId === 'alice')!
    expect(alice.stripeUnits).toBe(alice.reportedUnits)
    expect(new Decimal(alice.billedUnits).minus(alice.reportedUnits).minus(alice.residueUnits).abs().lt(1)).toBe(true)
    expect(alice.differences).toEqual([])
    const bob = rows.find((r) => r.customerId === 'bob')!
    expect(bob.stripeUnits).toBe(bob.reportedUnits)
  })

  it('refuses a reconciliation range that is not whole hours', async () => {
    const res = await t.gql(
      `{ stripeReconciliation(from: "2026-11-01T00:30:00Z", to: "2026-11-02T00:00:00Z") { customerId } }`,
    )
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'from' })
  })
})

describe('stripePushesPage', () => {
  const PAGE = `query ($after: String, $first: Int) { stripePushesPage(first: $first, after: $after) { edges { cursor node { identifier } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`

  it('pages every meter event once, newest first, and refuses a foreign cursor', async () => {
    const all = await t.database.db
      .selectFrom('stripe_pushes')
      .select('identifier')
      .where('tenant_id', '=', t.tenant.id)
      .orderBy('created_at', 'desc')
      .orderBy('identifier', 'desc')
      .execute()
    expect(all.length).toBeGreaterThan(2)
    const seen: string[] = []
    let after: string | null = null
    for (let pages = 0; pages < all.length; pages++) {
      const page: any = expectNoErrors(await t.gql(PAGE, { first: 2, after })).stripePushesPage
      expect(page.edges.length).toBeLessThanOrEqual(2)
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null)
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null)
      seen.push(...page.edges.map((e: any) => e.node.identifier))
      if (!page.pageInfo.hasNextPage) break
      after = page.pageInfo.endCursor
    }
    expect(seen).toEqual(all.map((p) => p.identifier))

    const deliveries = expectNoErrors(
      await t.gql(`{ webhookDeliveriesPage(first: 1) { pageInfo { endCursor } } }`),
    ).webhookDeliveriesPage
    const foreign =
      deliveries.pageInfo.endCursor ??
      Buffer.from(JSON.stringify(['webhookDeliveriesPage', T0.toISOString(), 'x'])).toString('base64url')
    const refused = await t.gql(PAGE, { first: 2, after: foreign })
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' })
    const zero = await t.gql(PAGE, { first: 0 })
    expect(zero.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' })
  })
})

describe('POST /webhooks/stripe', () => {
  let server: RunningServer
  beforeAll(async () => {
    server = await startServer(t.app, { ...t.app.services.config, PORT: 0 }, createLogger('silent'))
  })
  afterAll(async () => {
    await server?.close()
  })
  const post = (payload: string, header: string | null, tenant = t.tenant.id) =>
    fetch(`${server.url}/webhooks/stripe?tenant=${encodeURIComponent(tenant)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(header ? { 'stripe-signature': header } : {}) },
      body: payload,
    })
  const sign = (payload: string, at = clock.now(), secret = WEBHOOK_SECRET) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: Math.floor(at.getTime() / 1000) })

  it('refuses a missing, wrong or stale signature', async () => {
    const payload = JSON.stringify({
      id: 'evt_1',
      object: 'event',
      type: 'invoice.paid',
      created: 1,
      data: { object: {} },
    })
    expect((await post(payload, null)).status).toBe(400)
    expect((await post(payload, sign(payload, clock.now(), 'whsec_wrongSecretValue'))).status).toBe(400)
    expect((await post(payload, sign(payload, new Date(clock.now().getTime() - 301_000)))).status).toBe(400)
    expect((await post(payload + ' ', sign(payload))).status).toBe(400)
    expect((await post(payload, sign(payload, new Date(clock.now().getTime() + 301_000)))).status).toBe(400)
    expect((await post(payload, sign(payload), 'no-such-tenant')).status).toBe(400)
    expect((await post(payload, sign(payload, new Date(clock.now().getTime() - 299_000)))).status).toBe(200)
  })

  it('marks pushes named in a meter error report FAILED; retryStripePushes re-sends them under a new identifier', async () => {
    const sent = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'alice')
      .where('status', '=', 'SENT')
      .orderBy('seq')
      .executeTakeFirstOrThrow()
    const report = {
      id: 'evt_err_1',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
      data: {
        developer_message_summary: 'There is 1 invalid event',
        reason: {
          error_count: 1,
          error_types: [
            {
              code: 'meter_event_customer_not_found',
              error_count: 1,
              sample_errors: [{ error_message: 'customer not found', request: { identifier: sent.identifier } }],
            },
          ],
        },
        validation_start: clock.now().toISOString(),
        validation_end: clock.now().toISOString(),
      },
    }
    const payload = JSON.stringify(report)
    expect((await post(payload, sign(payload))).status).toBe(200)
    // Redelivery of the same event is a no-op.
    expect(await (await post(payload, sign(payload))).json()).toEqual({ received: true, duplicate: true })
    const failed = expectNoErrors(await t.gql(`{ stripePushes(status: FAILED) { identifier lastError } }`))
    expect(failed.stripePushes).toEqual([
      { identifier: sent.identifier, lastError: expect.stringContaining('meter_event_customer_not_found') },
    ])

    const retried = expectNoErrors(
      await t.gql(
        `mutation ($ids: [String!]!) { retryStripePushes(identifiers: $ids) { identifier status retryOf value } }`,
        { ids: [sent.identifier] },
      ),
    )
    const retry = retried.retryStripePushes[0]
    expect(retry).toMatchObject({ status: 'PENDING', retryOf: sent.identifier, value: String(sent.value) })
    expect(retry.identifier).not.toBe(sent.identifier)
    expect(await t.pusher().runOnce()).toMatchObject({ sent: 1 })
    const last = t.fake.requests.filter((r) => r.path === '/v1/billing/meter_events').at(-1)!
    expect(last.params.identifier).toBe(retry.identifier)
  })

  it('fetches a thin error report event from the API', async () => {
    const push = await t.database.db
      .selectFrom('stripe_pushes')
      .selectAll()
      .where('customer_id', '=', 'bob')
      .where('status', '=', 'SENT')
      .executeTakeFirstOrThrow()
    t.fake.addV2Event(SECRET_KEY, {
      id: 'evt_thin_1',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
      livemode: false,
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
    const payload = JSON.stringify({
      id: 'evt_thin_1',
      object: 'v2.core.event',
      type: 'v1.billing.meter.error_report_triggered',
      created: clock.now().toISOString(),
      related_object: { id: 'mtr_x', type: 'billing.meter' },
    })
    expect((await post(payload, sign(payload))).status).toBe(200)
    const after = await t.database.db
      .selectFrom('stripe_pushes')
      .select(['status', 'last_error'])
      .where('identifier', '=', push.identifier)
      .executeTakeFirstOrThrow()
    expect(after).toEqual({ status: 'FAILED', last_error: expect.stringContaining('meter_event_invalid_value') })
  })

  it('links invoices to customers and keeps the newest state', async () => {
    const alice = await t.database.db
      .selectFrom('customers')
      .select('stripe_customer_id')
      .where('id', '=', 'alice')
      .executeTakeFirstOrThrow()
    const invoiceEvent = (id: string, type: string, created: number, status: string) =>
      JSON.stringify({
        id,
        object: 'event',
        type,
        created,
        data: {
          object: {
            id: 'in_1',
            object: 'invoice',
            customer: alice.stripe_customer_id,
            status,
            currency: 'usd',
            total: 1234,
            period_start: 1_700_000_000,
            period_end: 1_702_592_000,
          },
        },
      })
    const paid = invoiceEvent('evt_inv_2', 'invoice.paid', 200, 'paid')
    const finalized = invoiceEvent('evt_inv_1', 'invoice.finalized', 100, 'open')
    expect((await post(paid, sign(paid))).status).toBe(200)
    expect((await post(finalized, sign(finalized))).status).toBe(200)
    const data = expectNoErrors(
      await t.gql(`{ stripeInvoices(customerId: "alice") { id customerId status total currency } }`),
    )
    expect(data.stripeInvoices).toEqual([
      { id: 'in_1', customerId: 'alice', status: 'paid', total: '1234', currency: 'usd' },
    ])
  })
})

describe('ITEMIZED mode', () => {
  it('creates a meter with model and token_type dimensions and splits each window by them, exactly', async () => {
    const other = await t.app.services.tenants.create({ name: 'Itemized' })
    const key = 'sk_test_itemizedTenant01'
    expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: key } }, other.apiKey))
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "ivan" }) { id } }`, {}, other.apiKey))
    const setup = expectNoErrors(
      await t.gql(SETUP, { input: { mode: 'ITEMIZED', createCustomers: true } }, other.apiKey),
    )
    expect(setup.setupStripeBilling.account.mode).toBe('ITEMIZED')
    const meter = t.fake.requests
      .filter((r) => r.path === '/v1/billing/meters' && r.headers.authorization === `Bearer ${key}`)
      .at(-1)!
    expect(meter.params).toMatchObject({
      display_name: 'Burnrate billed usage by model and token type',
      dimension_payload_keys: ['model', 'token_type'],
    })

    const at = new Date(clock.now().getTime() - 2 * HOUR)
    const events = [
      { ...event('i1', 'ivan', at, 2000, 300), cacheReadTokens: 1000 },
      { ...event('i2', 'ivan', new Date(at.getTime() + 60_000), 500, 50), model: 'gpt-4o-mini' },
    ]
    expectNoErrors(await t.gql(RECORD_BATCH, { events }, other.apiKey))
    await t.pusher().runOnce()
    const calls = t.fake.requests.filter(
      (r) => r.path === '/v1/billing/meter_events' && r.headers.authorization === `Bearer ${key}`,
    )
    const sent = calls.map((r) => r.params.payload as Record<string, string>)
    expect(sent.map((p) => `${p.model}|${p.token_type}`).sort()).toEqual([
      'gpt-4o-mini|input',
      'gpt-4o-mini|output',
      'gpt-4o|cache_read',
      'gpt-4o|input',
      'gpt-4o|output',
    ])
    // Per dimension: value + residue = that dimension's billed lines in units, exactly.
    const rows = await t.database.db
      .selectFrom('usage_events')
      .select(['canonical_model', 'lines'])
      .where('tenant_id', '=', other.tenant.id)
      .execute()
    const states = await t.database.db
      .selectFrom('stripe_push_state')
      .selectAll()
      .where('tenant_id', '=', other.tenant.id)
      .execute()
    for (const payload of sent) {
      const dimension = `${payload.model}|${payload.token_type}`
      const billed = rows
        .flatMap((r) => r.lines.filter((l) => `${r.canonical_model}|${l.usageType}` === dimension))
        .reduce((s, l) => s.plus(l.amount), new Decimal(0))
      const residue = new Decimal(states.find((st) => st.dimension === dimension)!.residue)
      expect(new Decimal(payload.value!).plus(residue.times(100_000)).eq(billed.times(100_000))).toBe(true)
    }
  })
})

describe('tenant isolation', () => {
  it("another tenant sees none of this tenant's Stripe data", async () => {
    const other = await t.app.services.tenants.create({ name: 'Other' })
    const data = expectNoErrors(
      await t.gql(
        `{ stripeAccount { keyHint } stripePushes { identifier } stripePushesPage { edges { node { identifier } } } stripeInvoices { id } }`,
        {},
        other.apiKey,
      ),
    )
    expect(data).toEqual({
      stripeAccount: null,
      stripePushes: [],
      stripePushesPage: { edges: [] },
      stripeInvoices: [],
    })
  })
})
