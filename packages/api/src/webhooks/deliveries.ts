/** The tenant's delivery log: listed, paged with an opaque cursor, attempts, and replay of a DEAD delivery. */
import type { Db } from '../db/database.ts'
import type { Tenant } from '../db/types.ts'
import { badInput, userError } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import type { WebhookAttemptRow, WebhookDeliveryRow, WebhookDeliveryStatus } from './db-types.ts'
import * as repo from './repository.ts'

export const DELIVERY_PAGE = { defaultFirst: 50, maxFirst: 500 } as const

export interface DeliveryView extends WebhookDeliveryRow {
  event_type: string
  url: string
}

export type DeliveryPage = Page<DeliveryView>

export interface DeliveryFilter {
  endpointId?: string | null
  status?: WebhookDeliveryStatus | null
  first?: number | null
}

/** The delivery log's cursors: the one keyset codec (shared/pagination.ts), positions (created_at, id). */
const deliveryCursor = keysetCursor('webhookDeliveriesPage')
export const encodeDeliveryCursor = (p: repo.DeliveryPosition): string =>
  deliveryCursor.encode({ at: p.createdAt, id: p.id })
export function decodeDeliveryCursor(cursor: string): repo.DeliveryPosition {
  const { at, id } = deliveryCursor.decode(cursor)
  return { createdAt: at, id }
}

/** Newest first; `first` 1-500, default 50. */
export function deliveries(db: Db, tenant: Tenant, filter: DeliveryFilter): Promise<DeliveryView[]> {
  const first = filter.first ?? 50
  if (first < 1 || first > 500) throw badInput('first must be between 1 and 500', 'first')
  return repo.listDeliveries(
    db,
    tenant.id,
    { endpointId: filter.endpointId ?? null, status: filter.status ?? null },
    first,
  )
}

/** The log in keyset pages, newest first on (created_at, id). */
export async function deliveryPage(
  db: Db,
  tenant: Tenant,
  filter: DeliveryFilter & { after?: string | null },
): Promise<DeliveryPage> {
  const first = pageSize(filter.first, DELIVERY_PAGE)
  const after = filter.after != null ? decodeDeliveryCursor(filter.after) : null
  // One row more than asked tells whether there is a next page.
  const rows = await repo.selectDeliveryPage(db, tenant.id, {
    endpointId: filter.endpointId ?? null,
    status: filter.status ?? null,
    after,
    limit: first + 1,
  })
  return pageOf(rows, { first, after }, (node) =>
    encodeDeliveryCursor({ createdAt: new Date(node.created_at), id: node.id }),
  )
}

export async function attemptsOf(db: Db, ids: readonly string[]): Promise<Map<string, WebhookAttemptRow[]>> {
  const rows = ids.length ? await repo.attemptsOf(db, ids) : []
  const byId = new Map<string, WebhookAttemptRow[]>(ids.map((id) => [id, []]))
  for (const row of rows) byId.get(row.delivery_id)?.push(row)
  return byId
}

/** A DEAD delivery goes back to PENDING for another full round of attempts. */
export async function replay(
  db: Db,
  tenant: Tenant,
  id: string,
  now: Date,
  attemptLimit: number,
): Promise<DeliveryView> {
  const replayed = await repo.replayDead(db, tenant.id, id, now, attemptLimit)
  const view = await repo.findDeliveryView(db, tenant.id, id)
  if (!view) throw userError('NOT_FOUND', `no webhook delivery "${id}"`, 'id')
  if (!replayed) {
    throw badInput(
      view.status === 'DEAD'
        ? 'the endpoint of this delivery is disabled'
        : `only a DEAD delivery can be replayed; this one is ${view.status}`,
      'id',
    )
  }
  return view
}
