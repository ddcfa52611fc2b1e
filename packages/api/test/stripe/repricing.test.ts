import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixedClock } from '../../src/clock.ts'
import { Decimal } from '../../src/money/decimal.ts'
import { queueForStripe } from '../../src/stripe/outbox.ts'
import { pushIdentifier, STRIPE_MAX_AGE_MS } from '../../src/stripe/units.ts'
import {
  createStripeTestApp,
  expectNoErrors,
  RECORD_BATCH,
  SET_CREDENTIALS,
  type StripeTestApp,
} from './stripe-support.ts'

/**
 * Re-priced and late-priced amounts reach Stripe exactly (corrections that lower a bill go out as
 * negative meter event values), and usage recorded before setupStripeBilling is backfilled.
 */
const HOUR = 3_600_000
const T0 = new Date(Math.floor(Date.now() / HOUR) * HOUR - 3 * 24 * HOUR)
const clock = fixedClock(T0)
const PER_MAJOR = 100_000

const SETUP = `mutation ($input: StripeSetupInput) { setupStripeBilling(input: $input) { createdCustomers backfilledEvents backfilledCorrections backfillFrom account { mode eventName } } }`
const SUMMARY = `query ($c: String!, $from: DateTime!, $to: DateTime!) { usageSummary(customerId: $c, from: $from, to: $to) { amount } }`
const OVERRIDE = `mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`
const REPRICE = `mutation ($from: DateTime!, $to: DateTime!, $model: String!) { repriceUsage(from: $from, to: $to, model: $model, reason: "test") { corrected amountDelta } }`
const RECONCILE = `query ($from: DateTime!, $to: DateTime!) { stripeReconciliation(from: $from, to: $to) { customerId ledgerAmount billedAmount billedUnits reportedUnits stripeUnits residueUnits differences } }`

let t: StripeTestApp

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
})
afterAll(async () => {
  await t?.close()
})

const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)
const iso = (d: Date) => d.toISOString()
const gptEvent = (id: string, customerId: string, ts: Date, inputTokens: number, outputTokens: number) => ({
  id,
  customerId,
  model: 'gpt-4o',
  timestamp: iso(ts),
  inputTokens,
  outputTokens,
})

interface Tenant {
  apiKey: string
  id: string
  secretKey: string
}

async function newTenant(name: string, secretKey: string, customers: string[]): Promise<Tenant> {
  const created = await t.app.services.tenants.create({ name })
  const tenant = { apiKey: created.apiKey, id: created.tenant.id, secretKey }
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey } }, tenant.apiKey))
  for (const id of customers)
    expectNoErrors(
      await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id}" }) { id } }`, {}, tenant.apiKey),
    )
  // A 30 % margin: amounts with 18 decimals, never whole units, so residues are always in play.
  clock.set(new Date(T0.getTime() - 24 * HOUR))
  expectNoErrors(
    await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "30" }) { kind } }`, {}, tenant.apiKey),
  )
  clock.set(new Date(T0.getTime() + 2 * 24 * HOUR))
  return tenant
}

/** Runs the pusher until nothing is pending or left to plan. */
async function pushAll() {
  const pusher = t.pusher()
  for (let i = 0; i < 20; i++) {
    const round = await pusher.runOnce()
    if (round.groups === 0) return
  }
  throw new Error('pusher did not settle')
}

/** Meter event values sent for a tenant (by its key), in order. */
function sentValues(tenant: Tenant): string[] {
  return t.fake.requests
    .filter(
      (r) =>
        r.path === '/v1/billing/meter_events' &&
        r.status === 200 &&
        r.headers.authorization === `Bearer ${tenant.secretKey}`,
    )
    .map((r) => (r.params.payload as Record<string, string>).value!)
}

/**
 * For each customer: what Stripe holds (Σ accepted meter event values) + the residue carried
 * forward (all dimensions) = our billed total (usageSummary, corrections included) × units, exactly.
 */
async function expectStripeMatchesBilled(tenant: Tenant, customers: string[], from: Date, to: Date) {
  const account = await t.database.db
    .selectFrom('stripe_accounts')
    .selectAll()
    .where('tenant_id', '=', tenant.id)
    .executeTakeFirstOrThrow()
  const totals = t.fake.totals(tenant.secretKey, account.event_name!)
  for (const customerId of customers) {
    const summary = expectNoErrors(
      await t.gql(SUMMARY, { c: customerId, from: iso(from), to: iso(to) }, tenant.apiKey),
    ).usageSummary
    const customer = await t.database.db
      .selectFrom('customers')
      .select('stripe_customer_id')
      .where('tenant_id', '=', tenant.id)
      .where('id', '=', customerId)
      .executeTakeFirstOrThrow()
    const states = await t.database.db
      .selectFrom('stripe_push_state')
      .select('residue')
      .where('tenant_id', '=', tenant.id)
      .where('customer_id', '=', customerId)
      .execute()
    const residue = states.reduce((sum, s) => sum.plus(s.residue), new Decimal(0))
    const stripeUnits = new Decimal(String(totals.get(customer.stripe_customer_id!) ?? 0n))
    const billedUnits = new Decimal(summary.amount).times(PER_MAJOR)
    expect({ customerId, units: stripeUnits.toFixed() }).toEqual({
      customerId,
      units: billedUnits.minus(residue.times(PER_MAJOR)).toFixed(),
    })
    // The residue is below one unit per dimension, never negative.
    for (const s of states)
      expect(new Decimal(s.residue).times(PER_MAJOR).gte(0) && new Decimal(s.residue).times(PER_MAJOR).lt(1)).toBe(true)
  }
}

/** The meter event identifier as the README documents it, e.g. `br_<YYYYMMDDHH>_<seq>_<hash>`. */
function documentedIdentifier(): RegExp {
  const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8')
  const template = /`(br_<YYYYMMDDHH>_<seq>_<hash>)`/.exec(readme)?.[1]
  expect(template, 'README documents the meter event identifier').toBeDefined()
  return new RegExp(
    `^${template!.replace('<YYYYMMDDHH>', '\\d{10}').replace('<seq>', '\\d+').replace('<hash>', '[0-9a-f]{32}')}$`,
  )
}

/**
 * What goes out for corrections in each mode, as the README says: the outbox holds each correction
 * under `<event id>#correction-<id>`, and it reaches Stripe inside the meter event of its window,
 * whose identifier is pushIdentifier(tenant, customer, dimension, window, seq): per customer in
 * AMOUNT mode, per customer and model|token type in ITEMIZED mode. No outbox key is ever sent.
 */
async function expectCorrectionIdentifiers(tenant: Tenant, mode: 'AMOUNT' | 'ITEMIZED') {
  const documented = documentedIdentifier()
  const rows = await t.database.db
    .selectFrom('stripe_outbox as o')
    .innerJoin('stripe_pushes as p', 'p.identifier', 'o.push_identifier')
    .select([
      'o.event_id',
      'o.customer_id',
      'o.dimension',
      'p.identifier',
      'p.window_start',
      'p.seq',
      'p.dimension as push_dimension',
    ])
    .where('o.tenant_id', '=', tenant.id)
    .where('o.event_id', 'like', '%#correction-%')
    .execute()
  expect(rows.length).toBeGreaterThan(0)
  const sent = new Map(
    t.fake.requests
      .filter(
        (r) =>
          r.path === '/v1/billing/meter_events' &&
          r.status === 200 &&
          r.headers.authorization === `Bearer ${tenant.secretKey}`,
      )
      .map((r) => [r.params.identifier as string, r]),
  )
  for (const row of rows) {
    expect(row.event_id).toMatch(/^[^#]+#correction-\d+$/)
    expect(row.push_dimension).toBe(row.dimension)
    expect(row.identifier).toBe(
      pushIdentifier(tenant.id, row.customer_id, row.dimension, new Date(row.window_start), row.seq),
    )
    expect(row.identifier).toMatch(documented)
    const payload = sent.get(row.identifier)?.params.payload as Record<string, string> | undefined
    expect(payload, `${row.event_id} went out as ${row.identifier}`).toBeDefined()
    if (mode === 'AMOUNT') {
      expect(row.dimension).toBe('')
      expect(Object.keys(payload!).sort()).toEqual(['stripe_customer_id', 'value'])
    } else {
      expect(`${payload!.model}|${payload!.token_type}`).toBe(row.dimension)
    }
  }
  for (const identifier of sent.keys()) expect(identifier).toMatch(documented)
}

async function expectReconciled(tenant: Tenant, from: Date, to: Date, customers: string[]) {
  const rows = expectNoErrors(await t.gql(RECONCILE, { from: iso(from), to: iso(to) }, tenant.apiKey))
    .stripeReconciliation as {
    customerId: string
    ledgerAmount: string
    billedAmount: string
    reportedUnits: string
    stripeUnits: string
    differences: string[]
  }[]
  expect(rows.map((r) => r.customerId).sort()).toEqual([...customers].sort())
  for (const row of rows) {
    expect({ customerId: row.customerId, differences: row.differences }).toEqual({
      customerId: row.customerId,
      differences: [],
    })
    expect(row.ledgerAmount).toBe(row.billedAmount)
    expect(row.stripeUnits).toBe(row.reportedUnits)
  }
}

describe('re-pricing reaches Stripe exactly (AMOUNT mode)', () => {
  let tenant: Tenant
  const customers = ['alice', 'bob']
  const from = T0
  const to = new Date(T0.getTime() + 3 * HOUR)

  it('pushes the original usage', async () => {
    tenant = await newTenant('Repricing amount', 'sk_test_repricingAmount01', customers)
    expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }, tenant.apiKey))
    const events = [
      gptEvent('a1', 'alice', at(10), 12_345, 678),
      gptEvent('a2', 'alice', at(70), 2_001, 3_003),
      gptEvent('b1', 'bob', at(15), 45_678, 91),
      gptEvent('b2', 'bob', at(130), 7, 1),
    ]
    expect(expectNoErrors(await t.gql(RECORD_BATCH, { events }, tenant.apiKey)).recordUsageBatch.recorded).toBe(4)
    await pushAll()
    await expectStripeMatchesBilled(tenant, customers, from, to)
  })

  it('a correction that lowers the bill goes out as negative meter event values, exactly', async () => {
    const before = sentValues(tenant).length
    clock.advance(60_000)
    expectNoErrors(
      await t.gql(
        OVERRIDE,
        {
          i: {
            provider: 'openai',
            model: 'gpt-4o',
            usageType: 'input',
            unitPrice: '0.0000013',
            effectiveFrom: iso(T0),
          },
        },
        tenant.apiKey,
      ),
    )
    const corrected = expectNoErrors(
      await t.gql(REPRICE, { from: iso(from), to: iso(to), model: 'gpt-4o' }, tenant.apiKey),
    ).repriceUsage
    expect(corrected.corrected).toBe(4)
    expect(new Decimal(corrected.amountDelta).lt(0)).toBe(true)
    await pushAll()
    const sent = sentValues(tenant).slice(before)
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.some((v) => v.startsWith('-'))).toBe(true)
    await expectStripeMatchesBilled(tenant, customers, from, to)
    await expectReconciled(tenant, from, to, customers)
    await expectCorrectionIdentifiers(tenant, 'AMOUNT')
  })

  it('a correction that raises the bill goes out as positive deltas, exactly', async () => {
    const before = sentValues(tenant).length
    clock.advance(60_000)
    expectNoErrors(
      await t.gql(
        OVERRIDE,
        {
          i: {
            provider: 'openai',
            model: 'gpt-4o',
            usageType: 'input',
            unitPrice: '0.0000037',
            effectiveFrom: iso(T0),
          },
        },
        tenant.apiKey,
      ),
    )
    const corrected = expectNoErrors(
      await t.gql(REPRICE, { from: iso(from), to: iso(to), model: 'gpt-4o' }, tenant.apiKey),
    ).repriceUsage
    expect(corrected.corrected).toBe(4)
    expect(new Decimal(corrected.amountDelta).gt(0)).toBe(true)
    await pushAll()
    const sent = sentValues(tenant).slice(before)
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.every((v) => !v.startsWith('-'))).toBe(true)
    await expectStripeMatchesBilled(tenant, customers, from, to)
    await expectReconciled(tenant, from, to, customers)
  })

  it('an UNPRICED event is sent once a price for it arrives (late pricing through catalog.onApplied)', async () => {
    const carol = [...customers, 'carol']
    expectNoErrors(
      await t.gql(
        `mutation { upsertCustomer(input: { id: "carol", stripeCustomerId: "cus_carolRepricing" }) { id } }`,
        {},
        tenant.apiKey,
      ),
    )
    const stored = expectNoErrors(
      await t.gql(
        RECORD_BATCH,
        {
          events: [
            {
              id: 'u1',
              customerId: 'carol',
              model: 'rocket-9',
              provider: 'acme',
              timestamp: iso(at(40)),
              inputTokens: 3_333,
              outputTokens: 77,
            },
          ],
        },
        tenant.apiKey,
      ),
    )
    expect(stored.recordUsageBatch.recorded).toBe(1)
    await pushAll()
    expect(
      await t.database.db
        .selectFrom('stripe_outbox')
        .select('event_id')
        .where('tenant_id', '=', tenant.id)
        .where('customer_id', '=', 'carol')
        .execute(),
    ).toEqual([])

    const document = `overrides:\n${[
      ['input', '0.0000011'],
      ['output', '0.0000031'],
    ]
      .map(
        ([usageType, price]) =>
          `  - { tenant: ${tenant.id}, provider: acme, model: rocket-9, usageType: ${usageType}, unitPrice: "${price}", effectiveFrom: "${iso(new Date(T0.getTime() - 24 * HOUR))}" }`,
      )
      .join('\n')}`
    expectNoErrors(
      await t.gql(
        `mutation ($d: String!) { importPriceOverrides(document: $d) { rowsOpened } }`,
        { d: document },
        tenant.apiKey,
      ),
    )
    const outbox = await t.database.db
      .selectFrom('stripe_outbox')
      .select(['event_id', 'amount'])
      .where('tenant_id', '=', tenant.id)
      .where('customer_id', '=', 'carol')
      .execute()
    expect(outbox.map((o) => o.event_id)).toEqual(['u1'])
    await pushAll()
    await expectStripeMatchesBilled(tenant, carol, from, to)
    await expectReconciled(tenant, from, to, carol)
  })
})

describe('re-pricing reaches Stripe exactly (ITEMIZED mode)', () => {
  it('sends per-dimension deltas, negative where a correction lowered that dimension', async () => {
    const tenant = await newTenant('Repricing itemized', 'sk_test_repricingItemized1', ['ivan', 'iris'])
    expectNoErrors(await t.gql(SETUP, { input: { mode: 'ITEMIZED', createCustomers: true } }, tenant.apiKey))
    const events = [
      { ...gptEvent('i1', 'ivan', at(5), 20_000, 3_000), cacheReadTokens: 1_000 },
      { ...gptEvent('i2', 'ivan', at(65), 500, 50), model: 'gpt-4o-mini' },
      gptEvent('i3', 'iris', at(25), 9_999, 999),
    ]
    expectNoErrors(await t.gql(RECORD_BATCH, { events }, tenant.apiKey))
    await pushAll()
    const from = T0
    const to = new Date(T0.getTime() + 2 * HOUR)
    await expectStripeMatchesBilled(tenant, ['ivan', 'iris'], from, to)

    const calls = () =>
      t.fake.requests.filter(
        (r) =>
          r.path === '/v1/billing/meter_events' &&
          r.status === 200 &&
          r.headers.authorization === `Bearer ${tenant.secretKey}`,
      )
    const before = calls().length
    clock.advance(60_000)
    expectNoErrors(
      await t.gql(
        OVERRIDE,
        {
          i: {
            provider: 'openai',
            model: 'gpt-4o',
            usageType: 'input',
            unitPrice: '0.0000017',
            effectiveFrom: iso(T0),
          },
        },
        tenant.apiKey,
      ),
    )
    expect(
      expectNoErrors(await t.gql(REPRICE, { from: iso(from), to: iso(to), model: 'gpt-4o' }, tenant.apiKey))
        .repriceUsage.corrected,
    ).toBe(2)
    await pushAll()
    const corrections = calls()
      .slice(before)
      .map((r) => r.params.payload as Record<string, string>)
    // Only the input line of gpt-4o moved: every delta is on that dimension, and it is negative.
    expect(corrections.length).toBeGreaterThan(0)
    for (const p of corrections) {
      expect(`${p.model}|${p.token_type}`).toBe('gpt-4o|input')
      expect(Number(p.value)).toBeLessThanOrEqual(0)
    }
    await expectStripeMatchesBilled(tenant, ['ivan', 'iris'], from, to)
    await expectReconciled(tenant, from, to, ['ivan', 'iris'])
    await expectCorrectionIdentifiers(tenant, 'ITEMIZED')
  })
})

describe('usage recorded before setupStripeBilling is backfilled', () => {
  let tenant: Tenant
  const customers = ['dora', 'dan']
  const old = () => new Date(clock.now().getTime() - 40 * 24 * HOUR)

  it('queues priced events and corrections from the start of Stripe’s window; older usage stays in the ledger and reconciliation says why', async () => {
    tenant = await newTenant('Backfill', 'sk_test_backfillTenant001', customers)
    const events = [
      gptEvent('d1', 'dora', at(3), 11_111, 222),
      gptEvent('d2', 'dora', at(100), 3_456, 789),
      gptEvent('n1', 'dan', at(50), 98_765, 4_321),
      gptEvent('n2', 'dan', at(51), 1, 1),
      {
        id: 'd-unpriced',
        customerId: 'dora',
        model: 'mystery-1',
        provider: 'nowhere',
        timestamp: iso(at(20)),
        inputTokens: 10,
      },
    ]
    expect(expectNoErrors(await t.gql(RECORD_BATCH, { events }, tenant.apiKey)).recordUsageBatch.recorded).toBe(5)
    // 40 days old: before the backfill horizon.
    const oldTs = new Date(old().getTime() + 30 * 60_000)
    expectNoErrors(
      await t.gql(RECORD_BATCH, { events: [gptEvent('d-old', 'dora', oldTs, 50_000, 5_000)] }, tenant.apiKey),
    )
    // A correction before Stripe billing exists: nothing is queued for it yet.
    clock.advance(60_000)
    expectNoErrors(
      await t.gql(
        OVERRIDE,
        {
          i: {
            provider: 'openai',
            model: 'gpt-4o',
            usageType: 'output',
            unitPrice: '0.0000091',
            effectiveFrom: iso(T0),
          },
        },
        tenant.apiKey,
      ),
    )
    expect(
      expectNoErrors(await t.gql(REPRICE, { from: iso(T0), to: iso(at(180)), model: 'gpt-4o' }, tenant.apiKey))
        .repriceUsage.corrected,
    ).toBe(4)

    const setup = expectNoErrors(
      await t.gql(SETUP, { input: { createCustomers: true } }, tenant.apiKey),
    ).setupStripeBilling
    expect(setup).toMatchObject({ createdCustomers: 2, backfilledEvents: 4, backfilledCorrections: 4 })
    const horizon = new Date(setup.backfillFrom)
    expect(horizon.getTime() % HOUR).toBe(0)
    expect(horizon.getTime()).toBe(Math.ceil((clock.now().getTime() - STRIPE_MAX_AGE_MS) / HOUR) * HOUR)

    await pushAll()
    // dora's UNPRICED event is billed nothing (yet); her 40-day-old event is before the horizon.
    await expectStripeMatchesBilled(tenant, customers, horizon, clock.now())
    await expectReconciled(tenant, T0, new Date(T0.getTime() + 3 * HOUR), customers)

    // The 40-day-old event was never queued (no EXPIRED push, no alert): reconciliation names it.
    expect(
      await t.database.db
        .selectFrom('stripe_outbox')
        .select('event_id')
        .where('tenant_id', '=', tenant.id)
        .where('event_id', 'like', 'd-old%')
        .execute(),
    ).toEqual([])
    expect(
      expectNoErrors(await t.gql(`{ stripeExpiredUsage { identifier } }`, {}, tenant.apiKey)).stripeExpiredUsage,
    ).toEqual([])
    const oldHour = new Date(Math.floor(oldTs.getTime() / HOUR) * HOUR)
    const rows = expectNoErrors(
      await t.gql(RECONCILE, { from: iso(oldHour), to: iso(new Date(oldHour.getTime() + HOUR)) }, tenant.apiKey),
    ).stripeReconciliation
    expect(rows).toHaveLength(1)
    expect(rows[0].customerId).toBe('dora')
    expect(rows[0].billedAmount).toBe('0')
    expect(rows[0].differences).toEqual([
      expect.stringMatching(/^1 events billed [0-9.]+ happened before Stripe billing's backfill start/),
    ])

    // A correction of that event after setup stays out of Stripe too: Stripe never had its base.
    clock.advance(60_000)
    expectNoErrors(
      await t.gql(
        OVERRIDE,
        {
          i: {
            provider: 'openai',
            model: 'gpt-4o',
            usageType: 'input',
            unitPrice: '0.0000019',
            effectiveFrom: iso(oldHour),
          },
        },
        tenant.apiKey,
      ),
    )
    const oldRange = { from: iso(oldHour), to: iso(new Date(oldHour.getTime() + HOUR)), model: 'gpt-4o' }
    expect(expectNoErrors(await t.gql(REPRICE, oldRange, tenant.apiKey)).repriceUsage.corrected).toBe(1)
    expect(
      await t.database.db
        .selectFrom('stripe_outbox')
        .select('event_id')
        .where('tenant_id', '=', tenant.id)
        .where('event_id', 'like', 'd-old%')
        .execute(),
    ).toEqual([])
    const after = expectNoErrors(
      await t.gql(RECONCILE, { from: oldRange.from, to: oldRange.to }, tenant.apiKey),
    ).stripeReconciliation
    expect(after[0].differences).toEqual([
      expect.stringMatching(/^1 events billed [0-9.]+ happened before Stripe billing's backfill start/),
    ])
    expect(after[0].ledgerAmount).not.toBe(rows[0].ledgerAmount)
  })

  it('a second setup queues nothing new, also for events ingest queued after the first', async () => {
    expectNoErrors(await t.gql(RECORD_BATCH, { events: [gptEvent('d3', 'dora', at(130), 777, 77)] }, tenant.apiKey))
    const again = expectNoErrors(await t.gql(SETUP, {}, tenant.apiKey)).setupStripeBilling
    expect(again).toMatchObject({ createdCustomers: 0, backfilledEvents: 0, backfilledCorrections: 0 })
    // A key already queued (here directly, as a concurrent ingest would have) is not queued twice.
    const queued = await t.database.db
      .selectFrom('stripe_outbox')
      .select(['event_id'])
      .where('tenant_id', '=', tenant.id)
      .execute()
    expect(new Set(queued.map((q) => q.event_id)).size).toBe(queued.length)
    await pushAll()
    await expectStripeMatchesBilled(tenant, customers, T0, clock.now())
    await expectReconciled(tenant, T0, new Date(T0.getTime() + 3 * HOUR), customers)
  })

  it('an earlier backfillFrom queues the older usage, which surfaces as EXPIRED', async () => {
    const setup = expectNoErrors(
      await t.gql(SETUP, { input: { backfillFrom: iso(old()) } }, tenant.apiKey),
    ).setupStripeBilling
    // The old event and its correction go together.
    expect(setup).toMatchObject({ backfilledEvents: 1, backfilledCorrections: 1 })
    const round = await t.pusher().runOnce()
    expect(round).toMatchObject({ expired: 1, sent: 0 })
    const expired = expectNoErrors(
      await t.gql(`{ stripeExpiredUsage { customerId status } }`, {}, tenant.apiKey),
    ).stripeExpiredUsage
    expect(expired).toEqual([{ customerId: 'dora', status: 'EXPIRED' }])
    const future = await t.gql(
      SETUP,
      { input: { backfillFrom: iso(new Date(clock.now().getTime() + HOUR)) } },
      tenant.apiKey,
    )
    expect(future.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.backfillFrom' })
  })

  it('an event ingested concurrently with the first setup is queued and counted once', async () => {
    const racer = await newTenant('Backfill race', 'sk_test_backfillRacer0001', ['rita'])
    expectNoErrors(
      await t.gql(
        `mutation { upsertCustomer(input: { id: "rita", stripeCustomerId: "cus_ritaRace" }) { id } }`,
        {},
        racer.apiKey,
      ),
    )
    const ids = Array.from({ length: 20 }, (_, i) => `race-${i}`)
    const [recorded, setup] = await Promise.all([
      (async () => {
        let n = 0
        for (const id of ids)
          n += expectNoErrors(
            await t.gql(
              RECORD_BATCH,
              { events: [gptEvent(id, 'rita', at(10 + ids.indexOf(id)), 1_000 + n, 100)] },
              racer.apiKey,
            ),
          ).recordUsageBatch.recorded
        return n
      })(),
      t.gql(SETUP, {}, racer.apiKey),
    ])
    expect(recorded).toBe(ids.length)
    expectNoErrors(setup)
    const queued = await t.database.db
      .selectFrom('stripe_outbox')
      .select('event_id')
      .where('tenant_id', '=', racer.id)
      .execute()
    expect(queued.map((q) => q.event_id).sort()).toEqual([...ids].sort())
    // A racing ingest and a backfill that both queue a key leave one row (the outbox key).
    await t.database.db.transaction().execute((trx) =>
      queueForStripe(trx, racer.id, [
        {
          key: 'race-0',
          customerId: 'rita',
          ts: at(10),
          amount: '1',
          lines: [{ usageType: 'input', amount: '1' }],
          model: 'gpt-4o',
        },
      ]),
    )
    expect(
      await t.database.db.selectFrom('stripe_outbox').select('event_id').where('tenant_id', '=', racer.id).execute(),
    ).toHaveLength(ids.length)
    await pushAll()
    await expectStripeMatchesBilled(racer, ['rita'], T0, clock.now())
    await expectReconciled(racer, T0, new Date(T0.getTime() + HOUR), ['rita'])
  })
})
