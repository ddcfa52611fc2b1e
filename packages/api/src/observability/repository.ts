/**
 * The database-wide figures /metrics reports, read at scrape time (every process reports the same
 * numbers; each query is an index scan or a small aggregate).
 */
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'

export interface DatabaseFigures {
  unpricedEvents: number
  stripePushes: { status: string; count: number }[]
  webhookDeliveries: { type: string; status: string; count: number }[]
  catalogLastSync: { source: string; finishedAt: Date }[]
}

export async function readFigures(db: Db): Promise<DatabaseFigures> {
  const [unpriced, pushes, deliveries, syncs] = await Promise.all([
    // usage_events_unpriced is a partial index on exactly these rows.
    db
      .selectFrom('usage_events')
      .where('status', '=', 'UNPRICED')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst(),
    db
      .selectFrom('stripe_pushes')
      .where('status', 'in', ['PENDING', 'FAILED'])
      .groupBy('status')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .execute(),
    db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_events as e', (j) =>
        j.onRef('e.id', '=', 'd.event_id').onRef('e.tenant_id', '=', 'd.tenant_id'),
      )
      .groupBy(['e.type', 'd.status'])
      .select(['e.type', 'd.status', (eb) => eb.fn.countAll<number>().as('n')])
      .execute(),
    db
      .selectFrom('catalog_sync_runs')
      .groupBy('source')
      .select(['source', sql<Date>`max(finished_at)`.as('finished_at')])
      .execute(),
  ])
  return {
    unpricedEvents: Number(unpriced?.n ?? 0),
    stripePushes: pushes.map((r) => ({ status: r.status, count: Number(r.n) })),
    webhookDeliveries: deliveries.map((r) => ({ type: r.type, status: r.status, count: Number(r.n) })),
    catalogLastSync: syncs.map((r) => ({ source: r.source, finishedAt: new Date(r.finished_at) })),
  }
}

/** Whether the database answers at all. */
export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db)
}
