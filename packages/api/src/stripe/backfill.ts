import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { PricedLineJson } from '../db/types.ts'
import { Decimal } from '../money/decimal.ts'
import { lineDeltas } from '../repricing/changes.ts'
import { queueDeltas, setupLockKey, type BillableDelta } from './outbox.ts'
import { STRIPE_MAX_AGE_MS } from './pusher.ts'
import { WINDOW_MS } from './units.ts'

export const BACKFILL_BATCH = 1000

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
      await sql`select pg_advisory_xact_lock(hashtext(${setupLockKey(tenantId)}))`.execute(trx)
      let query = trx
        .selectFrom('usage_events')
        .select(['id', 'customer_id', 'ts', 'amount', 'lines', 'model', 'canonical_model'])
        .where('tenant_id', '=', tenantId)
        .where('status', '=', 'PRICED')
        .where('ts', '>=', from)
      if (cursor) query = query.where(sql<boolean>`(ts, id) > (${cursor.ts}, ${cursor.id})`)
      const rows = await query.orderBy('ts').orderBy('id').limit(batch).execute()
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
      result.events += await queueDeltas(trx, tenantId, deltas)
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
      await sql`select pg_advisory_xact_lock(hashtext(${setupLockKey(tenantId)}))`.execute(trx)
      let query = trx
        .selectFrom('usage_corrections as c')
        .innerJoin('usage_events as e', (join) =>
          join.onRef('e.tenant_id', '=', 'c.tenant_id').onRef('e.id', '=', 'c.event_id'),
        )
        .select([
          'c.id',
          'c.event_id',
          'c.customer_id',
          'c.ts',
          'c.old_amount',
          'c.new_amount',
          'c.old_lines',
          'c.new_lines',
          'e.model',
          'e.canonical_model',
        ])
        .where('c.tenant_id', '=', tenantId)
        .where('c.ts', '>=', from)
      if (cursor) query = query.where(sql<boolean>`(c.ts, c.id) > (${cursor.ts}, ${cursor.id})`)
      const rows = await query.orderBy('c.ts').orderBy('c.id').limit(batch).execute()
      const deltas: BillableDelta[] = rows.map((c) => ({
        key: `${c.event_id}#correction-${c.id}`,
        customerId: c.customer_id,
        ts: new Date(c.ts),
        amount: new Decimal(c.new_amount).minus(c.old_amount).toFixed(),
        lines: lineDeltas(parseLines(c.old_lines), parseLines(c.new_lines)),
        model: c.canonical_model ?? c.model,
      }))
      result.corrections += await queueDeltas(trx, tenantId, deltas)
      return rows
    })
    if (page.length === 0) break
    const last = page.at(-1)!
    afterCorrection = { ts: new Date(last.ts), id: Number(last.id) }
    if (page.length < batch) break
  }
  return result
}
