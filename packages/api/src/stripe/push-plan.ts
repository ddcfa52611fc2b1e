/**
 * Planning: folds a (customer, dimension) group's new outbox rows into meter events (pushes), one
 * per hourly window, carrying the sub-unit residue forward. planWindows is the arithmetic (pure);
 * planGroup is the use case, one transaction per group.
 */
import { Decimal } from '../money/decimal.ts'
import { planningAccount, stripeCustomerIdOf } from './repository/accounts.ts'
import { markPlanned, unplannedRows, type PushGroup } from './repository/outbox.ts'
import { insertPush, lockPushState, savePushState } from './repository/pushes.ts'
import type { PushContext, PushRound } from './push-round.ts'
import { pushIdentifier, STRIPE_MAX_AGE_MS, toUnits } from './units.ts'

const EXPIRED_REASON = 'window is older than Stripe accepts (35 days); not sent'

interface PlannedWindow {
  start: Date
  eventIds: string[]
  /** Whole reporting units of this window (with the residue carried in); 0: no push. */
  units: bigint
  /** The push's sequence number; null when units is 0. */
  seq: number | null
}

/**
 * Groups rows (in window order) into windows: each window's value is floor((residue + amounts) ×
 * units), the rest is the new residue. So Σ values + residue = Σ amounts × units, exactly, and
 * nothing is rounded twice. A correction can lower a bill: negative deltas give negative values.
 */
function planWindows(
  rows: readonly { event_id: string; window_start: Date | string; amount: string }[],
  state: { residue: string; nextSeq: number },
  unitsPerMajor: string,
): { windows: PlannedWindow[]; residue: Decimal; nextSeq: number } {
  const grouped = new Map<number, { start: Date; eventIds: string[]; amount: Decimal }>()
  for (const row of rows) {
    const start = new Date(row.window_start)
    let w = grouped.get(start.getTime())
    if (!w) grouped.set(start.getTime(), (w = { start, eventIds: [], amount: new Decimal(0) }))
    w.eventIds.push(row.event_id)
    w.amount = w.amount.plus(row.amount)
  }
  let residue = new Decimal(state.residue)
  let seq = state.nextSeq
  const windows: PlannedWindow[] = []
  for (const w of grouped.values()) {
    const { units, residue: rest } = toUnits(residue.plus(w.amount), unitsPerMajor)
    residue = rest
    windows.push({ start: w.start, eventIds: w.eventIds, units, seq: units !== 0n ? seq++ : null })
  }
  return { windows, residue, nextSeq: seq }
}

/**
 * Folds the group's unplanned outbox rows into pushes, window by window in time order, in one
 * transaction, while this process holds the group's lease. A window older than Stripe accepts
 * becomes an EXPIRED push with its alert.
 */
export async function planGroup(ctx: PushContext, group: PushGroup, round: PushRound): Promise<void> {
  const { clock, logger, alerts } = ctx
  const now = clock.now()
  await alerts.transaction(ctx.db, async (trx, raise) => {
    const account = await planningAccount(trx, group.tenant_id)
    if (!account?.price_id || !account.event_name) return
    const stripeCustomerId = await stripeCustomerIdOf(trx, group.tenant_id, group.customer_id)
    // No Stripe customer yet: the usage waits in the outbox (reconciliation shows it).
    if (!stripeCustomerId) return
    const state = await lockPushState(trx, group)
    if (!state || state.lease_owner !== ctx.owner) return
    const rows = await unplannedRows(trx, group)
    if (rows.length === 0) return
    const plan = planWindows(rows, { residue: state.residue, nextSeq: state.next_seq }, account.units_per_major)
    for (const w of plan.windows) {
      let identifier: string | null = null
      if (w.seq !== null) {
        identifier = pushIdentifier(group.tenant_id, group.customer_id, group.dimension, w.start, w.seq)
        const expired = now.getTime() - w.start.getTime() > STRIPE_MAX_AGE_MS
        await insertPush(trx, {
          identifier,
          tenant_id: group.tenant_id,
          customer_id: group.customer_id,
          dimension: group.dimension,
          stripe_customer_id: stripeCustomerId,
          event_name: account.event_name,
          window_start: w.start,
          seq: w.seq,
          value: Number(w.units),
          status: expired ? 'EXPIRED' : 'PENDING',
          last_error: expired ? EXPIRED_REASON : null,
          next_attempt_at: now,
          created_at: now,
        })
        round.planned += 1
        if (expired) {
          round.expired += 1
          logger.warn('stripe usage too old to send (over 35 days); listed by stripeExpiredUsage', {
            tenantId: group.tenant_id,
            customerId: group.customer_id,
            windowStart: w.start.toISOString(),
            units: w.units.toString(),
          })
          // The alert commits with the EXPIRED push (and only with it): one webhook event per push.
          await raise.meterEvent(
            'stripe.usage_expired',
            {
              identifier,
              tenant_id: group.tenant_id,
              customer_id: group.customer_id,
              stripe_customer_id: stripeCustomerId,
              dimension: group.dimension,
              window_start: w.start,
              value: Number(w.units),
            },
            EXPIRED_REASON,
            now,
          )
        }
      }
      await markPlanned(trx, group, w.eventIds, identifier, now)
    }
    await savePushState(trx, group, plan.residue.toFixed(), plan.nextSeq)
  })
}
