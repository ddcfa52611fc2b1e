import { sql, type Kysely, type Selectable } from 'kysely'
import { applyCatalogSnapshot, CATALOG_SYNC_LOCK_KEY, deserializePrices, type CatalogDB } from './apply.ts'
import type { CatalogSyncSummary } from './types.ts'

export type PendingChange = Selectable<CatalogDB['catalog_pending_changes']>

export interface ResolvedPendingChange {
  change: PendingChange
  /** What confirming applied (null for a rejection): the caller publishes it like any sync's. */
  summary: CatalogSyncSummary | null
}

/** Held public price changes still waiting for a decision, oldest first. */
export async function listPendingChanges<DB extends CatalogDB>(db: Kysely<DB>): Promise<PendingChange[]> {
  return (db as unknown as Kysely<CatalogDB>)
    .selectFrom('catalog_pending_changes')
    .selectAll()
    .where('status', '=', 'PENDING')
    .orderBy('id')
    .execute()
}

/**
 * Confirms (applies, from when the change was observed) or rejects one held public price change:
 * the one path for the API's confirmPriceChange / rejectPriceChange and the CLI's confirm / reject.
 * Null when there is no such change still pending; the decision and the catalog rows it writes
 * commit together, so a change is never both confirmed and left unapplied.
 */
export async function resolvePendingChange<DB extends CatalogDB>(
  db: Kysely<DB>,
  id: number,
  decision: 'CONFIRM' | 'REJECT',
  now: Date,
): Promise<ResolvedPendingChange | null> {
  return (db as unknown as Kysely<CatalogDB>).transaction().execute(async (trx) => {
    // The sync lock before the pending row (the lock order): a sync holds it while it updates
    // pending rows, so taking the row first could deadlock with one.
    await sql`select pg_advisory_xact_lock(${sql.lit(CATALOG_SYNC_LOCK_KEY)})`.execute(trx)
    const change = await trx
      .updateTable('catalog_pending_changes')
      .set({ status: decision === 'CONFIRM' ? 'CONFIRMED' : 'REJECTED', resolved_at: now })
      .where('id', '=', id)
      .where('status', '=', 'PENDING')
      .returningAll()
      .executeTakeFirst()
    if (!change) return null
    if (decision === 'REJECT') return { change, summary: null }
    const summary = await applyCatalogSnapshot(
      trx,
      {
        source: change.source,
        sourceVersion: change.source_version,
        prices: deserializePrices(change.prices),
        models: 1,
        skipped: [],
      },
      {
        observedAt: change.observed_at,
        holdRatio: Infinity,
        scope: { provider: change.provider, model: change.model, usageType: change.usage_type },
        changedAt: now,
      },
    )
    return { change, summary }
  })
}
