import type { ReportingProvider } from '../db/types.ts'
import { badInput } from '../shared/errors.ts'
import { ProviderHttpError } from './clients.ts'
import {
  anthropicCostRows,
  anthropicUsageRows,
  bucketKey,
  contentHash,
  mergeRows,
  openaiCostRows,
  openaiUsageRows,
  openrouterCreditRows,
  openrouterGenerationRows,
  ReportShapeError,
  type ReportedRow,
} from './normalize.ts'
import type { RaiseAlerts } from './alerts.ts'
import { checkRange, dayStart, DAY, type ReconciliationParts } from './parts.ts'
import * as repo from './repository.ts'
import type { ImportSummary, ReconciliationService } from './types.ts'

/** Generations looked up per import at most (each is one request). */
const MAX_GENERATIONS = 5_000

/** Imports one provider's reports for one tenant; a provider's refusal is the summary's error, not a throw. */
export type ImportOne = (tenantId: string, provider: ReportingProvider, from: Date, to: Date) => Promise<ImportSummary>

export function importer(parts: ReconciliationParts): ImportOne {
  const { db, clock, logger } = parts.deps
  const { clients } = parts
  /** Everything the provider reports for [from, to), normalized; throws ProviderHttpError / ReportShapeError. */
  async function fetchReports(tenantId: string, provider: ReportingProvider, key: string, from: Date, to: Date) {
    const rows: ReportedRow[] = []
    if (provider === 'openai') {
      for await (const page of clients.openaiCompletions(key, from, to)) rows.push(...openaiUsageRows(page))
      for await (const page of clients.openaiCosts(key, from, to)) rows.push(...openaiCostRows(page))
    } else if (provider === 'anthropic') {
      for await (const page of clients.anthropicUsage(key, from, to)) rows.push(...anthropicUsageRows(page))
      for await (const page of clients.anthropicCosts(key, from, to)) rows.push(...anthropicCostRows(page))
    } else {
      const ids = await repo.openrouterGenerationIds(db, tenantId, from, to)
      const known = await repo.importedGenerationIds(db, tenantId, ids)
      for (const id of ids.filter((i) => !known.has(i)).slice(0, MAX_GENERATIONS)) {
        const generation = await clients.openrouterGeneration(key, id)
        if (generation) rows.push(...openrouterGenerationRows(generation))
      }
      rows.push(...openrouterCreditRows(await clients.openrouterKey(key), clock.now()))
    }
    return mergeRows(rows)
  }

  /** Stores what changed: a new bucket as revision 1, a changed one as the next revision, nothing else. */
  async function store(tenantId: string, provider: ReportingProvider, rows: readonly ReportedRow[]) {
    const counts = { inserted: 0, revised: 0, unchanged: 0 }
    if (rows.length === 0) return counts
    const starts = rows.map((r) => r.bucketStart.getTime())
    const now = clock.now()
    await db.transaction().execute(async (trx) => {
      await repo.lockImport(trx, tenantId, provider)
      const latest = new Map(
        (
          await repo.latestRevisions(
            trx,
            tenantId,
            provider,
            new Date(Math.min(...starts)),
            new Date(Math.max(...starts) + 1),
          )
        ).map((r) => [
          bucketKey({
            source: r.source,
            bucketStart: new Date(r.bucket_start),
            bucketWidth: r.bucket_width,
            model: r.model,
            usageType: r.usage_type,
            line: r.line,
          }),
          r,
        ]),
      )
      const fresh: (ReportedRow & { revision: number; contentHash: string })[] = []
      for (const row of rows) {
        const hash = contentHash(row)
        const previous = latest.get(bucketKey(row))
        if (!previous) counts.inserted++
        else if (previous.content_hash === hash) {
          counts.unchanged++
          continue
        } else counts.revised++
        fresh.push({ ...row, revision: (previous?.revision ?? 0) + 1, contentHash: hash })
      }
      await repo.insertRevisions(trx, tenantId, provider, fresh, now)
    })
    return counts
  }

  return async function importOne(tenantId, provider, from, to) {
    const summary: ImportSummary = {
      provider,
      from,
      to,
      buckets: 0,
      inserted: 0,
      revised: 0,
      unchanged: 0,
      error: null,
    }
    const row = await repo.findAdminKey(db, tenantId, provider)
    if (!row) {
      summary.error = `no ${provider} admin key is set`
      return summary
    }
    try {
      const key = parts.requireBox().open(row.key_enc, parts.keyContext(tenantId, provider))
      const rows = await fetchReports(tenantId, provider, key, from, to)
      summary.buckets = rows.length
      Object.assign(summary, await store(tenantId, provider, rows))
      await repo.markImport(db, tenantId, provider, clock.now(), null)
    } catch (error) {
      if (!(error instanceof ProviderHttpError || error instanceof ReportShapeError)) throw error
      summary.error = `${provider}: ${error.message}`
      logger.warn('provider usage import failed', { tenantId, provider, error: error.message })
      await repo.markImport(db, tenantId, provider, clock.now(), summary.error.slice(0, 500))
    }
    return summary
  }
}

export function importUseCases(
  parts: ReconciliationParts,
  importOne: ImportOne,
  raiseAlerts: RaiseAlerts,
): Pick<ReconciliationService, 'importUsage'> {
  const { db, clock, config } = parts.deps
  return {
    async importUsage(tenant, options) {
      parts.requireBox()
      const now = clock.now()
      const to = options.to ?? now
      const from = options.from ?? new Date(dayStart(now).getTime() - config.RECONCILE_LOOKBACK_DAYS * DAY)
      checkRange(from, to)
      const alignedFrom = dayStart(from)
      const providers = options.provider
        ? [options.provider]
        : (await repo.listAdminKeys(db, tenant.id)).map((k) => k.provider)
      if (options.provider && !(await repo.findAdminKey(db, tenant.id, options.provider)))
        throw badInput(`no ${options.provider} admin key is set: setProviderAdminKey first`, 'provider')
      const summaries: ImportSummary[] = []
      for (const provider of providers) summaries.push(await importOne(tenant.id, provider, alignedFrom, to))
      await raiseAlerts(tenant.id, alignedFrom, to)
      return summaries
    },
  }
}
