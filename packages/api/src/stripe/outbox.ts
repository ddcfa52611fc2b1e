import type { Executor } from '../db/database.ts'
import type { PricedLineJson } from '../db/types.ts'
import type { BilledChangeBatch, IngestBatch, StripeAccountRead } from '../usage/pipeline.ts'
import { Decimal } from '../money/decimal.ts'
import { lockSetupShared, queueingAccount } from './repository/accounts.ts'
import {
  billedUnqueuedEvents,
  ensurePushStates,
  insertOutboxRows,
  type NewOutboxRow,
  type PushGroup,
} from './repository/outbox.ts'
import { windowStart } from './units.ts'

/** A change to what a customer owes, as Stripe must hear it. */
export interface BillableDelta {
  /** Unique per tenant and change: the event id for ingest and late pricing, `<event id>#correction-<id>` for a correction. */
  key: string
  customerId: string
  /** When the usage happened (its hourly window is where the delta goes). */
  ts: Date
  /** Signed: a correction that lowers a bill is negative. */
  amount: string
  /** The delta per line (for ITEMIZED mode); must add up to `amount`. */
  lines: readonly Pick<PricedLineJson, 'usageType' | 'amount'>[]
  model: string
}

/**
 * Queues billed-amount changes for Stripe inside the caller's transaction (ingest, or a re-pricing
 * that corrects amounts), so a change is either stored and queued, or neither. Only tenants whose
 * Stripe billing is set up (a metered price exists) queue anything. Re-queuing a key is a no-op.
 */
export async function queueForStripe(
  trx: Executor,
  tenantId: string,
  deltas: readonly BillableDelta[],
): Promise<StripeAccountRead | undefined> {
  return (await queueDeltas(trx, tenantId, deltas)).read
}

/**
 * queueForStripe, with how many keys were newly queued (the setup backfill reports it) and the
 * account it read under the setup lock (nothing is read for no deltas).
 */
export async function queueDeltas(
  trx: Executor,
  tenantId: string,
  deltas: readonly BillableDelta[],
): Promise<{ queued: number; read?: StripeAccountRead }> {
  if (deltas.length === 0) return { queued: 0 }
  // Held until this transaction commits. The setup that first stores price_id takes the lock
  // exclusively, so it waits for every transaction that may have read "no price yet" here; the
  // backfill after it then sees those events, and later transactions see the price and queue
  // them themselves (the outbox key dedupes the overlap).
  await lockSetupShared(trx, tenantId)
  const account = await queueingAccount(trx, tenantId)
  const read = { account }
  if (!account?.price_id) return { queued: 0, read }
  const outside = await billedOutsideStripe(trx, tenantId, deltas, account.setup_at)
  const rows: NewOutboxRow[] = []
  for (const delta of deltas) {
    if (new Decimal(delta.amount).isZero()) continue
    if (outside.has(correctedEvent(delta.key) ?? '')) continue
    const window = windowStart(delta.ts)
    if (account.mode === 'AMOUNT') {
      rows.push({
        tenant_id: tenantId,
        event_id: delta.key,
        dimension: '',
        customer_id: delta.customerId,
        window_start: window,
        amount: delta.amount,
      })
      continue
    }
    // ITEMIZED: one row per model and usage type; the lines add up to the amount exactly.
    const perDimension = new Map<string, Decimal>()
    for (const line of delta.lines) {
      const dimension = `${delta.model}|${line.usageType}`
      perDimension.set(dimension, (perDimension.get(dimension) ?? new Decimal(0)).plus(line.amount))
    }
    for (const [dimension, amount] of perDimension) {
      if (amount.isZero()) continue
      rows.push({
        tenant_id: tenantId,
        event_id: delta.key,
        dimension,
        customer_id: delta.customerId,
        window_start: window,
        amount: amount.toFixed(),
      })
    }
  }
  const queued = await insertOutboxRows(trx, rows)
  const groups = new Map<string, PushGroup>()
  for (const row of rows)
    groups.set(`${row.customer_id}\u0001${row.dimension}`, {
      tenant_id: tenantId,
      customer_id: row.customer_id,
      dimension: row.dimension,
    })
  // A stable order: concurrent batches creating the same state rows wait instead of deadlocking.
  const states = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, state]) => state)
  await ensurePushStates(trx, states)
  return { queued: queued.size, read }
}

const CORRECTION = '#correction-'
const correctedEvent = (key: string): string | null =>
  key.includes(CORRECTION) ? key.slice(0, key.indexOf(CORRECTION)) : null

/**
 * Of the events the correction deltas correct, those Stripe never heard of: billed (non-zero),
 * recorded before Stripe billing was set up and not queued (older than the setup backfill's
 * start). Their corrections stay out of Stripe too, or Stripe would get a delta without its base;
 * a setup with an earlier backfillFrom queues the event and its corrections together.
 */
async function billedOutsideStripe(
  trx: Executor,
  tenantId: string,
  deltas: readonly BillableDelta[],
  setupAt: Date | null,
): Promise<Set<string>> {
  const eventIds = [...new Set(deltas.map((d) => correctedEvent(d.key)).filter((id): id is string => id !== null))]
  if (eventIds.length === 0 || !setupAt) return new Set()
  return billedUnqueuedEvents(trx, tenantId, eventIds, setupAt)
}

/** Ingest step `stripe.outbox` (usage/pipeline.ts): queues every newly stored priced event. */
export async function queueIngested(trx: Executor, batch: IngestBatch): Promise<void> {
  const { tenant, inserted } = batch
  const deltas: BillableDelta[] = []
  for (const event of inserted) {
    if (event.status !== 'PRICED' || event.amount === null) continue
    deltas.push({
      key: event.id,
      customerId: event.customer_id,
      ts: new Date(event.ts),
      amount: event.amount,
      lines: event.lines,
      model: event.canonical_model ?? event.model,
    })
  }
  batch.stripeAccount = await queueForStripe(trx, tenant.id, deltas)
}

/**
 * Billed-change step `stripe.outbox`: queues every change to an already-stored event's bill (a
 * late pricing, a correction) in the transaction that writes it, so Stripe hears the delta as it
 * hears new usage, in the event's window.
 */
export async function queueChanges(trx: Executor, batch: BilledChangeBatch): Promise<void> {
  batch.stripeAccount = await queueForStripe(trx, batch.tenantId, batch.changes)
}
