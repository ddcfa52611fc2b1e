/** The tenant's view of its meter events: listing them, and re-sending the FAILED ones. */
import type { Db } from '../db/database.ts'
import { badInput } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import type { StripePushRow, StripePushStatus } from './db-types.ts'
import {
  insertPushReturning,
  listExpired,
  listPushes,
  lockFailedPushes,
  selectPushPage,
  markSuperseded,
  requeueGaveUp,
  takeNextSeq,
} from './repository/pushes.ts'
import { pushIdentifier } from './units.ts'

export interface PushFilter {
  status?: StripePushStatus | null
  customerId?: string | null
  first?: number | null
}

export function pushes(db: Db, tenantId: string, filter: PushFilter): Promise<StripePushRow[]> {
  const first = filter.first ?? 100
  if (first < 1 || first > 500) throw badInput('first must be 1-500', 'first')
  return listPushes(db, tenantId, filter, first)
}

/** stripePushesPage's cursors: the one keyset codec, positions (created_at, identifier). */
const pushCursor = keysetCursor('stripePushesPage')

/** Meter events in Relay pages, newest first (`first` 1-500, default 50; `after` an endCursor). */
export async function pushPage(
  db: Db,
  tenantId: string,
  filter: Omit<PushFilter, 'first'> & { first?: number | null; after?: string | null },
): Promise<Page<StripePushRow>> {
  const first = pageSize(filter.first)
  const position = filter.after != null ? pushCursor.decode(filter.after) : null
  const rows = await selectPushPage(db, tenantId, {
    status: filter.status ?? null,
    customerId: filter.customerId ?? null,
    after: position && { createdAt: position.at, identifier: position.id },
    limit: first + 1,
  })
  return pageOf(rows, { first, after: position }, (push) =>
    pushCursor.encode({ at: new Date(push.created_at), id: push.identifier }),
  )
}

/** EXPIRED pushes, latest window first; `first` is clamped to 1-500 (default 100). */
export function expiredUsage(db: Db, tenantId: string, first: number | null | undefined): Promise<StripePushRow[]> {
  return listExpired(db, tenantId, Math.min(Math.max(first ?? 100, 1), 500))
}

/**
 * Re-sends FAILED pushes, all or none. One Stripe refused goes out under a new identifier (Stripe
 * did not count it) and becomes SUPERSEDED; one that gave up goes PENDING again under its own
 * identifier (Stripe may hold it and de-duplicates on it), with a new Idempotency-Key.
 */
export async function retryPushes(
  db: Db,
  tenantId: string,
  identifiers: readonly string[],
  now: Date,
): Promise<StripePushRow[]> {
  if (identifiers.length === 0 || identifiers.length > 500)
    throw badInput('identifiers must list 1-500 pushes', 'identifiers')
  return db.transaction().execute(async (trx) => {
    const failed = await lockFailedPushes(trx, tenantId, identifiers)
    if (failed.length !== new Set(identifiers).size)
      throw badInput('every identifier must name a FAILED push of this tenant', 'identifiers')
    const created: StripePushRow[] = []
    for (const push of failed) {
      if (push.gave_up) {
        created.push(await requeueGaveUp(trx, push, now))
        continue
      }
      const seq = await takeNextSeq(trx, {
        tenant_id: tenantId,
        customer_id: push.customer_id,
        dimension: push.dimension,
      })
      const retry = await insertPushReturning(trx, {
        ...push,
        identifier: pushIdentifier(tenantId, push.customer_id, push.dimension, new Date(push.window_start), seq),
        seq,
        status: 'PENDING',
        attempts: 0,
        last_error: null,
        next_attempt_at: now,
        created_at: now,
        sent_at: null,
        retry_of: push.identifier,
        idempotency_key: null,
        gave_up: false,
        manual_retries: 0,
      })
      await markSuperseded(trx, push.identifier)
      created.push(retry)
    }
    return created
  })
}
