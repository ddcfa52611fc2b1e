/** The events tenants' endpoints can receive, and how one is enqueued with its deliveries. */
import { randomBytes } from 'node:crypto'
import type { Executor } from '../db/database.ts'
import type { BudgetAlertEvent, CreditAlertEvent, PriceChangeEvent } from '../pubsub.ts'
import { insertDeliveries, insertEvent, subscribedEndpoints } from './repository.ts'

/** The event types an endpoint can subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'budget.alert',
  'credit.alert',
  'price.change',
  'stripe.usage_expired',
  'stripe.push_failed',
  'stripe.credit_push_failed',
  'reconciliation.alert',
] as const
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number]

export const newId = (prefix: string) => prefix + randomBytes(12).toString('base64url')

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
  const endpoints = await subscribedEndpoints(trx, event.tenantId, event.type)
  // No endpoint wants it: nothing to deliver, nothing to keep.
  if (endpoints.length === 0) return null
  const eventId = await insertEvent(trx, {
    id: newId('evt_'),
    tenant_id: event.tenantId,
    type: event.type,
    dedupe_key: event.dedupeKey,
    payload: JSON.stringify(event.payload),
    created_at: now,
  })
  if (!eventId) return null
  await insertDeliveries(
    trx,
    endpoints.map((endpointId) => ({
      id: newId('whd_'),
      tenant_id: event.tenantId,
      endpoint_id: endpointId,
      event_id: eventId,
      status: 'PENDING' as const,
      attempts: 0,
      attempt_limit: attemptLimit,
      next_attempt_at: now,
      created_at: now,
    })),
  )
  return eventId
}

export function budgetAlertPayload(alert: BudgetAlertEvent): Record<string, unknown> {
  const { tenantId: _tenant, ...rest } = alert
  return { ...rest, kind: alert.kind ?? 'THRESHOLD' }
}

export function priceChangePayload(change: PriceChangeEvent): Record<string, unknown> {
  const { tenantId: _tenant, ...rest } = change
  return rest
}

export function creditAlertPayload(alert: CreditAlertEvent): Record<string, unknown> {
  const { tenantId: _tenant, ...rest } = alert
  return rest
}
