/** The webhooks domain's SQL: endpoints, events and their deliveries, attempts, and the dispatcher's leases. */
import { sql, type Insertable } from 'kysely'
import type { Executor } from '../db/database.ts'
import type {
  WebhookAttemptRow,
  WebhookAttemptTable,
  WebhookDeliveryStatus,
  WebhookDeliveryTable,
  WebhookEndpointRow,
  WebhookEndpointTable,
  WebhookEventTable,
} from './db-types.ts'

// --- Events and their deliveries ---

/** The ids of the tenant's enabled endpoints subscribed to `type`. */
export async function subscribedEndpoints(trx: Executor, tenantId: string, type: string): Promise<string[]> {
  const rows = await trx
    .selectFrom('webhook_endpoints')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('enabled', '=', true)
    .where(sql<boolean>`event_types ? ${type}`)
    .execute()
  return rows.map((r) => r.id)
}

/** The tenants with an enabled endpoint subscribed to `type`. */
export async function subscribedTenants(db: Executor, type: string): Promise<string[]> {
  const rows = await db
    .selectFrom('webhook_endpoints')
    .select('tenant_id')
    .distinct()
    .where('enabled', '=', true)
    .where(sql<boolean>`event_types ? ${type}`)
    .execute()
  return rows.map((r) => r.tenant_id)
}

/** Stores an event unless one with its (tenant, dedupe key) exists; its id, or undefined when it existed. */
export async function insertEvent(trx: Executor, event: Insertable<WebhookEventTable>): Promise<string | undefined> {
  const inserted = await trx
    .insertInto('webhook_events')
    .values(event)
    .onConflict((oc) => oc.columns(['tenant_id', 'dedupe_key']).doNothing())
    .returning('id')
    .executeTakeFirst()
  return inserted?.id
}

export async function insertDeliveries(
  trx: Executor,
  deliveries: readonly Insertable<WebhookDeliveryTable>[],
): Promise<void> {
  await trx
    .insertInto('webhook_deliveries')
    .values([...deliveries])
    .execute()
}

// --- Endpoints ---

export function insertEndpoint(db: Executor, endpoint: Insertable<WebhookEndpointTable>): Promise<WebhookEndpointRow> {
  return db.insertInto('webhook_endpoints').values(endpoint).returningAll().executeTakeFirstOrThrow()
}

export function listEndpoints(db: Executor, tenantId: string): Promise<WebhookEndpointRow[]> {
  return db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('created_at')
    .orderBy('id')
    .execute()
}

export function disableEndpointRow(
  db: Executor,
  tenantId: string,
  id: string,
  now: Date,
): Promise<WebhookEndpointRow | undefined> {
  return db
    .updateTable('webhook_endpoints')
    .set({ enabled: false, disabled_at: now })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst()
}

// --- The delivery log ---

/** Deliveries with their event type and endpoint URL, for one tenant. */
function selectDeliveryViews(executor: Executor, tenantId: string) {
  return executor
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_events as e', (j) =>
      j.onRef('e.id', '=', 'd.event_id').onRef('e.tenant_id', '=', 'd.tenant_id'),
    )
    .innerJoin('webhook_endpoints as p', (j) =>
      j.onRef('p.id', '=', 'd.endpoint_id').onRef('p.tenant_id', '=', 'd.tenant_id'),
    )
    .selectAll('d')
    .select(['e.type as event_type', 'p.url as url'])
    .where('d.tenant_id', '=', tenantId)
}

/** Newest first on (created_at, id). */
export function listDeliveries(
  executor: Executor,
  tenantId: string,
  filter: { endpointId: string | null; status: WebhookDeliveryStatus | null },
  limit: number,
) {
  let q = selectDeliveryViews(executor, tenantId)
  if (filter.endpointId) q = q.where('d.endpoint_id', '=', filter.endpointId)
  if (filter.status) q = q.where('d.status', '=', filter.status)
  return q.orderBy('d.created_at', 'desc').orderBy('d.id', 'desc').limit(limit).execute()
}

export function findDeliveryView(executor: Executor, tenantId: string, id: string) {
  return selectDeliveryViews(executor, tenantId).where('d.id', '=', id).executeTakeFirst()
}

/** The attempts of these deliveries, in attempt order. */
export function attemptsOf(db: Executor, deliveryIds: readonly string[]): Promise<WebhookAttemptRow[]> {
  return db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('delivery_id', 'in', [...deliveryIds])
    .orderBy('attempt')
    .execute()
}

/**
 * A DEAD delivery of an enabled endpoint back to PENDING for `attemptLimit` more attempts;
 * false when it is not DEAD or its endpoint is disabled (or it is not the tenant's).
 */
export async function replayDead(
  db: Executor,
  tenantId: string,
  id: string,
  now: Date,
  attemptLimit: number,
): Promise<boolean> {
  const updated = await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({ status: 'PENDING', next_attempt_at: now, attempt_limit: eb('attempts', '+', attemptLimit) }))
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('status', '=', 'DEAD')
    .where('endpoint_id', 'in', (eb) => eb.selectFrom('webhook_endpoints').select('id').where('enabled', '=', true))
    .returning('id')
    .executeTakeFirst()
  return updated !== undefined
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

// --- The dispatcher ---

/**
 * Claims up to `limit` due PENDING deliveries (FOR UPDATE SKIP LOCKED: another process skips them)
 * and, in the caller's transaction, counts the attempt and moves next_attempt_at to `leaseUntil`.
 */
export async function claimDueDeliveries(trx: Executor, now: Date, limit: number, leaseUntil: Date) {
  const due = await trx
    .selectFrom('webhook_deliveries')
    .select(['id', 'tenant_id', 'attempts', 'attempt_limit', 'endpoint_id', 'event_id'])
    .where('status', '=', 'PENDING')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute()
  if (due.length === 0) return []
  await trx
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      next_attempt_at: leaseUntil,
      last_attempt_at: now,
    }))
    .where(
      'id',
      'in',
      due.map((d) => d.id),
    )
    .execute()
  return due
}

/** What an attempt sends: the endpoint's URL and secrets, and the event. */
export function deliveryTargets(trx: Executor, deliveryIds: readonly string[]) {
  return trx
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_endpoints as p', (j) =>
      j.onRef('p.id', '=', 'd.endpoint_id').onRef('p.tenant_id', '=', 'd.tenant_id'),
    )
    .innerJoin('webhook_events as e', (j) =>
      j.onRef('e.id', '=', 'd.event_id').onRef('e.tenant_id', '=', 'd.tenant_id'),
    )
    .select([
      'd.id',
      'p.url',
      'p.secret',
      'p.previous_secret',
      'p.previous_secret_expires_at',
      'e.id as event_id',
      'e.type',
      'e.payload',
      'e.created_at',
    ])
    .where('d.id', 'in', [...deliveryIds])
    .execute()
}

/** Keeps an attempt's record (once per delivery and attempt). */
export async function insertAttempt(trx: Executor, attempt: Insertable<WebhookAttemptTable>): Promise<void> {
  await trx
    .insertInto('webhook_attempts')
    .values(attempt)
    .onConflict((oc) => oc.columns(['delivery_id', 'attempt', 'tenant_id']).doNothing())
    .execute()
}

/** Settles attempt `attempt` of a delivery; a stale lease holder (attempts moved on) changes nothing. */
export async function settleAttempt(
  trx: Executor,
  id: string,
  attempt: number,
  outcome: {
    status: WebhookDeliveryStatus
    statusCode: number | null
    error: string | null
    deliveredAt: Date | null
    nextAttemptAt: Date
  },
): Promise<void> {
  await trx
    .updateTable('webhook_deliveries')
    .set({
      status: outcome.status,
      last_status_code: outcome.statusCode,
      last_error: outcome.error,
      ...(outcome.deliveredAt ? { delivered_at: outcome.deliveredAt } : {}),
      next_attempt_at: outcome.nextAttemptAt,
    })
    .where('id', '=', id)
    .where('attempts', '=', attempt)
    .where('status', '=', 'PENDING')
    .execute()
}
