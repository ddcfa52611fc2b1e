/**
 * Every catalog write goes through here: the change is applied (catalog-sync, under its sync lock),
 * then, after commit, the snapshot is refreshed, each change is published (priceChange,
 * tenantPriceChange) and the listeners (late pricing, price.change webhooks) follow.
 */
import {
  applyCatalogSnapshot,
  type AppliedPriceChange,
  type ApplyOptions,
  type CatalogSyncSummary,
  type SourceSnapshot,
} from '@burnrate/catalog-sync'
import type { Db } from '../db/database.ts'
import type { Logger } from '../logger.ts'
import { priceChangeEvent, type BurnratePubSub } from '../pubsub.ts'
import type { CatalogLookup } from './lookup.ts'
import type { CatalogAppliedListener } from './types.ts'

export interface CatalogWriter {
  /** Applies a snapshot (a dry run writes nothing and notifies no one). */
  apply(snapshot: SourceSnapshot, options: ApplyOptions): Promise<CatalogSyncSummary>
  /** After a commit made elsewhere (a held change confirmed): publish and notify. Never throws. */
  afterApply(summary: CatalogSyncSummary): Promise<void>
  /** Lets listeners catch up when another process changed the catalog (once per version seen). */
  catchUp(): Promise<void>
  onApplied(listener: CatalogAppliedListener): void
}

export function createCatalogWriter({
  db,
  logger,
  pubsub,
  lookup,
}: {
  db: Db
  logger: Logger
  pubsub?: BurnratePubSub
  lookup: CatalogLookup
}): CatalogWriter {
  const listeners: CatalogAppliedListener[] = []
  /** The snapshot version listeners last ran at; -1 makes the next catch-up run them over everything. */
  let lastAppliedVersion = -1

  async function notifyListeners(changes: readonly AppliedPriceChange[]): Promise<void> {
    lastAppliedVersion = lookup.version()
    for (const listener of listeners) {
      try {
        await listener(changes)
      } catch (error) {
        // The next poll runs every listener again over the whole catalog (e.g. the late-pricing sweep).
        lastAppliedVersion = -1
        logger.error('catalog change listener failed; the next catalog poll runs it again', {
          error: error instanceof Error ? error.message : String(error),
        })
      }
    }
  }

  const writer: CatalogWriter = {
    async apply(snapshot, options) {
      const summary = await applyCatalogSnapshot(db, snapshot, options)
      if (!options.dryRun) await writer.afterApply(summary)
      return summary
    },

    async afterApply(summary) {
      await lookup.ensureFresh()
      for (const change of summary.changes ?? []) {
        const event = priceChangeEvent(change)
        if (change.tenantId) pubsub?.publish('tenantPriceChange', change.tenantId, event)
        else pubsub?.publish('priceChange', event)
      }
      if ((summary.changes?.length ?? 0) > 0) await notifyListeners(summary.changes!)
    },

    async catchUp() {
      await lookup.ensureFresh()
      if (lookup.version() !== lastAppliedVersion) await notifyListeners([])
    },

    onApplied(listener) {
      listeners.push(listener)
    },
  }
  return writer
}
