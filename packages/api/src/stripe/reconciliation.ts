import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { badInput } from '../shared/errors.ts'
import { Decimal } from '../money/decimal.ts'
import type { StripeService } from './service.ts'
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
  stripe: StripeService,
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

  const billed = await db
    .selectFrom('stripe_outbox')
    .select([
      'customer_id',
      sql<string>`sum(amount)`.as('amount'),
      sql<string>`coalesce(sum(amount) filter (where planned_at is null), 0)`.as('unplanned'),
    ])
    .where('tenant_id', '=', tenantId)
    .where('window_start', '>=', from)
    .where('window_start', '<', to)
    .groupBy('customer_id')
    .execute()
  const ledger = await db
    .selectFrom('usage_events')
    .select(['customer_id', sql<string>`sum(amount)`.as('amount')])
    .where('tenant_id', '=', tenantId)
    .where('status', '=', 'PRICED')
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .groupBy('customer_id')
    .execute()
  // Corrections change what an event is billed: the latest amount is the original plus every delta.
  const corrections = await db
    .selectFrom('usage_corrections')
    .select(['customer_id', sql<string>`sum(new_amount - old_amount)`.as('amount')])
    .where('tenant_id', '=', tenantId)
    .where('ts', '>=', from)
    .where('ts', '<', to)
    .groupBy('customer_id')
    .execute()
  // Billed events the outbox never got: recorded before Stripe billing was set up and older than
  // its backfill start (setupStripeBilling's backfillFrom, by default Stripe's 35-day window).
  const unqueued = await sql<{ customer_id: string; events: string; amount: string }>`
    select customer_id, count(*) as events, sum(latest) as amount from (
      select e.customer_id, e.amount + coalesce((select sum(c.new_amount - c.old_amount) from usage_corrections c
                                                 where c.tenant_id = e.tenant_id and c.event_id = e.id), 0) as latest
      from usage_events e
      where e.tenant_id = ${tenantId} and e.status = 'PRICED' and e.ts >= ${from} and e.ts < ${to}
        and not exists (select 1 from stripe_outbox o where o.tenant_id = e.tenant_id and o.event_id = e.id)
    ) x where latest <> 0
    group by customer_id`.execute(db)
  const pushes = await db
    .selectFrom('stripe_pushes')
    .select(['customer_id', 'status', sql<string>`sum(value)`.as('units')])
    .where('tenant_id', '=', tenantId)
    .where('window_start', '>=', from)
    .where('window_start', '<', to)
    .groupBy(['customer_id', 'status'])
    .execute()
  const residues = await db
    .selectFrom('stripe_push_state')
    .select(['customer_id', sql<string>`sum(residue)`.as('residue'), sql<number>`count(*)`.as('dimensions')])
    .where('tenant_id', '=', tenantId)
    .groupBy('customer_id')
    .execute()
  const customerIds = [
    ...new Set([
      ...ledger.map((l) => l.customer_id),
      ...corrections.map((c) => c.customer_id),
      ...billed.map((b) => b.customer_id),
      ...pushes.map((p) => p.customer_id),
    ]),
  ].sort()
  const customers = customerIds.length
    ? await db
        .selectFrom('customers')
        .select(['id', 'stripe_customer_id'])
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', customerIds)
        .execute()
    : []
  const stripeIds = new Map(customers.map((c) => [c.id, c.stripe_customer_id]))
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
    const before = unqueued.rows.find((u) => u.customer_id === customerId)
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
