/** Per customer: what the ledger billed, what went to Stripe, and what Stripe says it counted. */
import type { Db } from '../db/database.ts'
import { badInput } from '../shared/errors.ts'
import { Decimal } from '../money/decimal.ts'
import { stripeIdsOf } from './repository/accounts.ts'
import {
  correctionsByCustomer,
  ledgerByCustomer,
  outboxByCustomer,
  pushUnitsByCustomer,
  residuesByCustomer,
  unqueuedByCustomer,
} from './repository/reconciliation.ts'
import type { StripeAccountRow } from './db-types.ts'
import type { StripeClient } from './client.ts'
import { WINDOW_MS } from './units.ts'

export interface ReconciliationRow {
  customerId: string
  stripeCustomerId: string | null
  /** Billed amount of the customer's priced events in the range, from the ledger, corrections included. */
  ledgerAmount: string
  /** Our billed total for the range (events stored since Stripe billing was set up). */
  billedAmount: string
  /** billedAmount in reporting units, exact (a fraction is residue not yet reportable). */
  billedUnits: string
  /** Units in meter events Stripe accepted, by window in the range. */
  reportedUnits: string
  pendingUnits: string
  failedUnits: string
  expiredUnits: string
  /** Billed amount not yet folded into a push (e.g. no Stripe customer yet), in units. */
  unplannedUnits: string
  /** Sub-unit amount carried forward right now (all windows), in units. */
  residueUnits: string
  /** Stripe's meter event summaries for the customer and range; null when not asked or unavailable. */
  stripeUnits: string | null
  differences: string[]
}

/**
 * Per customer: our billed total vs what we reported vs what Stripe's meter event summaries say,
 * for hour-aligned [from, to) (pushes are hourly windows; the meter event timestamp is the
 * window's start). Every mismatch is spelled out in `differences`.
 */
export async function reconcile(
  db: Db,
  stripe: {
    account(tenantId: string): Promise<StripeAccountRow | undefined>
    clientFor(tenantId: string): Promise<StripeClient | null>
  },
  tenantId: string,
  from: Date,
  to: Date,
  options: { includeStripe: boolean },
): Promise<ReconciliationRow[]> {
  if (from.getTime() % WINDOW_MS !== 0 || to.getTime() % WINDOW_MS !== 0)
    throw badInput('from and to must be whole UTC hours (pushes are hourly windows)', 'from')
  if (to <= from) throw badInput('to must be after from', 'to')
  const account = await stripe.account(tenantId)
  if (!account?.price_id) throw badInput('Stripe billing is not set up for this tenant (setupStripeBilling)')
  const perMajor = new Decimal(account.units_per_major)

  const range = { tenantId, from, to }
  const billed = await outboxByCustomer(db, range)
  const ledger = await ledgerByCustomer(db, range)
  // Corrections change what an event is billed: the latest amount is the original plus every delta.
  const corrections = await correctionsByCustomer(db, range)
  // Billed events the outbox never got: recorded before Stripe billing was set up and older than
  // its backfill start (setupStripeBilling's backfillFrom, by default Stripe's 35-day window).
  const unqueued = await unqueuedByCustomer(db, range)
  const pushes = await pushUnitsByCustomer(db, range)
  const residues = await residuesByCustomer(db, tenantId)
  const customerIds = [
    ...new Set([
      ...ledger.map((l) => l.customer_id),
      ...corrections.map((c) => c.customer_id),
      ...billed.map((b) => b.customer_id),
      ...pushes.map((p) => p.customer_id),
    ]),
  ].sort()
  const stripeIds = await stripeIdsOf(db, tenantId, customerIds)
  const client = options.includeStripe ? await stripe.clientFor(tenantId) : null

  const rows: ReconciliationRow[] = []
  for (const customerId of customerIds) {
    const b = billed.find((x) => x.customer_id === customerId)
    const units = (status: string) =>
      new Decimal(pushes.find((p) => p.customer_id === customerId && p.status === status)?.units ?? 0)
    const billedAmount = new Decimal(b?.amount ?? 0)
    const ledgerAmount = new Decimal(ledger.find((l) => l.customer_id === customerId)?.amount ?? 0).plus(
      corrections.find((c) => c.customer_id === customerId)?.amount ?? 0,
    )
    const before = unqueued.find((u) => u.customer_id === customerId)
    const billedUnits = billedAmount.times(perMajor)
    const reported = units('SENT')
    const pending = units('PENDING')
    const failed = units('FAILED')
    const expired = units('EXPIRED')
    const unplanned = new Decimal(b?.unplanned ?? 0).times(perMajor)
    const state = residues.find((r) => r.customer_id === customerId)
    const residue = new Decimal(state?.residue ?? 0).times(perMajor)
    const stripeCustomerId = stripeIds.get(customerId) ?? null
    const differences: string[] = []

    let stripeUnits: Decimal | null = null
    if (client && stripeCustomerId && client.account.meter_id) {
      try {
        stripeUnits = new Decimal(0)
        for await (const summary of client.client.billing.meters.listEventSummaries(client.account.meter_id, {
          customer: stripeCustomerId,
          start_time: Math.floor(from.getTime() / 1000),
          end_time: Math.floor(to.getTime() / 1000),
        })) {
          stripeUnits = stripeUnits.plus(String(summary.aggregated_value))
        }
      } catch (error) {
        stripeUnits = null
        differences.push(
          `could not read Stripe's meter event summaries: ${error instanceof Error ? error.message : String(error)}`,
        )
      }
    }

    if (before) {
      differences.push(
        `${Number(before.events)} events billed ${new Decimal(before.amount).toFixed()} happened before Stripe billing's backfill start and were recorded before it was set up: they are in the ledger only (setupStripeBilling with an earlier backfillFrom queues them)`,
      )
    }
    const unexplained = ledgerAmount.minus(billedAmount).minus(before?.amount ?? 0)
    if (!unexplained.isZero()) {
      differences.push(
        `ledger shows ${ledgerAmount.toFixed()} billed but ${billedAmount.toFixed()} was queued for Stripe (${unexplained.toFixed()} not explained by usage before the backfill start)`,
      )
    }
    if (!stripeCustomerId && billedAmount.gt(0))
      differences.push('customer has no stripeCustomerId: its usage waits in the outbox')
    // Whatever was billed and is neither reported nor waiting is a loss; less than one unit per
    // dimension is residue that the next push carries.
    const gap = billedUnits.minus(reported)
    const explained = pending.plus(failed).plus(expired).plus(unplanned)
    const tolerance = new Decimal(state?.dimensions ?? 1)
    if (gap.minus(explained).abs().gte(tolerance)) {
      differences.push(
        `billed ${billedUnits.toFixed()} units but reported ${reported.toFixed()} (pending ${pending.toFixed()}, failed ${failed.toFixed()}, expired ${expired.toFixed()}, unplanned ${unplanned.toFixed()})`,
      )
    } else {
      if (pending.gt(0)) differences.push(`${pending.toFixed()} units pending (being sent)`)
      if (failed.gt(0))
        differences.push(`${failed.toFixed()} units failed (see stripePushes; retryStripePushes re-sends them)`)
      if (expired.gt(0)) differences.push(`${expired.toFixed()} units older than Stripe's 35-day window were not sent`)
      if (unplanned.gt(0)) differences.push(`${unplanned.toFixed()} units not yet folded into a push`)
    }
    if (stripeUnits !== null && !stripeUnits.eq(reported)) {
      differences.push(
        `reported ${reported.toFixed()} units but Stripe's meter summaries show ${stripeUnits.toFixed()}`,
      )
    }
    rows.push({
      customerId,
      stripeCustomerId,
      ledgerAmount: ledgerAmount.toFixed(),
      billedAmount: billedAmount.toFixed(),
      billedUnits: billedUnits.toFixed(),
      reportedUnits: reported.toFixed(),
      pendingUnits: pending.toFixed(),
      failedUnits: failed.toFixed(),
      expiredUnits: expired.toFixed(),
      unplannedUnits: unplanned.toFixed(),
      residueUnits: residue.toFixed(),
      stripeUnits: stripeUnits?.toFixed() ?? null,
      differences,
    })
  }
  return rows
}
