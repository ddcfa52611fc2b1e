/**
 * Minimum commitments on Stripe's invoice. A plan's MINIMUM rule adds a true-up to a period's bill
 * (invoicePreview's MINIMUM_TRUE_UP line); Stripe hears it as one invoice item per customer and
 * closed period, so Stripe's invoice equals ours with a minimum in force.
 *
 * - Once a period (UTC month) has closed, the pusher marks the credit-mirror state of every Stripe
 *   customer whose plan at the period's end has a minimum dirty (markClosedPeriods; a marker per
 *   account makes that once per period).
 * - Planning that state (credit-push.ts) adds a TRUE_UP push of the true-up in minor units, unless
 *   one is PENDING, SENT or FAILED already: the true-up is fixed when the period closes.
 * - Sending it creates the invoice item with an Idempotency-Key; a retry first looks the item up by
 *   its `burnrate_push` metadata, so an item Stripe made for a lost answer is adopted, never doubled.
 *
 * Stripe adds a pending invoice item to the customer's next invoice: the period's own invoice when
 * the item arrives while that invoice is a draft (Stripe keeps a renewal invoice in draft about an
 * hour), else the one after. Usage recorded into a period after it closed does not change its true-up.
 */
import { Decimal } from '../money/decimal.ts'
import type { PushContext, RoundClients, TrueUpSource } from './push-round.ts'
import type { CreditPushRow, CreditStateKey } from './repository/credit-pushes.ts'
import { markCreditStatesDirty } from './repository/credit-pushes.ts'
import { accountsDueForTrueUps, advanceTrueUpMarker, customersInStripe } from './repository/true-ups.ts'

/** At most this many closed periods are planned per account and scan (after a long outage: the latest). */
const MAX_PERIODS = 3

const monthStart = (at: Date, plus = 0) => new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + plus, 1))

/** Marks the states of closed periods with a minimum commitment dirty, once per account and period. */
export async function markClosedPeriods(ctx: PushContext): Promise<void> {
  const source = ctx.trueUps
  if (!source) return
  const lastClosed = monthStart(ctx.clock.now(), -1)
  for (const account of await accountsDueForTrueUps(ctx.db, lastClosed)) {
    if (ctx.killed()) return
    const through = account.true_ups_through ? new Date(account.true_ups_through) : null
    // Periods that closed after Stripe billing was set up, and after the marker.
    let first = through ? monthStart(through, 1) : monthStart(new Date(account.setup_at!))
    const earliest = monthStart(lastClosed, 1 - MAX_PERIODS)
    if (first < earliest) first = earliest
    const keys: CreditStateKey[] = []
    if (first <= lastClosed) {
      const customers = await customersInStripe(ctx.db, account.tenant_id)
      for (let start = first; start <= lastClosed; start = monthStart(start, 1)) {
        const end = monthStart(start, 1)
        for (const customerId of await source.withMinimum(account.tenant_id, customers, new Date(end.getTime() - 1)))
          keys.push({ tenant_id: account.tenant_id, customer_id: customerId, period_start: start })
      }
    }
    await ctx.db.transaction().execute(async (trx) => {
      if (await advanceTrueUpMarker(trx, account.tenant_id, through, lastClosed)) await markCreditStatesDirty(trx, keys)
    })
  }
}

/** A TRUE_UP push in force: one PENDING, SENT or FAILED (a refused one waits for retryStripeCreditPushes). */
export const hasTrueUp = (pushes: readonly Pick<CreditPushRow, 'kind' | 'status'>[]) =>
  pushes.some((p) => p.kind === 'TRUE_UP' && (p.status === 'PENDING' || p.status === 'SENT' || p.status === 'FAILED'))

/**
 * The true-up in minor units: the rounded subtotal less the rounded usage, so Stripe's metered line
 * (the usage, rounded as Stripe rounds it) plus this item is the rounded subtotal exactly.
 */
function trueUpMinor(bill: { subtotal: string; trueUp: string }, toMinor: (amount: Decimal) => bigint): bigint {
  const subtotal = new Decimal(bill.subtotal)
  return toMinor(subtotal) - toMinor(subtotal.minus(bill.trueUp))
}

/**
 * The true-up of a closed period to plan for the state, in minor units (0: none to plan), read
 * before the planning transaction; null when the period is not closed or one is planned already.
 */
export async function trueUpToPlan(
  ctx: PushContext,
  key: CreditStateKey,
  pushes: readonly Pick<CreditPushRow, 'kind' | 'status'>[],
  toMinor: (amount: Decimal) => bigint,
): Promise<bigint | null> {
  const source: TrueUpSource | null = ctx.trueUps
  if (!source || monthStart(key.period_start, 1) > ctx.clock.now() || hasTrueUp(pushes)) return null
  const bill = await source.periodTrueUp(key.tenant_id, key.customer_id, key.period_start)
  return new Decimal(bill.trueUp).isZero() ? 0n : trueUpMinor(bill, toMinor)
}

type Client = NonNullable<Awaited<ReturnType<RoundClients>>>['client']

/** Creates the push's invoice item (or adopts the one a previous attempt made); returns its id. */
export async function sendTrueUp(
  client: Client,
  push: CreditPushRow,
  currency: string,
  idempotencyKey: string,
): Promise<string> {
  if (push.attempts > 0 || push.gave_up) {
    for await (const item of client.invoiceItems.list({ customer: push.stripe_customer_id, limit: 100 }))
      if (item.metadata?.burnrate_push === push.identifier) return item.id
  }
  const start = new Date(push.period_start)
  const period = start.toISOString().slice(0, 7)
  const item = await client.invoiceItems.create(
    {
      customer: push.stripe_customer_id,
      currency: currency.toLowerCase(),
      amount: Number(push.amount_minor),
      description: `Minimum commitment true-up, ${period}`,
      period: { start: Math.floor(start.getTime() / 1000), end: Math.floor(monthStart(start, 1).getTime() / 1000) },
      metadata: { burnrate_push: push.identifier, burnrate_customer_id: push.customer_id, burnrate_period: period },
    },
    { idempotencyKey },
  )
  return item.id
}
