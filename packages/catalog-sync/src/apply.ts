import { sql, type ColumnType, type Generated, type Kysely, type Transaction } from 'kysely'
import { diffCatalog, type ExistingRow } from './diff.ts'
import type { CatalogSyncSummary, NormalizedPrice, PriceTier, SourceSnapshot, TimeWindow } from './types.ts'

/**
 * The two tables a sync touches, as catalog-sync needs them. Column for column the same as the
 * api's DB type (packages/api/src/db/types.ts), so the api passes its Kysely<DB> directly; this
 * package never imports the api.
 */
export interface CatalogDB {
  price_catalog: {
    id: Generated<number>
    provider: string
    model: string
    usage_type: string
    unit: string
    unit_price: ColumnType<string, string, string>
    currency: Generated<string>
    tiers: ColumnType<PriceTier[] | null, string, string> | null
    time_window: ColumnType<TimeWindow | null, string, string> | null
    effective_from: ColumnType<Date, Date | string, Date | string>
    effective_to: ColumnType<Date, Date | string, Date | string> | null
    source: string
    source_version: string
    tenant_id: string | null
    created_at: Generated<Date>
  }
  catalog_state: {
    id: number
    version: ColumnType<number, number | undefined, number>
    updated_at: ColumnType<Date, Date | string, Date | string>
  }
}

/**
 * Key of the transaction-level advisory lock every catalog sync takes first ("burn" in ASCII).
 * Syncs of every source serialize on it, so two processes syncing at once never both see "no row
 * yet" and insert the same rows twice.
 */
export const CATALOG_SYNC_LOCK_KEY = 0x6275726e

/** Rows per INSERT: a few thousand rows go in a handful of statements, well under the 65535 parameter limit. */
const INSERT_BATCH = 500
const CLOSE_BATCH = 1000

export interface ApplyOptions {
  /** When the sync saw the source: changed prices take effect from here, never earlier. */
  observedAt: Date
}

async function readSourceRows(trx: Transaction<CatalogDB>, source: string): Promise<ExistingRow[]> {
  const rows = await trx
    .selectFrom('price_catalog')
    .select(['id', 'provider', 'model', 'usage_type', 'unit', 'unit_price', 'currency', 'tiers', 'time_window', 'effective_from', 'effective_to'])
    .where('source', '=', source)
    .where('tenant_id', 'is', null)
    .execute()
  return rows.map((row) => ({
    id: Number(row.id),
    provider: row.provider,
    model: row.model,
    usageType: row.usage_type,
    unit: row.unit,
    unitPrice: row.unit_price,
    currency: row.currency,
    tiers: row.tiers,
    timeWindow: row.time_window,
    effectiveFrom: row.effective_from,
    effectiveTo: row.effective_to,
  }))
}

async function insertRows(trx: Transaction<CatalogDB>, rows: readonly NormalizedPrice[], snapshot: SourceSnapshot): Promise<void> {
  for (let start = 0; start < rows.length; start += INSERT_BATCH) {
    const batch = rows.slice(start, start + INSERT_BATCH).map((price) => ({
      provider: price.provider,
      model: price.model,
      usage_type: price.usageType,
      unit: price.unit,
      unit_price: price.unitPrice,
      currency: price.currency,
      tiers: price.tiers ? JSON.stringify(price.tiers) : null,
      time_window: price.timeWindow ? JSON.stringify(price.timeWindow) : null,
      effective_from: price.effectiveFrom,
      effective_to: price.effectiveTo,
      source: snapshot.source,
      source_version: snapshot.sourceVersion,
      tenant_id: null,
    }))
    await trx.insertInto('price_catalog').values(batch).execute()
  }
}

async function closeRows(trx: Transaction<CatalogDB>, closes: readonly { id: number; effectiveTo: Date }[]): Promise<void> {
  for (let start = 0; start < closes.length; start += CLOSE_BATCH) {
    const values = closes
      .slice(start, start + CLOSE_BATCH)
      .map((close) => sql`(${close.id}::bigint, ${close.effectiveTo.toISOString()}::timestamptz)`)
    await sql`
      update price_catalog as row
      set effective_to = closing.effective_to
      from (values ${sql.join(values)}) as closing(id, effective_to)
      where row.id = closing.id`.execute(trx)
  }
}

/**
 * Writes one source snapshot into the catalog, append-only, in one transaction: rows whose price
 * is unchanged stay as they are, changed prices close the row in force and open a new one, and
 * catalog_state.version is bumped (so every process reloads its in-memory catalog) only when
 * something was written. A second run with the same snapshot writes nothing.
 */
export async function applyCatalogSnapshot<DB extends CatalogDB>(
  db: Kysely<DB>,
  snapshot: SourceSnapshot,
  options: ApplyOptions,
): Promise<CatalogSyncSummary> {
  // DB has at least the two tables with these columns; catalog-sync only ever touches those.
  const catalogDb = db as unknown as Kysely<CatalogDB>
  return catalogDb.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${sql.lit(CATALOG_SYNC_LOCK_KEY)})`.execute(trx)
    // Read only after holding the lock: a sync that committed meanwhile is then visible.
    const existing = await readSourceRows(trx, snapshot.source)
    const diff = diffCatalog(existing, snapshot.prices, options.observedAt)
    await closeRows(trx, diff.close)
    await insertRows(trx, diff.open, snapshot)
    if (diff.open.length > 0 || diff.close.length > 0) {
      await trx
        .updateTable('catalog_state')
        .set({ version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('id', '=', 1)
        .execute()
    }
    return {
      source: snapshot.source,
      sourceVersion: snapshot.sourceVersion,
      models: snapshot.models,
      rowsOpened: diff.open.length,
      rowsClosed: diff.close.length,
      unchanged: diff.unchanged,
    }
  })
}
