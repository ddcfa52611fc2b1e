/** Public price changes held because they moved more than 10× in one sync: listed, confirmed or rejected. */
import { resolvePendingChange as resolveHeld } from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Db } from '../db/database.ts'
import type { CatalogWriter } from './applied.ts'
import { listPendingChanges } from './repository.ts'
import type { PendingChangeRow } from './types.ts'

export function pendingChanges(db: Db): Promise<PendingChangeRow[]> {
  return listPendingChanges(db)
}

/** Confirm (apply) or reject a held price change; null when there is no such pending change. */
export async function resolvePendingChange(
  { db, clock, writer }: { db: Db; clock: Clock; writer: CatalogWriter },
  id: number,
  decision: 'CONFIRM' | 'REJECT',
): Promise<PendingChangeRow | null> {
  const resolved = await resolveHeld(db, id, decision, clock.now())
  if (!resolved) return null
  if (resolved.summary) await writer.afterApply(resolved.summary)
  return resolved.change as PendingChangeRow
}
