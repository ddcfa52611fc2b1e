/**
 * The tenant's view of its credit pushes (credit grants, grant voids, minimum true-ups): listing
 * them with their status and Stripe's reason, and retrying the FAILED ones.
 */
import type { Db } from '../db/database.ts'
import type { StripeCreditPushStatus } from '../db/column-types.ts'
import { badInput } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import {
  listCreditPushes,
  lockFailedCreditPushes,
  markCreditStatesDirty,
  requeueCreditPush,
  supersedeCreditPush,
  type CreditPushRow,
} from './repository/credit-pushes.ts'

export interface CreditPushFilter {
  status?: StripeCreditPushStatus | null
  customerId?: string | null
  first?: number | null
}

/** BAD_USER_INPUT (field "customerId") unless absent or 1-255 characters. */
function checkCustomerId(customerId: string | null | undefined): void {
  if (customerId != null && (customerId.length === 0 || customerId.length > 255))
    throw badInput('customerId must be 1-255 characters', 'customerId')
}

export function creditPushes(db: Db, tenantId: string, filter: CreditPushFilter): Promise<CreditPushRow[]> {
  const first = filter.first ?? 100
  if (first < 1 || first > 500) throw badInput('first must be 1-500', 'first')
  checkCustomerId(filter.customerId)
  return listCreditPushes(db, tenantId, { status: filter.status ?? null, customerId: filter.customerId ?? null }, first)
}

/** stripeCreditPushesPage's cursors: the one keyset codec, positions (created_at, identifier). */
const creditPushCursor = keysetCursor('stripeCreditPushesPage')

/** Credit pushes in Relay pages, newest first (`first` 1-500, default 50; `after` an endCursor). */
export async function creditPushPage(
  db: Db,
  tenantId: string,
  filter: Omit<CreditPushFilter, 'first'> & { first?: number | null; after?: string | null },
): Promise<Page<CreditPushRow>> {
  const first = pageSize(filter.first)
  checkCustomerId(filter.customerId)
  const position = filter.after != null ? creditPushCursor.decode(filter.after) : null
  const rows = await listCreditPushes(
    db,
    tenantId,
    {
      status: filter.status ?? null,
      customerId: filter.customerId ?? null,
      after: position && { createdAt: position.at, identifier: position.id },
    },
    first + 1,
  )
  return pageOf(rows, { first, after: position }, (push) =>
    creditPushCursor.encode({ at: new Date(push.created_at), id: push.identifier }),
  )
}

/**
 * Retries FAILED credit pushes, all or none. One that gave up after its attempts (Stripe may have
 * made the grant or item, its answer lost) goes PENDING again under its own identifier, looked up
 * by metadata before a new call. One Stripe refused becomes SUPERSEDED and its (customer, period)
 * is planned again from the ledger, so what is sent is what is owed now (never the refused call twice).
 */
export async function retryCreditPushes(
  db: Db,
  tenantId: string,
  identifiers: readonly string[],
  now: Date,
): Promise<CreditPushRow[]> {
  if (identifiers.length === 0 || identifiers.length > 500)
    throw badInput('identifiers must list 1-500 credit pushes', 'identifiers')
  return db.transaction().execute(async (trx) => {
    const failed = await lockFailedCreditPushes(trx, tenantId, identifiers)
    if (failed.length !== new Set(identifiers).size)
      throw badInput('every identifier must name a FAILED credit push of this tenant', 'identifiers')
    const retried: CreditPushRow[] = []
    for (const push of failed)
      retried.push(push.gave_up ? await requeueCreditPush(trx, push, now) : await supersedeCreditPush(trx, push))
    const states = new Map(
      failed
        .filter((p) => !p.gave_up)
        .map((p) => [
          `${p.customer_id}\u0001${new Date(p.period_start).getTime()}`,
          { tenant_id: tenantId, customer_id: p.customer_id, period_start: new Date(p.period_start) },
        ]),
    )
    await markCreditStatesDirty(trx, [...states.values()])
    return retried
  })
}
