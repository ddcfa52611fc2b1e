/**
 * Syncing public price sources: the bundled genai-prices data, a fetched source (retried with
 * backoff), and a fetched source with its outcome recorded for catalogSources (a poll's, the
 * syncCatalogSource mutation's).
 */
import {
  loadBundledGenaiPrices,
  loadPublicSource,
  recordSyncFailure,
  recordSyncSuccess,
  syncRunSummary,
  withRetry,
  type CatalogSyncSummary,
  type PublicSourceName,
} from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import type { CatalogWriter } from './applied.ts'
import type { CatalogLookup } from './lookup.ts'
import type { CatalogService, SyncSummary } from './types.ts'

export interface SyncDeps {
  db: Db
  clock: Clock
  logger: Logger
  config?: Config
  lookup: CatalogLookup
  writer: CatalogWriter
}

export type SyncOptions = NonNullable<Parameters<CatalogService['syncSource']>[1]>

const BACKOFF_BASE_MS = 30_000

/** Where a public source is read from, by the configuration. */
function sourceLocation(config: Config | undefined, source: PublicSourceName): string | undefined {
  if (!config) return undefined
  if (source === 'openrouter') return config.OPENROUTER_MODELS_URL
  if (source === 'litellm') return config.LITELLM_PRICES_URL
  if (source === 'genai-prices-remote') return config.GENAI_PRICES_URL
  return undefined
}

/** A source corrected the already-billed past: say so, since only repriceUsage fixes events priced there. */
function logCorrections(logger: Logger, summary: CatalogSyncSummary): void {
  const corrections = summary.corrections ?? []
  if (corrections.length === 0) return
  const from = new Date(Math.min(...corrections.map((c) => c.from.getTime())))
  logger.warn('catalog source corrected the past; run repriceUsage for events since then', {
    source: summary.source,
    sourceVersion: summary.sourceVersion,
    from: from.toISOString(),
    timelines: corrections.map((c) => `${c.provider}/${c.model} ${c.usageType} from ${c.from.toISOString()}`),
  })
}

/** Load the price data bundled in @pydantic/genai-prices into the catalog (append-only; a re-run writes nothing). */
export async function syncBundled({ clock, logger, lookup, writer }: SyncDeps): Promise<SyncSummary> {
  const source = await loadBundledGenaiPrices()
  const summary = await writer.apply(source, { observedAt: clock.now() })
  logCorrections(logger, summary)
  logger.info('catalog synced', {
    ...syncRunSummary(summary, source),
    rejected: undefined,
    rowsInCatalog: lookup.rows(),
  })
  return syncRunSummary(summary, source)
}

/** Fetch one public source (retried with backoff) and apply it; a failure throws and changes nothing. */
export async function syncSource(
  { clock, logger, config, writer }: SyncDeps,
  name: PublicSourceName,
  options: SyncOptions = {},
): Promise<SyncSummary> {
  const location = options.location ?? sourceLocation(config, name)
  const source = await withRetry(
    () => loadPublicSource(name, location, { timeoutMs: config?.CATALOG_SOURCE_TIMEOUT_MS }),
    {
      attempts: options.attempts ?? 3,
      baseMs: options.retryBaseMs ?? 1_000,
      onRetry: (error, attempt, delayMs) =>
        logger.warn('catalog source failed; retrying', { source: name, attempt, delayMs, error: String(error) }),
    },
  )
  for (const rejected of source.rejected ?? []) logger.warn('catalog row rejected', { source: name, ...rejected })
  // A correction of the past: from `correctFrom` on the catalog follows the source, even where it had a price.
  const observedAt = options.correctFrom && options.correctFrom < clock.now() ? options.correctFrom : clock.now()
  const summary = await writer.apply(source, { observedAt, dryRun: options.dryRun })
  logCorrections(logger, summary)
  logger.info('catalog synced', {
    ...syncRunSummary(summary, source),
    rejected: source.rejected?.length ?? 0,
    correctFrom: options.correctFrom,
  })
  return syncRunSummary(summary, source)
}

/**
 * One sync run whose outcome catalogSources shows: the poller's, the syncCatalogSource mutation's
 * and (through the same catalog-sync functions) the CLI's. A dry run records nothing.
 */
export async function recordedSync(
  deps: SyncDeps,
  name: PublicSourceName,
  attemptedAt: Date,
  options: SyncOptions = {},
): Promise<SyncSummary> {
  const { db, clock, logger, config } = deps
  const intervalMs = config?.CATALOG_SYNC_INTERVAL ?? 3_600_000
  try {
    const summary = await syncSource(deps, name, options)
    if (!options.dryRun) {
      await recordSyncSuccess(db, name, {
        attemptedAt,
        succeededAt: clock.now(),
        summary: { ...summary },
        nextAttemptAt: new Date(attemptedAt.getTime() + intervalMs),
      })
    }
    return summary
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const { failures, nextAttemptAt } = await recordSyncFailure(db, name, {
      attemptedAt,
      error: message,
      backoff: { baseMs: BACKOFF_BASE_MS, maxMs: intervalMs },
    })
    logger.error('catalog source failed; the catalog is unchanged for it', {
      source: name,
      failures,
      retryInMs: nextAttemptAt.getTime() - attemptedAt.getTime(),
      error: message,
    })
    throw error
  }
}
