/**
 * What the catalog's queries show (priceHistory, priceChangeLog, catalogSources, sync runs, feed
 * issues, conflicts, negotiated prices), with their arguments checked. Reads only.
 */
import type { Db } from '../db/database.ts'
import { keysetCursor, pageOf, pageSize } from '../shared/pagination.ts'
import { badInput, userError } from '../shared/errors.ts'
import * as repo from './repository.ts'
import type { CatalogLookup } from './lookup.ts'

const MAX_NAME_LENGTH = 255

/** A provider, model or source name as given: trimmed, 1-255 characters, null when absent. */
export function checkName(value: string | null | undefined, field: string): string | null {
  if (value === null || value === undefined) return null
  const trimmed = value.trim()
  if (trimmed.length === 0 || trimmed.length > MAX_NAME_LENGTH)
    throw badInput(`${field} must be 1-${MAX_NAME_LENGTH} characters`, field)
  return trimmed
}

/** An id argument of a list (a bigint identity), null when absent. */
function idArg(value: string | number | null | undefined, field: string): number | null {
  if (value === null || value === undefined) return null
  if (!/^[1-9]\d{0,14}$/.test(String(value))) throw badInput(`${field} must be an id from this list`, field)
  return Number(value)
}

/** Every catalog list: `first` 1-500, 100 unless given (the one paging rule, shared/pagination.ts). */
const page = (first: number | null | undefined) => pageSize(first, { defaultFirst: 100 })

/**
 * The catalog ids for what the caller typed: aliases and dated names resolve like usage events
 * do (gpt-4o-2024-08-06 → openai/gpt-4o); a name no source knows is looked up as given (lowercased,
 * like every catalog id), so the answer is simply empty.
 */
async function catalogIds(
  lookup: CatalogLookup,
  provider: string | null,
  model: string | null,
  tenantId?: string,
): Promise<{ provider: string | null; model: string | null }> {
  if (model === null) return { provider: provider?.toLowerCase() ?? null, model: null }
  await lookup.ensureFresh()
  const resolved = lookup.resolve(model, provider, tenantId)
  return resolved ?? { provider: provider?.toLowerCase() ?? null, model: model.toLowerCase() }
}

/**
 * priceChangeLogPage's cursors: the one keyset codec, positions (changed_at, id). The log is
 * append-only and its ids grow with it, so pages continue after the id alone.
 */
const changeLogCursor = keysetCursor('priceChangeLogPage')

export interface NameFilter {
  provider?: string | null
  model?: string | null
}

export function createCatalogListings({ db, lookup }: { db: Db; lookup: CatalogLookup }) {
  const ids = (filter: NameFilter, tenantId?: string) =>
    catalogIds(lookup, checkName(filter.provider, 'provider'), checkName(filter.model, 'model'), tenantId)

  const listings = {
    /** Prices in force at `at` as this tenant is billed (its negotiated prices in place of public ones). */
    async providerPrices(tenantId: string, filter: NameFilter & { at: Date }) {
      return lookup.listPricesAt({ ...(await ids(filter, tenantId)), at: filter.at, tenantId })
    },

    /** Every row ever known for one model (public and this tenant's own), oldest first. */
    async priceHistory(tenantId: string, filter: { provider: string; model: string }) {
      const found = await ids(filter, tenantId)
      return repo.priceHistory(db, found.provider!, found.model!, tenantId)
    },

    /** Applied changes, newest first (public and this tenant's own); `before` pages back by id. */
    async priceChangeLog(
      tenantId: string,
      filter: NameFilter & { first?: number | null; before?: string | number | null },
    ) {
      const found = await ids(filter)
      let before: number | null = null
      if (filter.before) {
        if (!/^\d{1,15}$/.test(String(filter.before))) throw badInput('before must be an id from this log', 'before')
        before = Number(filter.before)
      }
      return repo.listPriceChanges(db, { tenantId, ...found, before, limit: page(filter.first) })
    },

    /** The same log in Relay pages, newest first (`first` 1-500, default 100; `after` an endCursor). */
    async priceChangeLogPage(tenantId: string, filter: NameFilter & { first?: number | null; after?: string | null }) {
      const first = page(filter.first)
      const position = filter.after != null ? changeLogCursor.decode(filter.after) : null
      if (position && !/^[1-9]\d{0,14}$/.test(position.id))
        throw badInput('after is not a cursor returned by priceChangeLogPage', 'after')
      const found = await ids(filter)
      const rows = await repo.listPriceChanges(db, {
        tenantId,
        ...found,
        before: position && Number(position.id),
        limit: first + 1,
      })
      return pageOf(rows, { first, after: position }, (row) =>
        changeLogCursor.encode({ at: new Date(row.changed_at), id: String(row.id) }),
      )
    },

    /** This tenant's negotiated prices (whole history), oldest first. */
    async priceOverrides(tenantId: string, filter: NameFilter) {
      return repo.tenantPrices(db, tenantId, await ids(filter))
    },

    /** This tenant's negotiated rows of one usage type (what setPriceOverride answers with). */
    negotiatedRows(tenantId: string, filter: { provider: string; model: string; usageType: string }) {
      return repo.tenantPrices(db, tenantId, filter)
    },

    conflicts(at: Date) {
      return repo.listCatalogConflicts(db, at)
    },

    sourceStates() {
      return repo.listSourceStates(db)
    },

    async latestSyncRun(source: string) {
      return (await repo.latestSyncRuns(db, [source])).get(source) ?? null
    },

    async syncRun(id: number | null | undefined) {
      return id ? ((await repo.syncRunById(db, id)) ?? null) : null
    },

    syncRuns(filter: { source?: string | null; first?: number | null; before?: string | number | null }) {
      return repo.listSyncRuns(db, {
        source: checkName(filter.source, 'source'),
        before: idArg(filter.before, 'before'),
        limit: page(filter.first),
      })
    },

    /** A run's feed issues: those of its feed version, in id order; `after` pages forward. */
    runIssues(
      run: repo.SyncRunRow,
      filter: { kind?: 'REJECTED' | 'SKIPPED' | null; first?: number | null; after?: string | number | null },
    ) {
      return repo.listFeedIssues(db, {
        source: run.source,
        sourceVersion: run.source_version,
        kind: filter.kind,
        after: idArg(filter.after, 'after'),
        limit: page(filter.first),
      })
    },

    /** Feed issues of a source or a sync run, in id order; `after` pages forward. */
    async feedIssues(filter: {
      source?: string | null
      syncRunId?: string | number | null
      kind?: 'REJECTED' | 'SKIPPED' | null
      first?: number | null
      after?: string | number | null
    }) {
      const runId = idArg(filter.syncRunId, 'syncRunId')
      const run = runId === null ? null : await repo.syncRunById(db, runId)
      if (runId !== null && !run) throw userError('NOT_FOUND', 'no such sync run', 'syncRunId')
      const source = checkName(filter.source, 'source')
      if (run && source && run.source !== source) return []
      return repo.listFeedIssues(db, {
        source: run?.source ?? source,
        sourceVersion: run?.source_version,
        kind: filter.kind,
        after: idArg(filter.after, 'after'),
        limit: page(filter.first),
      })
    },
  }
  return listings
}

export type CatalogListings = ReturnType<typeof createCatalogListings>
