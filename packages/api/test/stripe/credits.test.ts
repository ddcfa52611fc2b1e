import Stripe from 'stripe'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Clock } from '../../src/clock.ts'
import { planCreditActions, planCreditTargets, toMinor } from '../../src/stripe/credit-push.ts'
import { createStripeTestApp, expectNoErrors, SET_CREDENTIALS, SETUP, type StripeTestApp } from './stripe-support.ts'

/**
 * Prepaid credits on Stripe's invoice: the credits our ledger applied become Stripe billing credit
 * grants, and Stripe's upcoming invoice (create_preview on the fake) equals invoicePreview in
 * minor units — usage line, credits applied, total — with allowance and tiers, priorities and
 * categories, a scoped grant, an expired grant and a correction that gives credits back.
 */
const SECRET_KEY = 'sk_test_creditsCredits01'
const HOUR = 3_600_000

// Real time shifted by `offset`: the expiry test moves past a grant's expiry.
let offset = 0
const clock: Clock = { now: () => new Date(Date.now() + offset) }
const monthStart = () => {
  const now = clock.now()
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
}
/** An instant of this month before now: `minutes` after its start, but never later than 2 minutes ago. */
const earlier = (minutes: number) =>
  new Date(Math.min(monthStart().getTime() + minutes * 60_000, clock.now().getTime() - 120_000)).toISOString()

const PREVIEW = `query ($c: String!, $p: DateTime) { invoicePreview(customerId: $c, periodStart: $p) { periodStart periodEnd lines { kind amount } subtotal creditsApplied creditsRemaining total } }`
const GRANT = `mutation ($i: GrantCreditsInput!) { grantCredits(input: $i) { created grant { id remaining } } }`
const BATCH = `mutation ($e: [UsageEventInput!]!) { recordUsageBatch(events: $e) { recorded rejected results { error { code message } } } }`

let t: StripeTestApp
let stripe: Stripe
let priceId: string
const stripeIds = new Map<string, string>()

beforeAll(async () => {
  t = await createStripeTestApp({ clock })
  expectNoErrors(await t.gql(SET_CREDENTIALS, { input: { secretKey: SECRET_KEY } }))
  for (const id of ['acme', 'beta', 'gamma', 'delta'])
    expectNoErrors(await t.gql(`mutation { upsertCustomer(input: { id: "${id}", name: "${id}" }) { id } }`))
  expectNoErrors(await t.gql(SETUP, { input: { createCustomers: true } }))
  const account = await t.database.db.selectFrom('stripe_accounts').selectAll().executeTakeFirstOrThrow()
  priceId = account.price_id!
  for (const c of await t.database.db.selectFrom('customers').select(['id', 'stripe_customer_id']).execute())
    stripeIds.set(c.id, c.stripe_customer_id!)
  // The tenant subscribes its customers to the metered price in Stripe (README, step 2).
  stripe = new Stripe(SECRET_KEY, { host: t.fake.host, port: t.fake.port, protocol: 'http', telemetry: false })
  for (const id of stripeIds.values()) await stripe.subscriptions.create({ customer: id, items: [{ price: priceId }] })
  // A 37 % margin by default: every amount has many decimals.
  offset = -HOUR
  expectNoErrors(await t.gql(`mutation { setPricingPlan(input: { kind: MARGIN, percent: "37" }) { kind } }`))
  // acme is billed by a rating plan: an allowance, graduated tiers and a fixed output price.
  expectNoErrors(
    await t.gql(`mutation ($i: RatingPlanInput!) { setRatingPlan(input: $i) { version } }`, {
      i: {
        customerId: 'acme',
        rules: [
          { id: 'free', type: 'TOKEN_ALLOWANCE', model: 'gpt-4o*', usageType: 'input', quantity: '100000' },
          {
            id: 'tiers',
            type: 'TOKEN_TIERS',
            model: 'gpt-4o*',
            usageType: 'input',
            mode: 'GRADUATED',
            tiers: [
              { upTo: '1000000', unitPrice: '3' },
              { upTo: null, unitPrice: '2' },
            ],
          },
          { id: 'out', type: 'FIXED_PRICE', model: '*', usageType: 'output', price: '12.345' },
        ],
      },
    }),
  )
  offset = 0
}, 240_000)

afterAll(async () => {
  await t?.close()
})

let n = 0
const event = (customerId: string, minutes: number, inputTokens: number, outputTokens: number, model = 'gpt-4o') => ({
  id: `cr-${++n}`,
  customerId,
  model,
  timestamp: earlier(minutes),
  inputTokens,
  outputTokens,
})

async function record(events: ReturnType<typeof event>[]) {
  const r = expectNoErrors(await t.gql(BATCH, { e: events }))
  expect(r.recordUsageBatch.rejected).toBe(0)
}

async function grant(input: Record<string, unknown>) {
  return expectNoErrors(await t.gql(GRANT, { i: input })).grantCredits.grant
}

/** Runs the pusher until nothing is pending or left to plan. */
async function pushAll() {
  const pusher = t.pusher()
  for (let i = 0; i < 50; i++) {
    const round = await pusher.runOnce()
    if (round.groups === 0) return
  }
  throw new Error('pusher did not settle')
}

/** Stripe's upcoming invoice against invoicePreview, in minor units, for one customer. */
async function compare(customerId: string) {
  const invoice = await stripe.invoices.createPreview({ customer: stripeIds.get(customerId)! })
  const periodStart = new Date(invoice.period_start * 1000).toISOString()
  const preview = expectNoErrors(await t.gql(PREVIEW, { c: customerId, p: periodStart })).invoicePreview
  const credits = (invoice.total_pretax_credit_amounts ?? []).reduce((s, c) => s + c.amount, 0)
  const ours = {
    subtotal: Number(toMinor(preview.subtotal, '100')),
    credits: Number(toMinor(preview.creditsApplied, '100')),
  }
  expect({ subtotal: invoice.subtotal, credits, total: invoice.total }).toEqual({
    ...ours,
    total: ours.subtotal - ours.credits,
  })
  return { invoice, preview }
}

const grantsOf = (customerId: string) =>
  t.fake.account(SECRET_KEY).creditGrants.filter((g) => g.customer === stripeIds.get(customerId))

describe('Stripe credit grants follow the credits we apply', () => {
  it('invoicePreview equals Stripe upcoming invoice: allowance, tiers, two grants by priority and category', async () => {
    await grant({ customerId: 'acme', amount: '1.00', idempotencyKey: 'acme-paid' })
    await grant({
      customerId: 'acme',
      amount: '0.30',
      category: 'PROMOTIONAL',
      priority: 10,
      idempotencyKey: 'acme-promo',
    })
    // Its events come after the plan took effect (an hour ago).
    await record([event('acme', 1e9, 600_000, 1_234), event('acme', 1e9, 700_001, 777)])
    await pushAll()
    const { invoice, preview } = await compare('acme')
    // 1,300,001 input tokens: 100,000 free, 1,000,000 at $3/1M, 200,001 at $2/1M ($3.400002);
    // 2,011 output at $12.345/1M ($0.024825795). Stripe: one line of $3.42, minus $1.30 of credits.
    expect(preview.subtotal).toBe('3.424827795')
    expect(preview.creditsApplied).toBe('1.3')
    expect(invoice.subtotal).toBe(342)
    expect(invoice.total).toBe(212)
    expect(
      grantsOf('acme')
        .map((g) => [g.category, g.amount.monetary.value, g.applicability_config.scope.prices[0].id])
        .sort(),
    ).toEqual([
      ['paid', 100, priceId],
      ['promotional', 30, priceId],
    ])
  })

  it('a scoped grant that pays part of the usage: Stripe holds what it paid, rounded once', async () => {
    await grant({ customerId: 'beta', amount: '50', scope: { models: ['claude-*'] }, idempotencyKey: 'beta-claude' })
    await record([
      event('beta', 20, 123_457, 4_321, 'claude-sonnet-4-5'),
      event('beta', 21, 222_222, 3_333),
      event('beta', 22, 1_001, 17, 'claude-sonnet-4-5'),
    ])
    await pushAll()
    const { preview } = await compare('beta')
    // Only the Claude usage was paid: applied is below the subtotal and not whole cents.
    expect(Number(preview.creditsApplied)).toBeGreaterThan(0)
    expect(Number(preview.creditsApplied)).toBeLessThan(Number(preview.subtotal))
    const held = grantsOf('beta').reduce((s, g) => s + g.amount.monetary.value, 0)
    expect(held).toBe(Number(toMinor(preview.creditsApplied, '100')))
  })

  it('a grant that expires keeps what it paid before; later usage is owed in full', async () => {
    const expiresAt = new Date(clock.now().getTime() + HOUR).toISOString()
    await grant({ customerId: 'gamma', amount: '5', expiresAt, idempotencyKey: 'gamma-5' })
    await record([event('gamma', 30, 300_000, 10_000)])
    await pushAll()
    const before = (await compare('gamma')).preview
    offset = 2 * HOUR
    try {
      await record([event('gamma', 31, 400_000, 20_000)])
      await pushAll()
      const { preview } = await compare('gamma')
      expect(preview.creditsApplied).toBe(before.creditsApplied)
      expect(Number(preview.total)).toBeGreaterThan(0)
      const balance = expectNoErrors(
        await t.gql(`query { creditBalance(customerId: "gamma") { balance grants { status } } }`),
      ).creditBalance
      expect(balance.balance).toBe('0')
      // Stripe got one grant for what was applied, and no expiry of its own: nothing else to apply.
      expect(grantsOf('gamma').map((g) => [g.amount.monetary.value, g.expires_at, g.voided_at])).toEqual([
        [Number(toMinor(before.creditsApplied, '100')), null, null],
      ])
    } finally {
      offset = 0
    }
  })

  it('a correction that lowers a bill gives credits back: Stripe voids the grant and grants the rest', async () => {
    await grant({ customerId: 'delta', amount: '100', idempotencyKey: 'delta-100' })
    await record([event('delta', 40, 1_500_000, 40_000), event('delta', 41, 900_000, 30_000)])
    await pushAll()
    const first = (await compare('delta')).preview
    expect(first.total).toBe('0')
    expectNoErrors(
      await t.gql(`mutation ($i: PriceOverrideInput!) { setPriceOverride(input: $i) { unitPrice } }`, {
        i: {
          provider: 'openai',
          model: 'gpt-4o',
          usageType: 'input',
          unitPrice: '0.0000011',
          effectiveFrom: monthStart().toISOString(),
        },
      }),
    )
    const corrected = expectNoErrors(
      await t.gql(
        `mutation ($from: DateTime!, $to: DateTime!) { repriceUsage(from: $from, to: $to, model: "gpt-4o", reason: "test") { corrected } }`,
        { from: monthStart().toISOString(), to: clock.now().toISOString() },
      ),
    ).repriceUsage
    expect(corrected.corrected).toBeGreaterThanOrEqual(2)
    await pushAll()
    const { preview } = await compare('delta')
    expect(Number(preview.creditsApplied)).toBeLessThan(Number(first.creditsApplied))
    const grants = grantsOf('delta')
    expect(grants.filter((g) => g.voided_at !== null)).toHaveLength(1)
    const live = grants.filter((g) => g.voided_at === null).reduce((s, g) => s + g.amount.monetary.value, 0)
    expect(live).toBe(Number(toMinor(preview.creditsApplied, '100')))
  })

  it('retries a lost answer without a second grant (looked up by its metadata)', async () => {
    let dropped = 0
    t.fake.fault = ({ path, method }) =>
      method === 'POST' && path === '/v1/billing/credit_grants' && dropped++ === 0 ? 'drop-after' : null
    try {
      await grant({ customerId: 'acme', amount: '20', idempotencyKey: 'acme-more' })
      await record([event('acme', 50, 10_000, 5_000)])
      // The drop needs a retry after backoff: the test pusher's backoff is milliseconds.
      for (let i = 0; i < 20; i++) {
        await pushAll()
        const pending = await t.database.db
          .selectFrom('stripe_credit_pushes')
          .select('identifier')
          .where('status', '=', 'PENDING')
          .execute()
        if (pending.length === 0) break
        await new Promise((r) => setTimeout(r, 50))
      }
    } finally {
      t.fake.fault = () => null
    }
    expect(dropped).toBeGreaterThan(1)
    const pushes = await t.database.db
      .selectFrom('stripe_credit_pushes')
      .selectAll()
      .where('customer_id', '=', 'acme')
      .execute()
    expect(pushes.every((p) => p.status === 'SENT')).toBe(true)
    const ids = grantsOf('acme').map((g) => g.metadata.burnrate_push)
    expect(new Set(ids).size).toBe(ids.length)
    await compare('acme')
  })
})

describe('credit push arithmetic', () => {
  it('rounds the applied total once and splits it by category', () => {
    expect(
      planCreditTargets(
        new Map([
          ['PAID', '0.004'],
          ['PROMOTIONAL', '0.004'],
        ]),
        '100',
      ),
    ).toEqual({ PAID: 0n, PROMOTIONAL: 1n })
    expect(planCreditTargets(new Map([['PAID', '1.005']]), '100')).toEqual({ PAID: 101n, PROMOTIONAL: 0n })
  })

  it('grants the shortfall, voids the newest grants for an excess, cancels a never-sent one', () => {
    const push = (
      identifier: string,
      amount: number,
      status: 'SENT' | 'PENDING' | 'FAILED',
      attempts = 1,
      gaveUp = false,
    ) => ({
      identifier,
      kind: 'GRANT' as const,
      category: 'PAID' as const,
      amount_minor: amount,
      voids: null,
      status,
      attempts,
      gave_up: gaveUp,
    })
    // A grant Stripe refused is not held; one that gave up may be (its answer lost): it counts.
    expect(planCreditActions([push('a', 100, 'FAILED')], { PAID: 100n, PROMOTIONAL: 0n })).toEqual([
      { type: 'grant', category: 'PAID', amount: 100n },
    ])
    expect(planCreditActions([push('a', 100, 'FAILED', 16, true)], { PAID: 100n, PROMOTIONAL: 0n })).toEqual([])
    expect(planCreditActions([push('a', 100, 'SENT')], { PAID: 150n, PROMOTIONAL: 0n })).toEqual([
      { type: 'grant', category: 'PAID', amount: 50n },
    ])
    expect(planCreditActions([push('a', 100, 'SENT'), push('b', 50, 'SENT')], { PAID: 120n, PROMOTIONAL: 0n })).toEqual(
      [
        { type: 'void', category: 'PAID', of: 'b', amount: 50n },
        { type: 'grant', category: 'PAID', amount: 20n },
      ],
    )
    expect(
      planCreditActions([push('a', 100, 'SENT'), push('b', 50, 'PENDING', 0)], { PAID: 100n, PROMOTIONAL: 0n }),
    ).toEqual([{ type: 'cancel', of: 'b' }])
  })
})
