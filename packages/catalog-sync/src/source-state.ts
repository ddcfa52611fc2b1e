import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely'
import type { CatalogDB } from './apply.ts'
import type { CatalogCorrection, CatalogSyncSummary, FeedIssue, SourceSnapshot } from './types.ts'

/**
 * How a sync run of one public source ended, as `catalogSources` shows it. The API's poller and the
 * CLI both record their runs here, so a source synced by either looks the same to an operator.
 */

type Executor<DB extends CatalogDB> = Kysely<DB> | Transaction<DB>
const asCatalog = <DB extends CatalogDB>(db: Executor<DB>) => db as unknown as Kysely<CatalogDB>

/** What one sync of a source did: the API's SyncSummary and the run's `last_summary`, field for field. */
export interface SyncRunSummary {
  source: string
  sourceVersion: string
  models: number
  rowsOpened: number
  rowsClosed: number
  unchanged: number
  /** Timelines held as pending (a move beyond 10×). */
  held: number
  /** Values the source stated but that were refused, with reasons (also stored, see catalogFeedIssues). */
  rejected: FeedIssue[]
  /** What the source states that no row carries (unknown units, documentation entries, aliases). */
  skipped: number
  /** The recorded run (catalog_sync_runs); null for a dry run and for negotiated prices. */
  syncRunId: number | null
  /**
   * Timelines whose already-billed past the source corrected (it stated an earlier start date with
   * another price). Events since `from` keep their price until the tenant runs repriceUsage.
   */
  corrections: CatalogCorrection[]
}

export function syncRunSummary(summary: CatalogSyncSummary, snapshot: SourceSnapshot): SyncRunSummary {
  return {
    source: summary.source,
    sourceVersion: summary.sourceVersion,
    models: summary.models,
    rowsOpened: summary.rowsOpened,
    rowsClosed: summary.rowsClosed,
    unchanged: summary.unchanged,
    held: summary.held ?? 0,
    rejected: snapshot.rejected ?? [],
    skipped: snapshot.skipped.length,
    syncRunId: summary.syncRunId ?? null,
    corrections: summary.corrections ?? [],
  }
}

export interface SyncRunSuccess {
  /** When the run started (the attempt). */
  attemptedAt: Date
  /** When it committed. */
  succeededAt: Date
  /** What the run did, kept as the source's last summary. */
  summary: SyncRunSummary
  /** When the source is due again; absent: whatever was planned stays (a one-off CLI run plans nothing). */
  nextAttemptAt?: Date
}

/** A run that applied its source: failures reset, the lease (if any) released. */
export async function recordSyncSuccess<DB extends CatalogDB>(
  db: Executor<DB>,
  source: string,
  run: SyncRunSuccess,
): Promise<void> {
  await asCatalog(db)
    .insertInto('catalog_source_state')
    .values({
      source,
      next_attempt_at: run.nextAttemptAt ?? run.attemptedAt,
      failures: 0,
      last_attempt_at: run.attemptedAt,
      last_success_at: run.succeededAt,
      last_error: null,
      last_summary: JSON.stringify(run.summary),
    })
    .onConflict((oc) =>
      oc.column('source').doUpdateSet((eb) => ({
        lease_until: null,
        failures: 0,
        last_attempt_at: eb.ref('excluded.last_attempt_at'),
        last_success_at: eb.ref('excluded.last_success_at'),
        last_error: null,
        last_summary: eb.ref('excluded.last_summary'),
        next_attempt_at: run.nextAttemptAt
          ? eb.ref('excluded.next_attempt_at')
          : eb.ref('catalog_source_state.next_attempt_at'),
      })),
    )
    .execute()
}

export interface SyncRunFailure {
  attemptedAt: Date
  error: string
  /**
   * Retry after base × 2^(failures − 1), at most maxMs, counting this failure. Absent: whatever was
   * planned stays.
   */
  backoff?: { baseMs: number; maxMs: number }
}

/** A run that changed nothing because its source failed: one more consecutive failure, with the error. */
export async function recordSyncFailure<DB extends CatalogDB>(
  db: Executor<DB>,
  source: string,
  run: SyncRunFailure,
): Promise<{ failures: number; nextAttemptAt: Date }> {
  const backoff = run.backoff
  const retryAt = (failures: RawBuilder<number>) =>
    backoff
      ? sql<Date>`${run.attemptedAt}::timestamptz + least(${backoff.maxMs}::float8, ${backoff.baseMs}::float8 * power(2, ${failures} - 1)) * interval '1 millisecond'`
      : null
  const row = await asCatalog(db)
    .insertInto('catalog_source_state')
    .values({
      source,
      next_attempt_at: retryAt(sql<number>`1`) ?? run.attemptedAt,
      failures: 1,
      last_attempt_at: run.attemptedAt,
      last_error: run.error,
    })
    .onConflict((oc) =>
      oc.column('source').doUpdateSet((eb) => ({
        lease_until: null,
        failures: sql<number>`catalog_source_state.failures + 1`,
        last_attempt_at: eb.ref('excluded.last_attempt_at'),
        last_error: eb.ref('excluded.last_error'),
        next_attempt_at:
          retryAt(sql<number>`(catalog_source_state.failures + 1)`) ?? eb.ref('catalog_source_state.next_attempt_at'),
      })),
    )
    .returning(['failures', 'next_attempt_at'])
    .executeTakeFirstOrThrow()
  return { failures: Number(row.failures), nextAttemptAt: row.next_attempt_at }
}
