import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { sql, type Transaction } from 'kysely'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db, Executor } from '../db/database.ts'
import type { BudgetAlertRow, DB, Tenant } from '../db/types.ts'
import { badInput, userError } from '../shared/errors.ts'
import { keysetCursor, pageOf, pageSize, type Page } from '../shared/pagination.ts'
import type { Logger } from '../logger.ts'
import type { AppliedPriceChange } from '@burnrate/catalog-sync'
import { alertEvent } from '../budgets/service.ts'
import { priceChangeEvent, type BudgetAlertEvent, type PriceChangeEvent } from '../pubsub.ts'
import type { WebhookAttemptRow, WebhookDeliveryRow, WebhookDeliveryStatus, WebhookEndpointRow } from './db-types.ts'
import * as repo from './repository.ts'
import { newEndpointSecret } from './signing.ts'
import { isPrivateAddress } from './targets.ts'

/** The event types an endpoint can subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'budget.alert',
  'price.change',
  'stripe.usage_expired',
  'stripe.push_failed',
  'reconciliation.alert',
] as const
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number]

const MAX_ENDPOINTS_PER_TENANT = 20

/** How long a rotated-out secret keeps signing beside the new one, unless the caller says. */
export const ROTATION_GRACE = { defaultSeconds: 24 * 3600, maxSeconds: 7 * 24 * 3600 } as const
export const DELIVERY_PAGE = { defaultFirst: 50, maxFirst: 500 } as const

const newId = (prefix: string) => prefix + randomBytes(12).toString('base64url')

export interface NewWebhookEvent {
  tenantId: string
  type: WebhookEventType
  /** Same key, same event: a second enqueue of it (another process, a retry) is a no-op. */
  dedupeKey: string
  payload: Record<string, unknown>
}

/**
 * Stores an event and one pending delivery per enabled endpoint of the tenant subscribed to its
 * type, in the caller's transaction (so an alert and its deliveries commit or roll back together).
 * Returns the event id, or null when the event was already enqueued.
 */
export async function enqueueWebhookEvent(
  trx: Executor,
  event: NewWebhookEvent,
  now: Date,
  attemptLimit: number,
): Promise<string | null> {
  const endpoints = await trx
    .selectFrom('webhook_endpoints')
    .select('id')
    .where('tenant_id', '=', event.tenantId)
    .where('enabled', '=', true)
    .where(sql<boolean>`event_types ? ${event.type}`)
    .execute()
  // No endpoint wants it: nothing to deliver, nothing to keep.
  if (endpoints.length === 0) return null
  const inserted = await trx
    .insertInto('webhook_events')
    .values({
      id: newId('evt_'),
      tenant_id: event.tenantId,
      type: event.type,
      dedupe_key: event.dedupeKey,
      payload: JSON.stringify(event.payload),
      created_at: now,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'dedupe_key']).doNothing())
    .returning('id')
    .executeTakeFirst()
  if (!inserted) return null
  await trx
    .insertInto('webhook_deliveries')
    .values(
      endpoints.map((e) => ({
        id: newId('whd_'),
        tenant_id: event.tenantId,
        endpoint_id: e.id,
        event_id: inserted.id,
        status: 'PENDING' as const,
        attempts: 0,
        attempt_limit: attemptLimit,
        next_attempt_at: now,
        created_at: now,
      })),
    )
    .execute()
  return inserted.id
}

export function budgetAlertPayload(alert: BudgetAlertEvent): Record<string, unknown> {
  const { tenantId: _tenant, ...rest } = alert
  return { ...rest, kind: alert.kind ?? 'THRESHOLD' }
}

export function priceChangePayload(change: PriceChangeEvent): Record<string, unknown> {
  const { tenantId: _tenant, ...rest } = change
  return rest
}

export interface WebhookEndpointView {
  row: WebhookEndpointRow
}

export interface DeliveryView extends WebhookDeliveryRow {
  event_type: string
  url: string
}

export type DeliveryPage = Page<DeliveryView>

export interface WebhookEndpointUpdate {
  /** Absent or null: unchanged. */
  url?: string | null
  eventTypes?: readonly string[] | null
  /** Absent: unchanged; null or "": cleared. */
  description?: string | null
  /** true re-enables a disabled endpoint; false disables it (as disableWebhookEndpoint). */
  enabled?: boolean | null
}

/** The delivery log's cursors: the one keyset codec (shared/pagination.ts), positions (created_at, id). */
const deliveryCursor = keysetCursor('webhookDeliveriesPage')
export const encodeDeliveryCursor = (p: repo.DeliveryPosition): string =>
  deliveryCursor.encode({ at: p.createdAt, id: p.id })
export function decodeDeliveryCursor(cursor: string): repo.DeliveryPosition {
  const { at, id } = deliveryCursor.decode(cursor)
  return { createdAt: at, id }
}

/** The grace period of a rotation in seconds: default ROTATION_GRACE.defaultSeconds, 0 to ROTATION_GRACE.maxSeconds. */
export function rotationGraceSeconds(requested: number | null | undefined): number {
  const seconds = requested ?? ROTATION_GRACE.defaultSeconds
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > ROTATION_GRACE.maxSeconds) {
    throw badInput(
      `expiresPreviousInSeconds must be between 0 and ${ROTATION_GRACE.maxSeconds} (7 days)`,
      'expiresPreviousInSeconds',
    )
  }
  return seconds
}

export interface WebhookService {
  createEndpoint(
    tenant: Tenant,
    input: { url: string; eventTypes: readonly string[]; description?: string | null },
  ): Promise<{ endpoint: WebhookEndpointRow; secret: string }>
  listEndpoints(tenant: Tenant): Promise<WebhookEndpointRow[]>
  disableEndpoint(tenant: Tenant, id: string): Promise<WebhookEndpointRow>
  /** Partial update, validated like creation; all or nothing. */
  updateEndpoint(tenant: Tenant, id: string, input: WebhookEndpointUpdate): Promise<WebhookEndpointRow>
  /**
   * A new signing secret (returned once); the replaced one keeps signing beside it for
   * `expiresPreviousInSeconds` (default 24 h, at most 7 days, 0: stops at once).
   */
  rotateSecret(
    tenant: Tenant,
    id: string,
    expiresPreviousInSeconds?: number | null,
  ): Promise<{ endpoint: WebhookEndpointRow; secret: string; previousSecretExpiresAt: Date | null }>
  deliveries(
    tenant: Tenant,
    filter: { endpointId?: string | null; status?: WebhookDeliveryStatus | null; first?: number | null },
  ): Promise<DeliveryView[]>
  /** The log in keyset pages, newest first on (created_at, id). */
  deliveryPage(
    tenant: Tenant,
    filter: {
      endpointId?: string | null
      status?: WebhookDeliveryStatus | null
      first?: number | null
      after?: string | null
    },
  ): Promise<DeliveryPage>
  attemptsOf(deliveryIds: readonly string[]): Promise<Map<string, WebhookAttemptRow[]>>
  /** A DEAD delivery goes back to PENDING for another full round of attempts. */
  replay(tenant: Tenant, deliveryId: string): Promise<DeliveryView>
  /**
   * budget.alert events for these alert rows, in the transaction that inserted them: setBudget's,
   * and step `webhooks.budgetAlerts` of the ingest and billed-change pipelines (usage/pipeline.ts),
   * which passes the alerts the budgets step raised.
   */
  enqueueBudgetAlerts(trx: Transaction<DB>, alerts: readonly BudgetAlertRow[]): Promise<void>
  /**
   * Enqueues applied catalog changes (the catalog's onApplied listener, in the process that applied
   * them): public ones for every tenant with a price.change endpoint, a tenant's own for that tenant.
   */
  enqueuePriceChanges(changes: readonly AppliedPriceChange[]): Promise<void>
}

function validUrl(raw: string, allowPrivate: boolean, field = 'url'): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw badInput(`url is not a valid URL: ${JSON.stringify(raw)}`, field)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badInput('url must be http:// or https://', field)
  if (url.username || url.password) throw badInput('url must not contain credentials', field)
  if (raw.length > 2048) throw badInput('url is longer than 2048 characters', field)
  // Names are checked again at each delivery, after resolving; literal addresses can be refused now.
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (
    !allowPrivate &&
    (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isPrivateAddress(host)))
  ) {
    throw badInput(
      `url must reach a public address, not ${host} (set WEBHOOK_ALLOW_PRIVATE_TARGETS=true for local development)`,
      field,
    )
  }
  return url.toString()
}

function validEventTypes(eventTypes: readonly string[], field = 'eventTypes'): string[] {
  const types = [...new Set(eventTypes)]
  if (types.length === 0)
    throw badInput(`eventTypes must name at least one of ${WEBHOOK_EVENT_TYPES.join(', ')}`, field)
  for (const t of types) {
    if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t))
      throw badInput(`unknown event type "${t}"; known: ${WEBHOOK_EVENT_TYPES.join(', ')}`, field)
  }
  return types
}

function validDescription(description: string | null | undefined, field = 'description'): string | null {
  if (description && description.length > 500) throw badInput('description is longer than 500 characters', field)
  return description || null
}

export function createWebhookService({
  db,
  clock,
  config,
}: {
  db: Db
  clock: Clock
  config: Config
  logger: Logger
}): WebhookService {
  const attemptLimit = config.WEBHOOK_MAX_ATTEMPTS

  async function deliveryView(executor: Executor, tenantId: string, where: { id?: string }) {
    let q = repo.selectDeliveryViews(executor, tenantId)
    if (where.id) q = q.where('d.id', '=', where.id)
    return q
  }

  async function enqueueBudgetAlerts(trx: Transaction<DB>, alerts: readonly BudgetAlertRow[]) {
    const now = clock.now()
    for (const row of alerts) {
      const event = {
        tenantId: row.tenant_id,
        type: 'budget.alert' as const,
        dedupeKey: `budget.alert:${row.id}`,
        payload: budgetAlertPayload(alertEvent(row)),
      }
      await enqueueWebhookEvent(trx, event, now, attemptLimit)
    }
  }

  return {
    enqueueBudgetAlerts,

    async createEndpoint(tenant, input) {
      const url = validUrl(input.url.trim(), config.WEBHOOK_ALLOW_PRIVATE_TARGETS)
      const types = validEventTypes(input.eventTypes)
      validDescription(input.description)
      const count = await db
        .selectFrom('webhook_endpoints')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', tenant.id)
        .where('enabled', '=', true)
        .executeTakeFirstOrThrow()
      if (Number(count.n) >= MAX_ENDPOINTS_PER_TENANT)
        throw badInput(`a tenant has at most ${MAX_ENDPOINTS_PER_TENANT} enabled endpoints`, 'url')
      const secret = newEndpointSecret()
      const endpoint = await db
        .insertInto('webhook_endpoints')
        .values({
          id: newId('we_'),
          tenant_id: tenant.id,
          url,
          event_types: JSON.stringify(types),
          secret,
          description: input.description ?? null,
          enabled: true,
          created_at: clock.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow()
      return { endpoint, secret }
    },

    listEndpoints: (tenant) =>
      db
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),

    async disableEndpoint(tenant, id) {
      const row = await db
        .updateTable('webhook_endpoints')
        .set({ enabled: false, disabled_at: clock.now() })
        .where('tenant_id', '=', tenant.id)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst()
      if (!row) throw userError('NOT_FOUND', `no webhook endpoint "${id}"`, 'id')
      await repo.killPendingDeliveries(db, id)
      return row
    },

    async updateEndpoint(tenant, id, input) {
      // Everything is checked before anything is written.
      const patch: repo.EndpointPatch = {}
      if (input.url != null) patch.url = validUrl(input.url.trim(), config.WEBHOOK_ALLOW_PRIVATE_TARGETS, 'input.url')
      if (input.eventTypes != null) patch.eventTypes = validEventTypes(input.eventTypes, 'input.eventTypes')
      if (input.description !== undefined) patch.description = validDescription(input.description, 'input.description')
      if (input.enabled != null) patch.enabled = input.enabled
      return db.transaction().execute(async (trx) => {
        const current = await repo.lockEndpoint(trx, tenant.id, id)
        if (!current) throw userError('NOT_FOUND', `no webhook endpoint "${id}"`, 'id')
        const enabling = patch.enabled === true && !current.enabled
        const disabling = patch.enabled === false && current.enabled
        if (patch.enabled === current.enabled) delete patch.enabled
        if (enabling && (await repo.countEnabledEndpoints(trx, tenant.id, id)) >= MAX_ENDPOINTS_PER_TENANT) {
          throw badInput(`a tenant has at most ${MAX_ENDPOINTS_PER_TENANT} enabled endpoints`, 'input.enabled')
        }
        if (Object.keys(patch).length === 0) return current
        const row = await repo.updateEndpointRow(trx, tenant.id, id, patch, clock.now())
        if (disabling) await repo.killPendingDeliveries(trx, id)
        return row
      })
    },

    async rotateSecret(tenant, id, expiresPreviousInSeconds) {
      const grace = rotationGraceSeconds(expiresPreviousInSeconds)
      const now = clock.now()
      const previousSecretExpiresAt = grace > 0 ? new Date(now.getTime() + grace * 1000) : null
      const secret = newEndpointSecret()
      const endpoint = await repo.rotateEndpointSecret(db, tenant.id, id, secret, previousSecretExpiresAt, now)
      if (!endpoint) throw userError('NOT_FOUND', `no webhook endpoint "${id}"`, 'id')
      return { endpoint, secret, previousSecretExpiresAt }
    },

    async deliveries(tenant, filter) {
      const first = filter.first ?? 50
      if (first < 1 || first > 500) throw badInput('first must be between 1 and 500', 'first')
      let q = await deliveryView(db, tenant.id, {})
      if (filter.endpointId) q = q.where('d.endpoint_id', '=', filter.endpointId)
      if (filter.status) q = q.where('d.status', '=', filter.status)
      return q.orderBy('d.created_at', 'desc').orderBy('d.id', 'desc').limit(first).execute()
    },

    async deliveryPage(tenant, filter) {
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
    },

    async attemptsOf(ids) {
      const rows = ids.length
        ? await db
            .selectFrom('webhook_attempts')
            .selectAll()
            .where('delivery_id', 'in', [...ids])
            .orderBy('attempt')
            .execute()
        : []
      const byId = new Map<string, WebhookAttemptRow[]>(ids.map((id) => [id, []]))
      for (const row of rows) byId.get(row.delivery_id)?.push(row)
      return byId
    },

    async replay(tenant, id) {
      const now = clock.now()
      const updated = await db
        .updateTable('webhook_deliveries')
        .set((eb) => ({ status: 'PENDING', next_attempt_at: now, attempt_limit: eb('attempts', '+', attemptLimit) }))
        .where('tenant_id', '=', tenant.id)
        .where('id', '=', id)
        .where('status', '=', 'DEAD')
        .where('endpoint_id', 'in', (eb) => eb.selectFrom('webhook_endpoints').select('id').where('enabled', '=', true))
        .returning('id')
        .executeTakeFirst()
      const view = await (await deliveryView(db, tenant.id, { id })).executeTakeFirst()
      if (!view) throw userError('NOT_FOUND', `no webhook delivery "${id}"`, 'id')
      if (!updated) {
        throw badInput(
          view.status === 'DEAD'
            ? 'the endpoint of this delivery is disabled'
            : `only a DEAD delivery can be replayed; this one is ${view.status}`,
          'id',
        )
      }
      return view
    },

    async enqueuePriceChanges(changes) {
      if (changes.length === 0) return
      // One query for who listens; most applies (and every initial catalog load) find nobody.
      const listening = (
        await db
          .selectFrom('webhook_endpoints')
          .select('tenant_id')
          .distinct()
          .where('enabled', '=', true)
          .where(sql<boolean>`event_types ? 'price.change'`)
          .execute()
      ).map((r) => r.tenant_id)
      if (listening.length === 0) return
      const now = clock.now()
      for (const change of changes) {
        const event = priceChangeEvent(change)
        const key = `price.change:${change.tenantId ?? 'public'}:${change.source}:${change.sourceVersion}:${change.provider}:${change.model}:${change.usageType}:${event.effectiveFrom}:${change.newUnitPrice ?? 'none'}`
        for (const tenantId of change.tenantId ? listening.filter((t) => t === change.tenantId) : listening) {
          await enqueueWebhookEvent(
            db,
            { tenantId, type: 'price.change', dedupeKey: key, payload: priceChangePayload(event) },
            now,
            attemptLimit,
          )
        }
      }
    },
  }
}
