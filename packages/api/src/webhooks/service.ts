/**
 * The webhooks domain's service: tenants' endpoints (endpoints.ts), the delivery log
 * (deliveries.ts), and the events other domains raise (budget alerts, price changes, Stripe
 * alerts) enqueued with their deliveries (events.ts). The dispatcher (dispatcher.ts) delivers them.
 */
import type { AppliedPriceChange } from '@burnrate/catalog-sync'
import type { Clock } from '../clock.ts'
import type { Config } from '../config.ts'
import type { Db, Executor } from '../db/database.ts'
import type { BudgetAlertRow, CreditAlertRow, Tenant } from '../db/types.ts'
import type { Logger } from '../logger.ts'
import { alertEvent } from '../budgets/alerts.ts'
import { priceChangeEvent } from '../pubsub.ts'
import type { WebhookAttemptRow, WebhookDeliveryStatus, WebhookEndpointRow } from './db-types.ts'
import * as deliveryLog from './deliveries.ts'
import type { DeliveryPage, DeliveryView } from './deliveries.ts'
import * as endpoints from './endpoints.ts'
import type { WebhookEndpointUpdate } from './endpoints.ts'
import { creditAlertEvent } from '../credits/alerts.ts'
import {
  budgetAlertPayload,
  creditAlertPayload,
  enqueueWebhookEvent,
  priceChangePayload,
  type NewWebhookEvent,
} from './events.ts'
import { subscribedTenants } from './repository.ts'

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
  /** Stores an event of another domain (a Stripe alert) and its deliveries in the caller's transaction. */
  enqueueEvent(executor: Executor, event: NewWebhookEvent, now: Date): Promise<string | null>
  /**
   * budget.alert events for these alert rows, in the transaction that inserted them: setBudget's,
   * and step `webhooks.budgetAlerts` of the ingest and billed-change pipelines (usage/pipeline.ts),
   * which passes the alerts the budgets step raised.
   */
  enqueueBudgetAlerts(trx: Executor, alerts: readonly BudgetAlertRow[]): Promise<void>
  /** credit.alert events for these credit alert rows (step `webhooks.creditAlerts` of both pipelines). */
  enqueueCreditAlerts(trx: Executor, alerts: readonly CreditAlertRow[]): Promise<void>
  /**
   * Enqueues applied catalog changes (the catalog's onApplied listener, in the process that applied
   * them): public ones for every tenant with a price.change endpoint, a tenant's own for that tenant.
   */
  enqueuePriceChanges(changes: readonly AppliedPriceChange[]): Promise<void>
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
  const endpointDeps = { db, clock, allowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS }

  async function enqueueBudgetAlerts(trx: Executor, alerts: readonly BudgetAlertRow[]) {
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

  async function enqueueCreditAlerts(trx: Executor, alerts: readonly CreditAlertRow[]) {
    const now = clock.now()
    for (const row of alerts) {
      const event = {
        tenantId: row.tenant_id,
        type: 'credit.alert' as const,
        dedupeKey: `credit.alert:${row.id}`,
        payload: creditAlertPayload(creditAlertEvent(row)),
      }
      await enqueueWebhookEvent(trx, event, now, attemptLimit)
    }
  }

  return {
    createEndpoint: (tenant, input) => endpoints.createEndpoint(endpointDeps, tenant, input),
    listEndpoints: (tenant) => endpoints.listEndpoints(db, tenant),
    disableEndpoint: (tenant, id) => endpoints.disableEndpoint(endpointDeps, tenant, id),
    updateEndpoint: (tenant, id, input) => endpoints.updateEndpoint(endpointDeps, tenant, id, input),
    rotateSecret: (tenant, id, expires) => endpoints.rotateSecret(endpointDeps, tenant, id, expires),
    deliveries: (tenant, filter) => deliveryLog.deliveries(db, tenant, filter),
    deliveryPage: (tenant, filter) => deliveryLog.deliveryPage(db, tenant, filter),
    attemptsOf: (ids) => deliveryLog.attemptsOf(db, ids),
    replay: (tenant, id) => deliveryLog.replay(db, tenant, id, clock.now(), attemptLimit),
    enqueueEvent: (executor, event, now) => enqueueWebhookEvent(executor, event, now, attemptLimit),
    enqueueBudgetAlerts,
    enqueueCreditAlerts,

    async enqueuePriceChanges(changes) {
      if (changes.length === 0) return
      // One query for who listens; most applies (and every initial catalog load) find nobody.
      const listening = await subscribedTenants(db, 'price.change')
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
