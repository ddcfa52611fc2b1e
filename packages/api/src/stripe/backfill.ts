import type { Db } from '../db/database.ts'
import type { PricedLineJson } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { lineDeltas } from '../repricing/deltas.ts'
import { queueDeltas, type BillableDelta } from './outbox.ts'
import { lockSetupExclusive } from './repository/accounts.ts'
import { correctionsPage, pricedEventsPage } from './repository/backfill.ts'
import { STRIPE_MAX_AGE_MS, WINDOW_MS } from './units.ts'

const BACKFILL_BATCH = 1000

export interface BackfillResult {
  /** PRICED events newly queued (key: the event id, as ingest and late pricing queue them). */
  events: number
  /** Corrections newly queued (key: `<event id>#correction-<id>`, as the repricing hook queues them). */
  corrections: number
}

/**
 * The default start of the backfill: the oldest whole hour Stripe still accepts a meter event
 * for (its 35 days, less the pusher's hour of margin). Older usage is left in the ledger only.
 */
export function defaultBackfillFrom(now: Date): Date {
  return new Date(Math.ceil((now.getTime() - STRIPE_MAX_AGE_MS) / WINDOW_MS) * WINDOW_MS)
}

const parseLines = (value: unknown): PricedLineJson[] =>
  typeof value === 'string' ? (JSON.parse(value) as PricedLineJson[]) : ((value ?? []) as PricedLineJson[])

/**
 * Queues what the ledger billed from `from` on (by the time the usage happened) that the outbox
 * does not have yet: every PRICED event and every correction, in batches of `batch` rows per
 * transaction, keyset-paginated over (ts, id) on the tenant/time indexes. Keys are the ones
 * ingest and the repricing hook use, so whatever they queued (before or concurrently) is not
 * queued twice; a second run queues nothing.
 */
export async function backfillOutbox(
  db: Db,
  tenantId: string,
  from: Date,
  batch = BACKFILL_BATCH,
): Promise<BackfillResult> {
  const result: BackfillResult = { events: 0, corrections: 0 }

  let afterEvent: { ts: Date; id: string } | null = null
  for (;;) {
    const cursor: { ts: Date; id: string } | null = afterEvent
    const page = await db.transaction().execute(async (trx) => {
      // Exclusive for the batch: a transaction queueing for this tenant (ingest, a correction)
      // either commits before this batch reads, or runs its check after this batch's rows are in
      // the outbox. Without it, a correction whose event this batch is queueing could find the
      // event not yet queued (and leave the correction to the backfill) while this backfill's
      // correction pass has already read past it.
      await lockSetupExclusive(trx, tenantId)
      const rows = await pricedEventsPage(trx, tenantId, from, cursor, batch)
      const deltas: BillableDelta[] = []
      for (const event of rows) {
        if (event.amount === null) continue
        deltas.push({
          key: event.id,
          customerId: event.customer_id,
          ts: new Date(event.ts),
          amount: event.amount,
          lines: parseLines(event.lines),
          model: event.canonical_model ?? event.model,
        })
      }
      result.events += (await queueDeltas(trx, tenantId, deltas)).queued
      return rows
    })
    if (page.length === 0) break
    const last = page.at(-1)!
    afterEvent = { ts: new Date(last.ts), id: last.id }
    if (page.length < batch) break
  }

  let afterCorrection: { ts: Date; id: number } | null = null
  for (;;) {
    const cursor: { ts: Date; id: number } | null = afterCorrection
    const page = await db.transaction().execute(async (trx) => {
      await lockSetupExclusive(trx, tenantId)
      const rows = await correctionsPage(trx, tenantId, from, cursor, batch)
      const deltas: BillableDelta[] = rows.map((c) => ({
        key: `${c.event_id}#correction-${c.id}`,
        customerId: c.customer_id,
        ts: new Date(c.ts),
        amount: new Decimal(c.new_amount).minus(c.old_amount).toFixed(),
        lines: lineDeltas(parseLines(c.old_lines), parseLines(c.new_lines)),
        model: c.canonical_model ?? c.model,
      }))
      result.corrections += (await queueDeltas(trx, tenantId, deltas)).queued
      return rows
    })
    if (page.length === 0) break
    const last = page.at(-1)!
    afterCorrection = { ts: new Date(last.ts), id: Number(last.id) }
    if (page.length < batch) break
  }
  return result
}
