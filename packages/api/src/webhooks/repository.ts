import type { Executor } from '../db/database.ts'
import type { WebhookDeliveryStatus, WebhookEndpointRow } from './db-types.ts'

/** SQL behind the webhook endpoints' update and rotation and the delivery log's pages. */

/** Deliveries with their event type and endpoint URL, for one tenant. */
export function selectDeliveryViews(executor: Executor, tenantId: string) {
  return executor
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_events as e', 'e.id', 'd.event_id')
    .innerJoin('webhook_endpoints as p', 'p.id', 'd.endpoint_id')
    .selectAll('d')
    .select(['e.type as event_type', 'p.url as url'])
    .where('d.tenant_id', '=', tenantId)
}

export interface DeliveryPosition {
  createdAt: Date
  id: string
}

/** One keyset page of the log, newest first on (created_at, id); `limit` rows after `after`. */
export function selectDeliveryPage(
  executor: Executor,
  tenantId: string,
  filter: {
    endpointId: string | null
    status: WebhookDeliveryStatus | null
    after: DeliveryPosition | null
    limit: number
  },
) {
  let q = selectDeliveryViews(executor, tenantId)
  if (filter.endpointId) q = q.where('d.endpoint_id', '=', filter.endpointId)
  if (filter.status) q = q.where('d.status', '=', filter.status)
  const after = filter.after
  if (after) q = q.where((eb) => eb(eb.refTuple('d.created_at', 'd.id'), '<', eb.tuple(after.createdAt, after.id)))
  return q.orderBy('d.created_at', 'desc').orderBy('d.id', 'desc').limit(filter.limit).execute()
}

/** The tenant's endpoint, locked for an update in the caller's transaction; undefined when not the tenant's. */
export function lockEndpoint(
  executor: Executor,
  tenantId: string,
  id: string,
): Promise<WebhookEndpointRow | undefined> {
  return executor
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst()
}

export async function countEnabledEndpoints(
  executor: Executor,
  tenantId: string,
  exceptId: string | null,
): Promise<number> {
  let q = executor
    .selectFrom('webhook_endpoints')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('enabled', '=', true)
  if (exceptId) q = q.where('id', '<>', exceptId)
  return Number((await q.executeTakeFirstOrThrow()).n)
}

export interface EndpointPatch {
  url?: string
  eventTypes?: readonly string[]
  description?: string | null
  enabled?: boolean
}

export function updateEndpointRow(
  executor: Executor,
  tenantId: string,
  id: string,
  patch: EndpointPatch,
  now: Date,
): Promise<WebhookEndpointRow> {
  return executor
    .updateTable('webhook_endpoints')
    .set({
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.eventTypes !== undefined ? { event_types: JSON.stringify(patch.eventTypes) } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.enabled === true
        ? { enabled: true, disabled_at: null }
        : patch.enabled === false
          ? { enabled: false, disabled_at: now }
          : {}),
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow()
}

/** Nothing more goes to a disabled endpoint, retries included: its pending deliveries become DEAD. */
export async function killPendingDeliveries(executor: Executor, endpointId: string): Promise<void> {
  await executor
    .updateTable('webhook_deliveries')
    .set({ status: 'DEAD', last_error: 'endpoint disabled' })
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'PENDING')
    .execute()
}

/**
 * Swaps in a new secret in one statement: the current one becomes the previous (SET reads the row as
 * it was), signing beside the new one until `previousExpiresAt`. A previous secret from an earlier
 * rotation is dropped. With `previousExpiresAt` null the old secret stops signing at once.
 */
export function rotateEndpointSecret(
  executor: Executor,
  tenantId: string,
  id: string,
  secret: string,
  previousExpiresAt: Date | null,
  now: Date,
): Promise<WebhookEndpointRow | undefined> {
  return executor
    .updateTable('webhook_endpoints')
    .set((eb) => ({
      previous_secret: previousExpiresAt ? eb.ref('secret') : null,
      previous_secret_expires_at: previousExpiresAt,
      secret,
      secret_rotated_at: now,
    }))
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst()
}
