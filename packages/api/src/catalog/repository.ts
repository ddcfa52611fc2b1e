import { findCatalogConflicts, type CatalogConflict } from '@burnrate/catalog-sync'
import { sql, type Selectable } from 'kysely'
import type { Executor } from '../db/database.ts'
import type {
  CatalogFeedIssueTable,
  CatalogPendingChangeTable,
  CatalogSourceStateTable,
  CatalogSyncRunTable,
  PriceChangeLogTable,
  PriceCatalogRow,
  PriceTierJson,
  TimeWindowJson,
} from '../db/types.ts'

/** One effective-dated catalog row as the pricing engine sees it. */
export interface CatalogPrice {
  id: string
  provider: string
  model: string
  usageType: string
  unit: string
  /** Exact decimal price of one unit. */
  unitPrice: string
  currency: string
  /** Long-context tiers: when the event's total input tokens exceed `start`, the tier's price applies to the whole line. */
  tiers: PriceTierJson[] | null
  /** Time-of-day prices (off-peak discounts); a matching windowed row wins over an unwindowed one. */
  timeWindow: TimeWindowJson | null
  effectiveFrom: Date
  effectiveTo: Date | null
  source: string
  /** null for public prices; the tenant's id for its negotiated prices. */
  tenantId?: string | null
}

function toCatalogPrice(row: PriceCatalogRow): CatalogPrice {
  return {
    id: String(row.id),
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
    source: row.source,
    tenantId: row.tenant_id,
  }
}

/** The catalog version every sync bumps; one indexed row, read before deciding to reload. */
export async function readCatalogVersion(db: Executor): Promise<number> {
  const row = await db.selectFrom('catalog_state').select('version').where('id', '=', 1).executeTakeFirst()
  return row?.version ?? 0
}

/** Every row, public and every tenant's negotiated prices (whole history): the in-memory catalog. */
export async function listAllPrices(db: Executor): Promise<CatalogPrice[]> {
  const rows = await db.selectFrom('price_catalog').selectAll().orderBy('id').execute()
  return rows.map(toCatalogPrice)
}

/**
 * Public rows in force at `at` (effective_from ≤ at < effective_to, or open), ordered by provider,
 * model and usage type, unwindowed row first. Where rows of one timeline overlap (a scheduled price
 * replaced before it took effect), only the one the pricing engine would use is listed: the latest
 * effective_from, then the latest id. With `tenantId`: that tenant's negotiated rows only, the same
 * way (merging them over public rows is CatalogService.listPricesAt's job).
 */
export async function listPricesAt(
  db: Executor,
  filter: { provider?: string | null; model?: string | null; at: Date; tenantId?: string | null },
): Promise<CatalogPrice[]> {
  // Byte order ("C"), not the database locale's: the same order on every PostgreSQL and on PGlite.
  const provider = sql`provider collate "C"`
  const model = sql`model collate "C"`
  const usageType = sql`usage_type collate "C"`
  let query = db
    .selectFrom('price_catalog')
    .selectAll()
    // Per source: which source prices a model is the catalog service's decision, not the newest row's.
    .distinctOn([provider, model, usageType, 'time_window', 'source'])
    .where((eb) => (filter.tenantId ? eb('tenant_id', '=', filter.tenantId) : eb('tenant_id', 'is', null)))
    .where('effective_from', '<=', filter.at)
    .where((eb) => eb.or([eb('effective_to', 'is', null), eb('effective_to', '>', filter.at)]))
  if (filter.provider) query = query.where('provider', '=', filter.provider)
  if (filter.model) query = query.where('model', '=', filter.model)
  const rows = await query
    .orderBy(provider)
    .orderBy(model)
    .orderBy(usageType)
    .orderBy('time_window', (ob) => ob.asc().nullsFirst())
    .orderBy('source')
    .orderBy('effective_from', 'desc')
    .orderBy('id', 'desc')
    .execute()
  return rows.map(toCatalogPrice)
}

/** Every public row ever known for one model, and the tenant's own negotiated ones when given, oldest first. */
export async function priceHistory(
  db: Executor,
  provider: string,
  model: string,
  tenantId?: string,
): Promise<CatalogPrice[]> {
  const rows = await db
    .selectFrom('price_catalog')
    .selectAll()
    .where((eb) =>
      tenantId ? eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenantId)]) : eb('tenant_id', 'is', null),
    )
    .where('provider', '=', provider)
    .where('model', '=', model)
    .orderBy('effective_from')
    .orderBy(sql`usage_type collate "C"`)
    .orderBy('id')
    .execute()
  return rows.map(toCatalogPrice)
}

const CATALOG_ID = /^[1-9]\d{0,14}$/

/**
 * Rows by id, in the order asked and null where none is visible: the shape a DataLoader wants.
 * Public rows always; a tenant's own rows (negotiated prices) only when its id is given, so one
 * tenant never reads another's.
 */
export async function pricesByIds(
  db: Executor,
  ids: readonly string[],
  tenantId: string | null = null,
): Promise<(CatalogPrice | null)[]> {
  // Ids are bigint identities; anything else (or beyond exact JS integers) cannot name a row.
  const numericIds = [...new Set(ids.filter((id) => CATALOG_ID.test(id)).map(Number))]
  if (numericIds.length === 0) return ids.map(() => null)
  const rows = await db
    .selectFrom('price_catalog')
    .selectAll()
    .where('id', 'in', numericIds)
    .where((eb) =>
      tenantId === null
        ? eb('tenant_id', 'is', null)
        : eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', tenantId)]),
    )
    .execute()
  const byId = new Map(rows.map((row) => [String(row.id), toCatalogPrice(row)]))
  return ids.map((id) => byId.get(id) ?? null)
}

/**
 * Where public sources disagree about the price in force at `at`, as ModelPrice rows. The rule is
 * catalog-sync's, the one the CLI's summary counts with, so both always report the same conflicts.
 */
export async function listCatalogConflicts(db: Executor, at: Date): Promise<CatalogConflict<CatalogPrice>[]> {
  const conflicts = await findCatalogConflicts(db, at)
  return conflicts.map((conflict) => ({
    ...conflict,
    prices: conflict.prices.map((row) => toCatalogPrice(row as PriceCatalogRow)),
  }))
}

/** A tenant's own negotiated rows (optionally one model), oldest first. */
export async function tenantPrices(
  db: Executor,
  tenantId: string,
  filter: { provider?: string | null; model?: string | null; usageType?: string | null },
): Promise<CatalogPrice[]> {
  let query = db.selectFrom('price_catalog').selectAll().where('tenant_id', '=', tenantId)
  if (filter.provider) query = query.where('provider', '=', filter.provider)
  if (filter.model) query = query.where('model', '=', filter.model)
  if (filter.usageType) query = query.where('usage_type', '=', filter.usageType)
  const rows = await query.orderBy('effective_from').orderBy('id').execute()
  return rows.map(toCatalogPrice)
}

export type SyncRunRow = Selectable<CatalogSyncRunTable>
export type FeedIssueRow = Selectable<CatalogFeedIssueTable>

/** Sync runs, newest first; `before` pages back by id. */
export async function listSyncRuns(
  db: Executor,
  filter: { source?: string | null; before?: number | null; limit: number },
): Promise<SyncRunRow[]> {
  let query = db.selectFrom('catalog_sync_runs').selectAll()
  if (filter.source) query = query.where('source', '=', filter.source)
  if (filter.before) query = query.where('id', '<', filter.before)
  return query.orderBy('id', 'desc').limit(filter.limit).execute()
}

export async function syncRunById(db: Executor, id: number): Promise<SyncRunRow | undefined> {
  return db.selectFrom('catalog_sync_runs').selectAll().where('id', '=', id).executeTakeFirst()
}

/** The latest run of each source named, by source. */
export async function latestSyncRuns(db: Executor, sources: readonly string[]): Promise<Map<string, SyncRunRow>> {
  if (sources.length === 0) return new Map()
  const rows = await db
    .selectFrom('catalog_sync_runs')
    .selectAll()
    .distinctOn('source')
    .where('source', 'in', sources)
    .orderBy('source')
    .orderBy('id', 'desc')
    .execute()
  return new Map(rows.map((row) => [row.source, row]))
}

/**
 * Feed issues in id order, `after` paging forward. A run's issues are those of its feed version
 * (stored once, by the first run that saw that version).
 */
export async function listFeedIssues(
  db: Executor,
  filter: {
    source?: string | null
    sourceVersion?: string | null
    kind?: 'REJECTED' | 'SKIPPED' | null
    after?: number | null
    limit: number
  },
): Promise<FeedIssueRow[]> {
  let query = db.selectFrom('catalog_feed_issues').selectAll()
  if (filter.source) query = query.where('source', '=', filter.source)
  if (filter.sourceVersion) query = query.where('source_version', '=', filter.sourceVersion)
  if (filter.kind) query = query.where('kind', '=', filter.kind)
  if (filter.after) query = query.where('id', '>', filter.after)
  return query.orderBy('id').limit(filter.limit).execute()
}

export type SourceStateRow = Selectable<CatalogSourceStateTable>
export type ChangeLogRow = Selectable<PriceChangeLogTable>

/**
 * Claims a source for this process (one syncer at a time across processes) when it is due: its
 * state row is created on first sight, then leased for `leaseMs` if due and not leased.
 */
export async function claimSource(db: Executor, source: string, now: Date, leaseMs: number): Promise<boolean> {
  await db
    .insertInto('catalog_source_state')
    .values({ source, next_attempt_at: now })
    .onConflict((oc) => oc.column('source').doNothing())
    .execute()
  const claimed = await db
    .updateTable('catalog_source_state')
    .set({ lease_until: new Date(now.getTime() + leaseMs), last_attempt_at: now })
    .where('source', '=', source)
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .returning('source')
    .executeTakeFirst()
  return claimed !== undefined
}

/** Polling state of every source, by name. */
export function listSourceStates(db: Executor): Promise<SourceStateRow[]> {
  return db.selectFrom('catalog_source_state').selectAll().orderBy('source').execute()
}

/** Held public price changes still waiting for a decision, oldest first. */
export function listPendingChanges(db: Executor): Promise<Selectable<CatalogPendingChangeTable>[]> {
  return db.selectFrom('catalog_pending_changes').selectAll().where('status', '=', 'PENDING').orderBy('id').execute()
}

/** Applied changes, newest first: public ones and this tenant's own; `before` pages back by id. */
export function listPriceChanges(
  db: Executor,
  filter: { tenantId: string; provider?: string | null; model?: string | null; before?: number | null; limit: number },
): Promise<ChangeLogRow[]> {
  let query = db
    .selectFrom('price_change_log')
    .selectAll()
    .where((eb) => eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '=', filter.tenantId)]))
  if (filter.provider) query = query.where('provider', '=', filter.provider)
  if (filter.model) query = query.where('model', '=', filter.model)
  if (filter.before !== null && filter.before !== undefined) query = query.where('id', '<', filter.before)
  return query.orderBy('id', 'desc').limit(filter.limit).execute()
}
