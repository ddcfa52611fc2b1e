import { sql, type ColumnType, type Generated, type Kysely, type Transaction } from 'kysely'
import { Decimal as DecimalJs } from 'decimal.js'
import { diffCatalog, rowInForce, timeWindowKey, type ExistingRow } from './diff.ts'
import { SOURCE_EPOCH } from './source-epoch.ts'
import type {
  AppliedPriceChange,
  CatalogCorrection,
  CatalogSyncSummary,
  FeedIssue,
  HeldPriceChange,
  NormalizedPrice,
  PriceTier,
  SourceSnapshot,
  TimeWindow,
} from './types.ts'

/**
 * The tables a sync touches, as catalog-sync needs them. Column for column the same as the
 * api's DB type (packages/api/src/db/types.ts), so the api passes its Kysely<DB> directly; this
 * package never imports the api.
 */
type Timestamp = ColumnType<Date, Date | string, Date | string>
type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>

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
    effective_from: Timestamp
    effective_to: Timestamp | null
    source: string
    source_version: string
    tenant_id: string | null
    created_at: GeneratedTimestamp
  }
  catalog_state: {
    id: number
    version: number
    updated_at: GeneratedTimestamp
  }
  price_change_log: {
    id: Generated<number>
    tenant_id: string | null
    provider: string
    model: string
    usage_type: string
    old_unit_price: ColumnType<string, string, string> | null
    new_unit_price: ColumnType<string, string, string> | null
    effective_from: Timestamp
    source: string
    source_version: string
    price_id: number | null
    changed_at: Timestamp
  }
  catalog_pending_changes: {
    id: Generated<number>
    source: string
    source_version: string
    provider: string
    model: string
    usage_type: string
    time_window: string
    old_unit_price: ColumnType<string, string, string>
    new_unit_price: ColumnType<string, string, string>
    prices: ColumnType<unknown[], string, string>
    observed_at: Timestamp
    status: 'PENDING' | 'CONFIRMED' | 'REJECTED'
    resolved_at: Timestamp | null
  }
  catalog_sync_runs: {
    id: Generated<number>
    source: string
    source_version: string
    observed_at: Timestamp
    finished_at: Timestamp
    models: number
    rows_opened: number
    rows_closed: number
    unchanged: number
    held: number
    rejected: number
    skipped: number
    corrections: number
  }
  catalog_feed_issues: {
    id: Generated<number>
    /** The first run that saw this feed version; later runs of the same version share its issues. */
    sync_run_id: number
    source: string
    source_version: string
    kind: 'REJECTED' | 'SKIPPED'
    model: string
    field: string | null
    raw_value: string | null
    reason: string
  }
  catalog_source_state: {
    source: string
    lease_until: Timestamp | null
    next_attempt_at: Timestamp
    failures: Generated<number>
    last_attempt_at: Timestamp | null
    last_success_at: Timestamp | null
    last_error: string | null
    last_summary: ColumnType<Record<string, unknown> | null, string, string> | null
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
  /**
   * When the sync saw the source: changed prices take effect from here. Earlier only where the
   * source states a start date before it and the catalog disagrees there (a correction, listed in
   * the summary's `corrections`); undated prices never apply earlier.
   */
  observedAt: Date
  /** A tenant's negotiated prices: only that tenant's rows of the source are read and written. */
  tenantId?: string | null
  /** Only this model (and usage type) of the source: the rest of its rows are neither read nor touched. */
  scope?: { provider: string; model: string; usageType?: string }
  /**
   * A price in force that would move by more than this factor (up or down) is held as pending
   * instead of applied. Default 10; Infinity applies everything (a confirmed change).
   */
  holdRatio?: number
  /** Wall-clock time recorded in the change log (default: now). */
  changedAt?: Date
  /** Only compute: nothing is written. */
  dryRun?: boolean
}

/** The default safety factor: a price moving more than tenfold in one sync waits for a human. */
export const DEFAULT_HOLD_RATIO = 10

async function readSourceRows(
  trx: Transaction<CatalogDB>,
  source: string,
  options: ApplyOptions,
): Promise<ExistingRow[]> {
  let query = trx
    .selectFrom('price_catalog')
    .select([
      'id',
      'provider',
      'model',
      'usage_type',
      'unit',
      'unit_price',
      'currency',
      'tiers',
      'time_window',
      'effective_from',
      'effective_to',
    ])
    .where('source', '=', source)
  query = options.tenantId ? query.where('tenant_id', '=', options.tenantId) : query.where('tenant_id', 'is', null)
  if (options.scope) {
    query = query.where('provider', '=', options.scope.provider).where('model', '=', options.scope.model)
    if (options.scope.usageType) query = query.where('usage_type', '=', options.scope.usageType)
  }
  const rows = await query.execute()
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

async function insertRows(
  trx: Transaction<CatalogDB>,
  rows: readonly NormalizedPrice[],
  snapshot: SourceSnapshot,
  tenantId: string | null,
): Promise<number[]> {
  const ids: number[] = []
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
      tenant_id: tenantId,
    }))
    // PostgreSQL returns the rows of one INSERT … VALUES in the order given.
    const inserted = await trx.insertInto('price_catalog').values(batch).returning('id').execute()
    for (const row of inserted) ids.push(Number(row.id))
  }
  return ids
}

async function closeRows(
  trx: Transaction<CatalogDB>,
  closes: readonly { id: number; effectiveTo: Date }[],
): Promise<void> {
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

const SEP = '\u0000'
const timelineOf = (row: { provider: string; model: string; usageType: string; timeWindow: TimeWindow | null }) =>
  `${row.provider}${SEP}${row.model}${SEP}${row.usageType}${SEP}${timeWindowKey(row.timeWindow)}`

/** True when going from `before` to `after` is a move by more than `ratio` either way (0 → anything counts). */
export function movesBeyond(before: string, after: string, ratio: number): boolean {
  if (!Number.isFinite(ratio)) return false
  const a = new DecimalJs(before)
  const b = new DecimalJs(after)
  if (a.eq(b)) return false
  if (a.isZero() || b.isZero()) return true
  return b.div(a).gt(ratio) || a.div(b).gt(ratio)
}

interface Held extends HeldPriceChange {
  timeline: string
  timeWindow: string
  prices: NormalizedPrice[]
}

/**
 * Timelines whose price in force at observedAt would move beyond the ratio. A timeline the diff
 * corrects from a stated past date is also checked at that date: a source rewriting already-billed
 * history tenfold (a typo with a start_date) waits for a human like any other such move. Held, the
 * whole timeline is left as it is, correction included; confirming it re-runs the diff with the
 * same observedAt, so the correction is applied then.
 */
function findHeld(
  existing: readonly ExistingRow[],
  desired: readonly NormalizedPrice[],
  observedAt: number,
  ratio: number,
  corrections: readonly CatalogCorrection[],
): Map<string, Held> {
  const held = new Map<string, Held>()
  if (!Number.isFinite(ratio)) return held
  const correctedFrom = new Map(corrections.map((c) => [timelineOf(c), c.from.getTime()]))
  const existingByTimeline = new Map<string, ExistingRow[]>()
  for (const row of existing) {
    const key = timelineOf(row)
    existingByTimeline.set(key, [...(existingByTimeline.get(key) ?? []), row])
  }
  const desiredByTimeline = new Map<string, NormalizedPrice[]>()
  for (const price of desired) {
    const key = timelineOf(price)
    desiredByTimeline.set(key, [...(desiredByTimeline.get(key) ?? []), price])
  }
  for (const [key, prices] of desiredByTimeline) {
    const moveAt = (at: number) => {
      const current = rowInForce(existingByTimeline.get(key) ?? [], at)
      const wanted = prices.find(
        (p) => p.effectiveFrom.getTime() <= at && (p.effectiveTo === null || p.effectiveTo.getTime() > at),
      )
      return current && wanted && movesBeyond(current.unitPrice, wanted.unitPrice, ratio) ? { current, wanted } : null
    }
    const from = correctedFrom.get(key)
    const move = (from === undefined ? null : moveAt(from)) ?? moveAt(observedAt)
    if (!move) continue
    const { current, wanted } = move
    held.set(key, {
      timeline: key,
      provider: wanted.provider,
      model: wanted.model,
      usageType: wanted.usageType,
      timeWindow: timeWindowKey(wanted.timeWindow),
      oldUnitPrice: new DecimalJs(current.unitPrice).toFixed(),
      newUnitPrice: wanted.unitPrice,
      prices,
    })
  }
  return held
}

/** What the change log says about a diff: each new row against the row in force where it starts, and each plain close. */
function changesOf(
  existing: readonly ExistingRow[],
  opened: readonly NormalizedPrice[],
  openedIds: readonly (number | null)[],
  closed: readonly { id: number; effectiveTo: Date }[],
  snapshot: SourceSnapshot,
  tenantId: string | null,
): AppliedPriceChange[] {
  const byTimeline = new Map<string, ExistingRow[]>()
  for (const row of existing) byTimeline.set(timelineOf(row), [...(byTimeline.get(timelineOf(row)) ?? []), row])
  const changes: AppliedPriceChange[] = []
  const replacedAt = new Set<string>()
  opened.forEach((price, index) => {
    const key = timelineOf(price)
    const before = rowInForce(byTimeline.get(key) ?? [], price.effectiveFrom.getTime())
    replacedAt.add(`${key}${SEP}${price.effectiveFrom.getTime()}`)
    changes.push({
      provider: price.provider,
      model: price.model,
      usageType: price.usageType,
      oldUnitPrice: before ? new DecimalJs(before.unitPrice).toFixed() : null,
      newUnitPrice: price.unitPrice,
      effectiveFrom: price.effectiveFrom,
      source: snapshot.source,
      sourceVersion: snapshot.sourceVersion,
      tenantId,
      priceId: openedIds[index] ?? null,
    })
  })
  const existingById = new Map(existing.map((row) => [row.id, row]))
  for (const close of closed) {
    const row = existingById.get(close.id)
    if (!row || replacedAt.has(`${timelineOf(row)}${SEP}${close.effectiveTo.getTime()}`)) continue
    changes.push({
      provider: row.provider,
      model: row.model,
      usageType: row.usageType,
      oldUnitPrice: new DecimalJs(row.unitPrice).toFixed(),
      newUnitPrice: null,
      effectiveFrom: close.effectiveTo,
      source: snapshot.source,
      sourceVersion: snapshot.sourceVersion,
      tenantId,
      priceId: null,
    })
  }
  return changes.sort((a, b) => a.effectiveFrom.getTime() - b.effectiveFrom.getTime())
}

const serializePrice = (price: NormalizedPrice) => ({
  ...price,
  effectiveFrom: price.effectiveFrom.toISOString(),
  effectiveTo: price.effectiveTo?.toISOString() ?? null,
})

/** Reads back what serializePrice stored in catalog_pending_changes.prices. */
export function deserializePrices(stored: unknown[]): NormalizedPrice[] {
  return (stored as ReturnType<typeof serializePrice>[]).map((price) => ({
    ...price,
    effectiveFrom: new Date(price.effectiveFrom),
    effectiveTo: price.effectiveTo ? new Date(price.effectiveTo) : null,
  }))
}

/**
 * Writes one source snapshot into the catalog, append-only, in one transaction: rows whose price
 * is unchanged stay as they are, changed prices close the row in force and open a new one, and
 * catalog_state.version is bumped (so every process reloads its in-memory catalog) only when
 * something was written. A price in force moving beyond the hold ratio is left as it is and
 * recorded as pending; every change written goes to the change log in the same transaction. A
 * price the source dates in the past corrects the timeline from that date (summary.corrections,
 * each change carrying the past effectiveFrom); nothing is re-priced here. A second run with the
 * same snapshot writes nothing.
 */
export async function applyCatalogSnapshot<DB extends CatalogDB>(
  db: Kysely<DB> | Transaction<DB>,
  snapshot: SourceSnapshot,
  options: ApplyOptions,
): Promise<CatalogSyncSummary> {
  // DB has at least these tables with these columns; catalog-sync only ever touches those.
  const catalogDb = db as unknown as Kysely<CatalogDB>
  const run = async (trx: Transaction<CatalogDB>): Promise<CatalogSyncSummary> => {
    await sql`select pg_advisory_xact_lock(${sql.lit(CATALOG_SYNC_LOCK_KEY)})`.execute(trx)
    const tenantId = options.tenantId ?? null
    const observed = options.observedAt.getTime()
    // Read only after holding the lock: a sync that committed meanwhile is then visible.
    const unreadable = unreadableModels(snapshot)
    // A model whose entry was unreadable this time is left exactly as it is: neither changed nor withdrawn.
    const existing = (await readSourceRows(trx, snapshot.source, options)).filter((row) => !unreadable(row))
    const scope = options.scope
    const desired = datedFromObservation(snapshot, options.observedAt).filter(
      (p) =>
        !unreadable(p) &&
        (!scope ||
          (p.provider === scope.provider &&
            p.model === scope.model &&
            (!scope.usageType || p.usageType === scope.usageType))),
    )
    const diff = diffCatalog(existing, desired, options.observedAt)
    const held = findHeld(existing, desired, observed, options.holdRatio ?? DEFAULT_HOLD_RATIO, diff.corrections)
    const existingById = new Map(existing.map((row) => [row.id, row]))
    const open = diff.open.filter((price) => !held.has(timelineOf(price)))
    const close = diff.close.filter((c) => !held.has(timelineOf(existingById.get(c.id)!)))
    const corrections = diff.corrections.filter((c) => !held.has(timelineOf(c)))
    // Rows in force when the source was seen that this sync leaves open: history it closed earlier is not "unchanged".
    const closing = new Set(close.map((c) => c.id))
    const unchanged = existing.filter(
      (row) =>
        !closing.has(row.id) &&
        row.effectiveFrom.getTime() <= observed &&
        (row.effectiveTo === null || row.effectiveTo.getTime() > observed),
    ).length
    const changedAt = options.changedAt ?? new Date()
    if (options.dryRun) {
      const changes = changesOf(
        existing,
        open,
        open.map(() => null),
        close,
        snapshot,
        tenantId,
      )
      return summaryOf(snapshot, open.length, close.length, unchanged, held.size, changes, corrections, null)
    }
    await closeRows(trx, close)
    const ids = await insertRows(trx, open, snapshot, tenantId)
    const changes = changesOf(existing, open, ids, close, snapshot, tenantId)
    for (let start = 0; start < changes.length; start += INSERT_BATCH) {
      await trx
        .insertInto('price_change_log')
        .values(
          changes.slice(start, start + INSERT_BATCH).map((change) => ({
            tenant_id: change.tenantId,
            provider: change.provider,
            model: change.model,
            usage_type: change.usageType,
            old_unit_price: change.oldUnitPrice,
            new_unit_price: change.newUnitPrice,
            effective_from: change.effectiveFrom,
            source: change.source,
            source_version: change.sourceVersion,
            price_id: change.priceId,
            changed_at: changedAt,
          })),
        )
        .execute()
    }
    if (!tenantId) await recordHeld(trx, snapshot, held, options, changedAt)
    if (open.length > 0 || close.length > 0) {
      await trx
        .updateTable('catalog_state')
        .set({ version: sql<number>`version + 1`, updated_at: sql<Date>`now()` })
        .where('id', '=', 1)
        .execute()
    }
    const summary = summaryOf(snapshot, open.length, close.length, unchanged, held.size, changes, corrections, null)
    // A public sync of a whole source is a run to account for; a tenant's prices and a confirmed
    // held change (scoped) are not feed syncs.
    if (!tenantId && !scope)
      summary.syncRunId = await recordSyncRun(trx, snapshot, summary, options.observedAt, changedAt)
    return summary
  }
  if (db.isTransaction) return run(catalogDb as unknown as Transaction<CatalogDB>)
  return catalogDb.transaction().execute(run)
}

function summaryOf(
  snapshot: SourceSnapshot,
  opened: number,
  closed: number,
  unchanged: number,
  held: number,
  changes: AppliedPriceChange[],
  corrections: CatalogCorrection[],
  syncRunId: number | null,
): CatalogSyncSummary {
  return {
    source: snapshot.source,
    sourceVersion: snapshot.sourceVersion,
    models: snapshot.models,
    rowsOpened: opened,
    rowsClosed: closed,
    unchanged,
    held,
    changes,
    rejected: snapshot.rejected?.length ?? 0,
    skipped: snapshot.skipped.length,
    corrections,
    syncRunId,
  }
}

/** True for a row of a model the snapshot could not read (its entry had a rejected value). */
function unreadableModels(snapshot: SourceSnapshot): (row: { provider: string; model: string }) => boolean {
  const list = snapshot.unreadable ?? []
  if (list.length === 0) return () => false
  const exact = new Set(list.filter((u) => u.provider !== undefined).map((u) => `${u.provider}${SEP}${u.model}`))
  const anyProvider = new Set(list.filter((u) => u.provider === undefined).map((u) => u.model))
  return (row) => anyProvider.has(row.model) || exact.has(`${row.provider}${SEP}${row.model}`)
}

/**
 * A source without dates states prices as of the moment it is observed: its undated rows start
 * at observedAt, so a model first seen now prices no event stamped before. A model already in the
 * catalog keeps its rows (the diff finds the same price in force), so a re-sync writes nothing.
 */
function datedFromObservation(snapshot: SourceSnapshot, observedAt: Date): NormalizedPrice[] {
  if (!snapshot.undatedFromObservation) return snapshot.prices
  const epoch = SOURCE_EPOCH.getTime()
  return snapshot.prices.map((price) =>
    price.effectiveFrom.getTime() === epoch ? { ...price, effectiveFrom: observedAt } : price,
  )
}

/**
 * The run, and what the feed said that became no row. Issues are stored once per feed version:
 * an hourly poll of an unchanged feed adds one small run row, not the same list again.
 */
async function recordSyncRun(
  trx: Transaction<CatalogDB>,
  snapshot: SourceSnapshot,
  summary: CatalogSyncSummary,
  observedAt: Date,
  finishedAt: Date,
): Promise<number> {
  const run = await trx
    .insertInto('catalog_sync_runs')
    .values({
      source: snapshot.source,
      source_version: snapshot.sourceVersion,
      observed_at: observedAt,
      finished_at: finishedAt,
      models: summary.models,
      rows_opened: summary.rowsOpened,
      rows_closed: summary.rowsClosed,
      unchanged: summary.unchanged,
      held: summary.held ?? 0,
      rejected: summary.rejected ?? 0,
      skipped: summary.skipped ?? 0,
      corrections: summary.corrections?.length ?? 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  const runId = Number(run.id)
  const known = await trx
    .selectFrom('catalog_feed_issues')
    .select('id')
    .where('source', '=', snapshot.source)
    .where('source_version', '=', snapshot.sourceVersion)
    .limit(1)
    .executeTakeFirst()
  if (known) return runId
  const issues = [
    ...(snapshot.rejected ?? []).map((issue) => ({ kind: 'REJECTED' as const, issue })),
    ...snapshot.skipped.map((issue) => ({ kind: 'SKIPPED' as const, issue })),
  ]
  for (let start = 0; start < issues.length; start += INSERT_BATCH) {
    await trx
      .insertInto('catalog_feed_issues')
      .values(
        issues.slice(start, start + INSERT_BATCH).map(({ kind, issue }) => issueRow(runId, snapshot, kind, issue)),
      )
      .execute()
  }
  return runId
}

function issueRow(runId: number, snapshot: SourceSnapshot, kind: 'REJECTED' | 'SKIPPED', issue: FeedIssue) {
  return {
    sync_run_id: runId,
    source: snapshot.source,
    source_version: snapshot.sourceVersion,
    kind,
    model: issue.model,
    field: issue.field,
    raw_value: issue.rawValue,
    reason: issue.reason,
  }
}

/** Pending rows follow the latest sync: a held move is (re)stated, one no longer held is dropped. */
async function recordHeld(
  trx: Transaction<CatalogDB>,
  snapshot: SourceSnapshot,
  held: Map<string, Held>,
  options: ApplyOptions,
  now: Date,
): Promise<void> {
  const scope = options.scope
  let stale = trx
    .updateTable('catalog_pending_changes')
    .set({ status: 'REJECTED', resolved_at: now })
    .where('source', '=', snapshot.source)
    .where('status', '=', 'PENDING')
  if (scope) stale = stale.where('provider', '=', scope.provider).where('model', '=', scope.model)
  // Confirming one held usage type decides that one only: the model's other held moves stay pending.
  if (scope?.usageType) stale = stale.where('usage_type', '=', scope.usageType)
  // An unreadable model's held move is neither confirmed nor contradicted by this sync.
  for (const { provider, model } of snapshot.unreadable ?? []) {
    stale = stale.where((eb) =>
      eb.not(eb.and([eb('model', '=', model), ...(provider === undefined ? [] : [eb('provider', '=', provider)])])),
    )
  }
  const heldKeys = [...held.values()].map(
    (h) => sql`(${h.provider}::text, ${h.model}::text, ${h.usageType}::text, ${h.timeWindow}::text)`,
  )
  if (heldKeys.length > 0) {
    stale = stale.where(sql<boolean>`(provider, model, usage_type, time_window) not in (${sql.join(heldKeys)})`)
  }
  await stale.execute()
  for (const change of held.values()) {
    await trx
      .insertInto('catalog_pending_changes')
      .values({
        source: snapshot.source,
        source_version: snapshot.sourceVersion,
        provider: change.provider,
        model: change.model,
        usage_type: change.usageType,
        time_window: change.timeWindow,
        old_unit_price: change.oldUnitPrice,
        new_unit_price: change.newUnitPrice,
        prices: JSON.stringify(change.prices.map(serializePrice)),
        observed_at: options.observedAt,
        status: 'PENDING',
      })
      .onConflict((oc) =>
        oc
          .columns(['source', 'provider', 'model', 'usage_type', 'time_window'])
          .where('status', '=', 'PENDING')
          .doUpdateSet((eb) => ({
            source_version: eb.ref('excluded.source_version'),
            old_unit_price: eb.ref('excluded.old_unit_price'),
            new_unit_price: eb.ref('excluded.new_unit_price'),
            prices: eb.ref('excluded.prices'),
          })),
      )
      .execute()
  }
}
